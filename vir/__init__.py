"""vir: a privacy-preserving signal index for youth care (Verwijsindex risicojongeren)."""

__version__ = "0.1.0"
