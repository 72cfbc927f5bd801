"""Delivery of notifications: the outbox worker and its channels (docs/delivery.md)."""
