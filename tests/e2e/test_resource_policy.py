"""Issue 10 finding 2 end to end: a real `mcp-auth-gateway serve` process in front of the real upstream, whose
template `file:///{+path}` (the SDK percent-decodes it; the server normalizes and folds case like a file system)
serves the secret for every alternate spelling. The gateway refuses each one and serves the allowed spelling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from gateway.ports import free_port, wait_for_port
from tests.support.mcp_wire import MODERN

CLI = [sys.executable, "-m", "gateway"]
SECRET = "top-secret-key-material"  # what the upstream holds at file:///secret/keys.txt
SPELLINGS = [
    "file:///%73ecret/keys.txt",
    "file:///secret%2Fkeys.txt",
    "file:///public/../secret/keys.txt",
    "file:///public/%2e%2e/secret/keys.txt",
    "file:///SECRET/keys.txt",
    "file://localhost/secret/keys.txt",
    "file:///secret%252Fkeys.txt",
    "file:///secret/keys.txt%00",
    "file:///secret\\keys.txt",
]


def config(path: Path, port: int, upstream_url: str) -> Path:
    path.write_text(f"""public_url: http://127.0.0.1:{port}
listen: {{host: 127.0.0.1, port: {port}, metrics_port: null}}
store: {{data_dir: {path.parent / "data"}}}
audit: {{enabled: false}}
routes:
  - name: files
    path: /files/mcp
    upstream: '{upstream_url}'
    policy:
      resources:
        - {{match: "file:///secret/*", deny: true}}
""")
    return path


@pytest.fixture
def serving(tmp_path, upstream):
    port = free_port()
    path = config(tmp_path / "gateway.yaml", port, upstream.url)
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([*CLI, "serve", "-c", str(path)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, deadline=30)
        subprocess.run(
            [*CLI, "users", "add", "ops", "--password-stdin", "-c", str(path)],
            input="correct-horse-1\n",
            text=True,
            check=True,
            capture_output=True,
        )
        token = subprocess.run(
            [*CLI, "tokens", "issue", "--user", "ops", "--route", "files", "-c", str(path)],
            text=True,
            check=True,
            capture_output=True,
        ).stdout.strip()
        yield f"http://127.0.0.1:{port}/files/mcp", token, upstream.url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def read(http: aiohttp.ClientSession, url: str, token: str | None, uri: str, request_id: str) -> tuple[int, dict]:
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "resources/read",
        "params": {
            "uri": uri,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "resources/read",
        "Mcp-Name": uri if uri.isprintable() else "=?base64?" + _b64(uri) + "?=",
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with http.post(url, json=body, headers=headers) as response:
        text = await response.text()
    data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
    return response.status, json.loads(data[-1] if data else text)


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


async def test_alternate_spellings_of_a_protected_resource_are_refused_by_a_serving_gateway(serving):
    url, token, upstream_url = serving
    async with aiohttp.ClientSession() as http:
        for uri in SPELLINGS[:5]:  # the threat is real: asked directly, the upstream serves the secret for these
            status, reply = await read(http, upstream_url, None, uri, "direct")
            assert reply["result"]["contents"][0]["text"] == SECRET, (uri, reply)
        status, reply = await read(http, url, token, "file:///public/readme.md", "ok")
        assert status == 200 and reply["result"]["contents"][0]["text"].startswith("# Public readme")
        status, reply = await read(http, url, token, "file:///secret/keys.txt", "plain")
        assert status == 403 and reply["id"] == "plain"
        for i, uri in enumerate(SPELLINGS):
            status, reply = await read(http, url, token, uri, f"alt-{i}")
            assert (status, reply["id"], reply["error"]["code"]) == (400, f"alt-{i}", -32602), (uri, reply)
            assert SECRET not in json.dumps(reply)
