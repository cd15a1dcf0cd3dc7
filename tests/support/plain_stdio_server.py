"""An MCP server over stdio in the standard library alone, for a process the gateway starts as another system user
(`command.user`): that user cannot read the test venv (under /root or a 0700 temporary directory), so the SDK is out
of reach and this file runs under the distribution's Python. It answers initialize, ping, tools/list and one tool,
``whoami``: the uid, gid, HOME, USER and working directory of this process, as JSON text.

Run: ``/usr/bin/python3 tests/support/plain_stdio_server.py``.
"""

from __future__ import annotations

import json
import os
import sys

TOOL = {"name": "whoami", "description": "Which system user runs this process.", "inputSchema": {"type": "object"}}


def answer(message: dict) -> dict | None:
    method, params = message.get("method"), message.get("params") or {}
    if "id" not in message:
        return None
    if method == "initialize":
        result = {
            "protocolVersion": params.get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "plain-stdio", "version": "1"},
        }
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": [TOOL]}
    elif method == "tools/call" and params.get("name") == "whoami":
        me = {"uid": os.getuid(), "gid": os.getgid(), "home": os.environ.get("HOME"), "user": os.environ.get("USER")}
        me["cwd"] = os.getcwd()
        result = {"content": [{"type": "text", "text": json.dumps(me, sort_keys=True)}], "isError": False}
    else:
        return {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": f"no method {method}"}}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def main() -> None:
    for line in sys.stdin:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        reply = answer(message) if isinstance(message, dict) else None
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
