"""What the gateway's required per-request operations cost on their own (timeit, warm, one after another), for the
MCP POST the other benchmarks send: the least its security work could cost with nothing around it, to hold
against the budget a throughput target leaves once the stack's floor is paid (bench/RESULTS.md).

    python bench/required_work.py [--number 20000]

Each row runs the gateway's own function on the benchmark's request; none waits for I/O. Not counted: the
upstream round trip, the server and the relay (the floor pays those too), the limiter and the token cache (state
kept across requests), metrics.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import sys
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from multidict import CIMultiDict, CIMultiDictProxy  # noqa: E402

from bench.stack import BODY, mcp_headers  # noqa: E402
from gateway.audit import AuditLog, argument_digest  # noqa: E402
from gateway.config import AuditSettings, Route  # noqa: E402
from gateway.mcp import jsonrpc  # noqa: E402
from gateway.oauth.token_values import hash_token, new_access_token  # noqa: E402
from gateway.proxy.headers import client_response_headers, request_header_problem  # noqa: E402
from gateway.proxy.pool import encode_head  # noqa: E402


def rows() -> list[tuple[str, object]]:
    token = new_access_token()
    body = json.dumps(BODY).encode()
    inbound = CIMultiDictProxy(CIMultiDict({**mcp_headers(token), "Host": "127.0.0.1:8080", "User-Agent": "wrk"}))
    messages = jsonrpc.read_messages(body)
    key = hmac.new(b"k" * 32, digestmod=hashlib.sha256)
    audit = AuditLog(AuditSettings(path="-"))
    fields = {
        "request_id": "0" * 32,
        "route": "bench",
        "http_method": "POST",
        "client_ip": "127.0.0.1",
        "status": 200,
        "bytes": 75,
        "user": "local:bench",
        "client": "gateway-cli",
        "token_id": "0123456789ab",
        "methods": ["tools/call"],
        "tools": ["add"],
        "argument_digests": [argument_digest(BODY["params"]["arguments"], key)],  # type: ignore[index]
        "upstream_ms": 0.4,
    }
    outbound = [(k, v) for k, v in inbound.items() if k.lower() not in {"authorization", "host"}]
    outbound += [("Host", "127.0.0.1:9000"), ("X-Forwarded-For", "127.0.0.1"), ("X-Request-Id", "0" * 32)]
    outbound += [("X-MCP-User", "local:bench"), ("X-MCP-Client", "gateway-cli")]
    answer = CIMultiDictProxy(
        CIMultiDict({"Content-Type": "application/json", "Content-Length": "75", "Date": "x", "Server": "y"})
    )
    route = Route(name="bench", upstream="http://127.0.0.1:9000/mcp")
    arguments = BODY["params"]["arguments"]  # type: ignore[index]
    return [
        ("token hash (SHA-256)", lambda: hash_token(token)),
        ("MCP header check", lambda: request_header_problem(inbound)),
        ("strict JSON-RPC read", lambda: jsonrpc.read_messages(body)),
        ("headers vs body", lambda: jsonrpc.header_mismatch(messages, "tools/call", "add")),
        ("argument digest (HMAC)", lambda: argument_digest(arguments, key)),
        ("upstream request head", lambda: encode_head("POST", "/mcp", outbound, body)),
        ("client response headers", lambda: client_response_headers(answer, route, keep_length=False)),
        ("audit line", lambda: audit._line(0.0, "mcp.request", fields)),  # noqa: SLF001
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    sys.stdout, real = io.StringIO(), sys.stdout  # (the audit log's stream, unused here)
    measured = []
    for name, work in rows():
        best = min(timeit.repeat(work, number=args.number, repeat=3))  # type: ignore[arg-type]
        measured.append((name, best / args.number * 1e6))
    sys.stdout = real
    for name, micros in measured:
        print(f"{name:<26} {micros:7.2f} µs")
    print(f"{'total':<26} {sum(m for _, m in measured):7.2f} µs")


if __name__ == "__main__":
    main()
