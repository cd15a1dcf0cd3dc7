"""Forwarding authenticated MCP traffic to the unmodified upstream."""
