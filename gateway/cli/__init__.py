"""`mcp-auth-gateway`: serve | check-config | demo | users | clients | keys | tokens. One-line errors, exit 1.

`main` (the console script `gateway.cli:main`) builds the parser from one module per command group and turns
every expected failure into one line on standard error.
"""

from gateway.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
