"""Protocol logic (OAuth 2.1, RFC 8707, RFC 9728): pure functions, no aiohttp."""
