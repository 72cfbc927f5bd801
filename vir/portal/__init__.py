"""The portal: professionals and officers use vir in a browser (issue 18, docs/portal.md)."""
