"""deploy/ cannot be run here (no Docker engine), so its files are checked statically: Dockerfile hygiene,
YAML that parses, the real CLI, ports and probes, and gateway configs that validate."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.cli import build_parser
from gateway.config import load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SUBCOMMANDS = {"serve", "check-config", "demo", "users", "clients", "keys", "tokens"}


def dockerfile_lines() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text()
    return [line for line in text.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]


def test_dockerfile_is_multi_stage_pinned_non_root_and_health_checked():
    lines = dockerfile_lines()
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) >= 2, "multi-stage"
    base = next(line for line in lines if line.startswith("ARG PYTHON_IMAGE="))
    assert re.fullmatch(r"ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+", base), "pinned base image"
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1].split()[1].split(":")[0] not in ("0", "root")
    assert any(line.startswith("HEALTHCHECK") and "/healthz" in line for line in lines)
    assert not any(line.startswith("ADD ") for line in lines), "COPY, never ADD (no remote fetches)"
    assert 'ENTRYPOINT ["mcp-auth-gateway"]' in lines
    cmd = next(line for line in lines if line.startswith("CMD ["))
    assert '"serve"' in cmd and '"8080"' in cmd and "EXPOSE 8080" in lines
    copied = [line.split()[1] for line in lines if line.startswith("COPY ") and "--from" not in line]
    for source in copied:
        assert (DEPLOY.parent / source).exists(), f"COPY source {source} missing"


def test_the_image_entrypoint_command_parses():
    """The CMD's arguments are accepted by the real CLI (--help exits 0 for that subcommand)."""
    done = subprocess.run([sys.executable, "-m", "gateway", "serve", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--host" in done.stdout and "--port" in done.stdout


def test_compose_wires_gateway_redis_and_upstream():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "demo-upstream", "gateway"}
    assert "--appendonly" in services["redis"]["command"]  # persistence on
    gateway = services["gateway"]
    assert gateway["command"][0] in SUBCOMMANDS and gateway["ports"] == ["8080:8080"]
    mount = gateway["volumes"][0].split(":")
    assert (DEPLOY / mount[0]).exists() and mount[1] == "/etc/mcp-auth-gateway/gateway.yaml"
    settings = load_settings(DEPLOY / mount[0])
    assert settings.listen.port == 8080 and settings.store.url is not None
    assert settings.routes[0].upstream.startswith("http://demo-upstream:9001/")
    assert services["demo-upstream"]["command"][-1] == "9001"


@pytest.mark.parametrize("manifest", ["sidecar.yaml", "scaled.yaml"])
def test_kubernetes_manifests_reference_real_cli_ports_probes_and_valid_config(manifest, monkeypatch, tmp_path):
    documents = [d for d in yaml.safe_load_all((DEPLOY / "k8s" / manifest).read_text()) if d]
    kinds = {d["kind"] for d in documents}
    assert {"ConfigMap", "Deployment", "Service"} <= kinds
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]["gateway.yaml"]
    # The Secret is the operator's (never rendered with a value): the header says how to create it with every
    # ${VAR} the ConfigMap uses, and the gateway container takes it whole (envFrom).
    header = (DEPLOY / "k8s" / manifest).read_text().split("\n---", 1)[0]
    created = re.search(r"kubectl create secret generic (\S+) (.*)", header)
    assert created, "the header says which Secret to create"
    for name in re.findall(r"\$\{(\w+)\}", config):
        assert f"--from-literal={name}=" in created.group(2), name
        monkeypatch.setenv(name, "stand-in-secret")
    path = tmp_path / "gateway.yaml"
    path.write_text(config)
    settings = load_settings(path)
    gateway = next(
        c
        for d in documents
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
        if c["name"] == "gateway"
    )
    assert {"secretRef": {"name": created.group(1)}} in gateway["envFrom"]
    assert gateway["args"][0] in SUBCOMMANDS and gateway["args"][1:3] == ["-c", "/etc/mcp-auth-gateway/gateway.yaml"]
    port = int(gateway["args"][gateway["args"].index("--port") + 1])
    assert port == settings.listen.port == gateway["ports"][0]["containerPort"]
    build_parser().parse_args(gateway["args"])  # every flag is one the CLI has (argparse exits otherwise)
    metrics_host = settings.listen.metrics_host or settings.listen.host
    if settings.listen.metrics_port is not None and metrics_host not in ("127.0.0.1", "::1", "localhost"):
        # issue 10 #17: scraped on the pod IP, declared, announced to Prometheus, and never behind the Service
        assert settings.listen.metrics_port in [p["containerPort"] for p in gateway["ports"]]
        template = next(
            d["spec"]["template"]["metadata"]
            for d in documents
            if d["kind"] == "Deployment" and gateway in d["spec"]["template"]["spec"]["containers"]
        )
        assert template["annotations"]["prometheus.io/port"] == str(settings.listen.metrics_port)
        services = [d for d in documents if d["kind"] == "Service"]
        assert all(
            p["targetPort"] not in ("metrics", settings.listen.metrics_port)
            for d in services
            for p in d["spec"]["ports"]
        )
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = next(d for d in documents if d["kind"] == "Service" and d["metadata"]["name"] in {"notes", "mcp-gateway"})
    assert service["spec"]["ports"][0]["targetPort"] == gateway["ports"][0]["name"]
