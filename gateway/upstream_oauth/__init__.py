"""The gateway as an OAuth 2.1 client of the servers behind it (`upstream_auth: oauth`): discovery, registration,
the authorization request, token requests."""
