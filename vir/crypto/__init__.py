"""The only package that imports cryptographic libraries (pysodium, pyca/cryptography)."""
