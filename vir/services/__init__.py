"""Use cases, one module each. They own transactions and write the audit entries."""
