"""Local ports: find a free one, wait for a child process to listen (used by the demo, tests and benchmarks)."""

from __future__ import annotations

import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None, deadline: float = 15.0
) -> None:
    """Poll until something accepts on 127.0.0.1:port.

    Raises:
        RuntimeError: the process exited first.
        TimeoutError: nothing listened before the deadline.
    """
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {deadline}s")


BACKLOG = 511  # nginx's listen backlog (the kernel caps it at net.core.somaxconn)


class BindError(Exception):
    """`cannot bind HOST:PORT: reason`, one line."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"cannot bind {host}:{port}: {reason}")


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address `host` resolves to, bound once, owned by this process.

    SO_REUSEADDR (a restart may bind over TIME_WAIT connections) but never SO_REUSEPORT: a second gateway on the
    same port is refused, not handed half the connections. Our own workers and reloads share these sockets
    (inherited descriptors), which needs no such option.

    Raises:
        BindError: the host does not resolve, or an address cannot be bound (busy, not ours, privileged).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(host, port, f"unknown host ({exc.strerror.lower()})") from None
    except (OverflowError, UnicodeError) as exc:
        raise BindError(host, port, str(exc)) from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # "::" and "0.0.0.0" are two sockets, as asyncio binds them
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise BindError(host, port, reason) from None
    return sockets
