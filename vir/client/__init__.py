"""The back-office client: canonical inputs, blinding, and the mTLS connection to vir.

Nothing identifying leaves the client except blinded elements: the BSN (or name
and date of birth, or address) is turned into a canonical string here, hashed to
the group and blinded with a fresh random scalar before any request is made.
"""

from vir.client.canonical import nl_address, nl_bsn, nl_person
from vir.client.connection import VirClient

__all__ = ["VirClient", "nl_address", "nl_bsn", "nl_person"]
