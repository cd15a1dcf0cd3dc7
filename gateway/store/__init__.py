"""Persistence: one Redis (remote or embedded) behind the `Store` protocol."""
