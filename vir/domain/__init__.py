"""The pure core: value objects, policies and errors. Imports no web, database or crypto library."""
