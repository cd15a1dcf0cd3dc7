"""A real, unmodified MCP server for the demo and the tests: the `mcp` SDK's MCPServer over Streamable HTTP.

Run as a subprocess (`python -m gateway.demo_upstream --port N`); the process boundary is what the
gateway is for. Tools:
- ``echo_headers`` returns the HTTP headers this server received (oauth2-proxy's echo upstream);
- ``slow_progress`` sends progress notifications with pauses, to show streaming is unbuffered;
- ``add`` adds two integers.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer(name="upstream-echo", version="1.0")


@server.tool()
async def echo_headers(ctx: Context) -> str:
    """Return the request headers this server received, as a JSON object (lowercase names)."""
    request = ctx.request_context.request
    headers = {} if request is None else {k.lower(): v for k, v in request.headers.items()}
    return json.dumps(headers, sort_keys=True)


@server.tool()
async def slow_progress(ctx: Context, steps: int = 3, delay: float = 0.3) -> str:
    """Report ``steps`` progress notifications ``delay`` seconds apart, then return "done"."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await asyncio.sleep(delay)
    return "done"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def main() -> None:
    parser = argparse.ArgumentParser(description="Demo upstream MCP server (Streamable HTTP).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--path", default="/mcp")
    parser.add_argument("--stateless", action="store_true", help="no Mcp-Session-Id (stateless HTTP)")
    parser.add_argument("--json-response", action="store_true", help="answer POSTs with JSON instead of SSE")
    args = parser.parse_args()
    server.run("streamable-http", host=args.host, port=args.port, streamable_http_path=args.path,
               stateless_http=args.stateless, json_response=args.json_response)


if __name__ == "__main__":
    main()
