"""The HTTP edge: FastAPI app factory, identity from mTLS, problem+json errors, routes."""
