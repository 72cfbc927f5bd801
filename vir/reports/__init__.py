"""Reports for privacy officers, data subjects and municipalities."""
