"""Persistence: one Redis (remote or embedded) behind the seams of `store.base`, `Store` being their union."""
