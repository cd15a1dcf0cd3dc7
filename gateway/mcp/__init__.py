"""MCP-level helpers (JSON-RPC peeking and error bodies)."""
