"""The development OpenID provider (``make run``, tests): Authlib, demo users."""
