"""The embedded HTTPS server (uvicorn) with mutual TLS."""
