"""Published signed-note vectors shared by the checkpoint and signing tests.

From transparency-dev/formats log/note_test.go (TestSumDBNoteParsing): a real
sum.golang.org checkpoint and that log's verifier key.
"""

from __future__ import annotations

SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n"
    "6476701\n"
    "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    "\n"
    "\u2014 sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYf"
    "vimWEPWL+o3GeoWwOoAw=\n"
).encode()
