"""Hostile stdio MCP servers for the tests of stdio routes: `python -m tests.support.bad_stdio_server MODE`.

Where a mode answers at all it is the SDK's MCPServer over stdio, with a `pid` tool (which process answered) and
`add`; the modes:
- ``garbage``: lines that are not JSON-RPC on stdout before and after every valid message (and before the first);
- ``exit``: exits with status 3 at once, before reading anything;
- ``flood``: thousands of stderr lines a second while it serves normally;
- ``silent``: reads stdin and never answers, not even initialize;
- ``hang``: a tool ``wait`` that never returns (initialize and tools/list are answered);
- ``die``: a tool ``die`` that ends the process in the middle of the call.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server

MODES = ("garbage", "exit", "flood", "silent", "hang", "die")
NOT_JSON_RPC = ("this line is not JSON", "{broken json", '{"jsonrpc": "2.0", "neither": "request nor answer"}')


class GarbageOut(io.TextIOBase):
    """stdout that wraps every message the SDK writes in lines a client must skip."""

    def write(self, text: str) -> int:
        sys.stdout.write(f"{NOT_JSON_RPC[0]}\n{text}{NOT_JSON_RPC[1]}\n{NOT_JSON_RPC[2]}\n")
        return len(text)

    def flush(self) -> None:
        sys.stdout.flush()


def build(mode: str) -> MCPServer:
    server = MCPServer(name=f"bad-stdio-{mode}", version="1.0")

    @server.tool()
    def pid() -> str:
        """The id of the process that answered."""
        return str(os.getpid())

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    if mode == "hang":

        @server.tool()
        async def wait() -> str:
            """Never returns (until cancelled)."""
            await anyio.sleep_forever()
            return "unreachable"

    if mode == "die":

        @server.tool()
        def die() -> str:
            """Ends the process before it answers."""
            os._exit(1)

    return server


def flood() -> None:
    """About 4,000 stderr lines a second, written straight to fd 2 (the SDK never touches it)."""
    block = b"".join(b"flood line %d of a noisy server\n" % n for n in range(200))
    while True:
        os.write(2, block)
        time.sleep(0.05)


async def serve(server: MCPServer, mode: str) -> None:
    out = anyio.wrap_file(GarbageOut()) if mode == "garbage" else None
    async with stdio_server(stdout=out) as (read, write):
        lowlevel = server._lowlevel_server  # noqa: SLF001 (run_stdio_async without a way to pass our stdout)
        await lowlevel.run(read, write, lowlevel.create_initialization_options())


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) == 2 else ""
    if mode not in MODES:
        sys.exit(f"usage: python -m tests.support.bad_stdio_server {{{','.join(MODES)}}}")
    if mode == "exit":
        sys.stderr.write("bad stdio server: exiting at once\n")
        sys.exit(3)
    if mode == "silent":
        for _ in sys.stdin.buffer:  # read everything, answer nothing
            pass
        return
    if mode == "garbage":
        print("a banner some servers print before anything else", flush=True)
    if mode == "flood":
        threading.Thread(target=flood, daemon=True).start()
    anyio.run(serve, build(mode), mode)


if __name__ == "__main__":
    main()
