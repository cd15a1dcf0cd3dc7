"""mcp-auth-gateway: an OAuth 2.1 authorization gateway and reverse proxy for unmodified MCP servers."""

__version__ = "0.1.0"
