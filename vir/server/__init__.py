"""The uvicorn server: mutual TLS itself (embedded), or plain HTTP behind a reverse proxy."""
