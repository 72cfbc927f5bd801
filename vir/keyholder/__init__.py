"""The key holder: the separate service that alone holds the OPRF key (or a share of it).

Organisations call it directly (``POST /v1/oprf/evaluate``) with their own client
certificate; the index never holds a key and never evaluates (DESIGN.md §4). It has its
own process, port, server certificate, keys directory, database and audit log.
"""
