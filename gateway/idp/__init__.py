"""Upstream identity providers: the gateway as an OIDC / OAuth 2.0 client (the "2-hop" login)."""
