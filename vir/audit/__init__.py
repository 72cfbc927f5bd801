"""The audit log: pure functions over entry bytes (no web or database library here)."""
