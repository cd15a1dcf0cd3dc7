"""deploy/helm/mcp-auth-gateway: `helm lint --strict` and `helm template` with the default values and each example,
every rendered manifest checked against the Kubernetes schemas (kubernetes-validate, strict, at the chart's oldest
and the newest Kubernetes it knows), the gateway configuration checked by the gateway's own `check-config`, the
rendered container arguments run as a real `serve`, the wiring between objects (selectors, ports, probes), the
refusals and the security defaults. Helm itself comes from deploy/helm.sh (cached between runs)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.cli import build_parser
from tests.support.processes import REPO, free_port, wait_for_port

DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "mcp-auth-gateway"
EXAMPLES = sorted((DEPLOY / "helm" / "examples").glob("*.yaml"))
VALUES = [None, *EXAMPLES]
KUBERNETES = ("1.25.0", "1.37.0")  # Chart.yaml's kubeVersion floor, and the newest schema kubernetes-validate has
CUSTOM_KINDS = {"ServiceMonitor"}  # Prometheus Operator: no schema in Kubernetes; checked by hand below


@cache
def helm() -> str:
    done = subprocess.run(["bash", str(DEPLOY / "helm.sh")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"deploy/helm.sh failed:\n{done.stderr}"
    return done.stdout.strip()


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=120)


def values_id(values: Path | None) -> str:
    return "defaults" if values is None else values.stem


def render(values: Path | None = None, *sets: str, release: str = "gw") -> list[dict[str, Any]]:
    args = ["template", release, str(CHART), "--namespace", "tools"]
    args += [] if values is None else ["-f", str(values)]
    for item in sets:
        args += ["--set", item]
    done = run_helm(*args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def refusal(*sets: str, values: Path | None = None) -> str:
    args = ["template", "gw", str(CHART)] + ([] if values is None else ["-f", str(values)])
    for item in sets:
        args += ["--set", item]
    done = run_helm(*args)
    assert done.returncode != 0, f"rendered although it should not: {sets}"
    return done.stderr


def kind(documents: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == name]


def one(documents: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [d for d in kind(documents, name) if "helm.sh/hook" not in d["metadata"].get("annotations", {})]
    return found


def gateway_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(documents, "Deployment")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "gateway")


def config_of(documents: list[dict[str, Any]]) -> str:
    return one(documents, "ConfigMap")["data"]["gateway.yaml"]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# -- helm lint, helm template, the Kubernetes schemas ---------------------------------------------------------------


def test_helm_is_the_pinned_release():
    done = run_helm("version", "--template", "{{.Version}} {{.GitCommit}}")
    assert done.stdout == "v3.17.3 e4da49785aa6e6ee2b86efd5dd9e43400318262b", done.stdout


@pytest.mark.parametrize("values", VALUES, ids=values_id)
def test_helm_lint_strict_passes(values):
    done = run_helm("lint", "--strict", str(CHART), *([] if values is None else ["-f", str(values)]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("version", KUBERNETES)
@pytest.mark.parametrize("values", VALUES, ids=values_id)
def test_every_rendered_manifest_is_valid_for_kubernetes(values, version):
    documents = render(values)
    checked = 0
    for document in documents:
        if document["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(document, version, strict=True)  # raises ValidationError with the path
        checked += 1
    assert checked >= 6


def test_each_example_renders_what_it_is_for():
    kinds = {path.stem: {d["kind"] for d in render(path)} for path in EXAMPLES}
    assert {"StatefulSet", "NetworkPolicy"} <= kinds["bundled-redis"]
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor", "Ingress"} <= kinds["production"]
    assert "PersistentVolumeClaim" in kinds["sidecar"] and "PodDisruptionBudget" not in kinds["sidecar"]
    assert "StatefulSet" not in kinds["production"] | kinds["sidecar"]


# -- the gateway's side: its configuration and its command line ----------------------------------------------------


def environment_for(documents: list[dict[str, Any]], config: str) -> dict[str, str]:
    """What the pod's environment would hold: each ${VAR} of the config and each env entry, with stand-in values
    of the right shape (a Secret's value is not in the chart)."""
    env = {name: "stand-in-secret-value-0123456789abcdef" for name in re.findall(r"\$\{(\w+)\}", config)}
    for entry in gateway_container(documents).get("env", []):
        value = entry.get("value", "stand-in-secret-value-0123456789abcdef")
        if entry["name"] == "MCP_GATEWAY_STORE__URL":
            value = "redis://:pw@redis.internal:6379/0"
        env[entry["name"]] = value
    return env


@pytest.mark.parametrize("values", VALUES, ids=values_id)
def test_the_rendered_configuration_passes_the_gateways_check_config(values, tmp_path):
    documents = render(values)
    config = config_of(documents)
    path = tmp_path / "gateway.yaml"
    path.write_text(config)
    env = {**os.environ, **environment_for(documents, config)}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "configuration OK" in done.stdout


@pytest.mark.parametrize("values", VALUES, ids=values_id)
def test_the_container_arguments_are_the_clis_and_agree_with_ports_and_config(values):
    documents = render(values)
    container = gateway_container(documents)
    args = container["args"]
    build_parser().parse_args(args)  # every flag is one the CLI has (argparse exits otherwise)
    assert args[:3] == ["serve", "-c", "/etc/mcp-auth-gateway/gateway.yaml"]
    config = yaml.safe_load(config_of(documents))
    port = int(args[args.index("--port") + 1])
    assert port == config["listen"]["port"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == port and ports["metrics"] == config["listen"]["metrics_port"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/mcp-auth-gateway"]["readOnly"] is True


def test_the_rendered_pod_command_serves_its_probes_and_metadata(tmp_path):
    """The default chart on the embedded store, its Deployment's arguments and ConfigMap run as a real gateway:
    the probes' paths answer 200 and the metadata `helm test` reads is there (only the ports are changed, to free
    ones, and the store's directory to a temporary one)."""
    documents = render(None, "redis.enabled=false", "replicaCount=1")
    container = gateway_container(documents)
    config = yaml.safe_load(config_of(documents))
    assert config["store"] == {"data_dir": "/var/lib/mcp-auth-gateway/data"}
    port, metrics = free_port(), free_port()
    config["listen"]["metrics_port"] = metrics
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    args = list(container["args"])
    args[args.index("-c") + 1] = str(path)
    args[args.index("--port") + 1] = str(port)
    env = {**os.environ, "MCP_GATEWAY_STORE__DATA_DIR": str(tmp_path / "data")}
    banner, log = (tmp_path / "serve.out").open("wb"), (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", *args], env=env, stdout=banner, stderr=log, cwd=tmp_path
    )
    try:
        wait_for_port(port, process)
        probes = {key: container[f"{key}Probe"]["httpGet"]["path"] for key in ("startup", "liveness", "readiness")}
        for probe, where in probes.items():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{where}", timeout=5) as answer:
                assert answer.status == 200, probe
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server", headers={"Host": "gw-mcp-auth-gateway"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert "S256" in json.load(answer)["code_challenge_methods_supported"]
        wait_for_port(metrics, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as answer:
            assert answer.status == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
        banner.close()
        log.close()
    lines = (tmp_path / "serve.log").read_text().splitlines()
    assert lines and all("level" in json.loads(line) for line in lines)  # --log-format json: a shipper reads each


# -- wiring: selectors, ports, probes -------------------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUES, ids=values_id)
def test_services_budgets_and_autoscalers_select_the_gateway_pods_by_named_ports(values):
    documents = render(values)
    deployment = one(documents, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert matches(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    container_ports = {p["name"] for c in containers for p in c.get("ports", [])}
    gateway_services = [s for s in kind(documents, "Service") if matches(s["spec"]["selector"], pod_labels)]
    assert gateway_services
    for service in gateway_services:
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports
        if service["spec"].get("clusterIP") != "None":  # /metrics never behind a virtual IP
            assert "metrics" not in {p["targetPort"] for p in service["spec"]["ports"]}
    for budget in kind(documents, "PodDisruptionBudget"):
        assert matches(budget["spec"]["selector"]["matchLabels"], pod_labels)
    for scaler in kind(documents, "HorizontalPodAutoscaler"):
        assert scaler["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
        }
        assert "replicas" not in deployment["spec"]  # the autoscaler owns it
    for ingress in kind(documents, "Ingress"):
        backends = [p["backend"]["service"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
        names = {s["metadata"]["name"] for s in gateway_services}
        assert all(b["name"] in names and b["port"] == {"name": "http"} for b in backends)


def test_the_service_monitor_scrapes_each_pods_metrics_port_with_the_token():
    documents = render(DEPLOY / "helm" / "examples" / "production.yaml")
    monitor = one(documents, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    (service,) = [
        s
        for s in kind(documents, "Service")
        if matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert service["spec"]["clusterIP"] == "None" and [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    container = gateway_container(documents)
    token = next(e for e in container["env"] if e["name"] == "MCP_GATEWAY_LISTEN__METRICS_TOKEN")
    assert endpoint["authorization"]["credentials"] == token["valueFrom"]["secretKeyRef"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["tools"]}


def test_the_bundled_redis_is_reachable_only_from_the_gateway_pods_and_named_in_the_store_url():
    documents = render(DEPLOY / "helm" / "examples" / "bundled-redis.yaml")
    redis = one(documents, "StatefulSet")
    (policy,) = kind(documents, "NetworkPolicy")
    assert matches(policy["spec"]["podSelector"]["matchLabels"], redis["spec"]["template"]["metadata"]["labels"])
    (rule,) = policy["spec"]["ingress"]
    gateway_labels = one(documents, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert [matches(f["podSelector"]["matchLabels"], gateway_labels) for f in rule["from"]] == [True]
    assert not matches(policy["spec"]["podSelector"]["matchLabels"], gateway_labels)
    (service,) = [s for s in kind(documents, "Service") if s["metadata"]["name"] == redis["metadata"]["name"]]
    store = yaml.safe_load(config_of(documents))["store"]
    assert store["url"] == f"redis://{service['metadata']['name']}:6379/0"
    assert "--appendonly" in redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_a_redis_password_from_a_secret_reaches_redis_and_the_store_url_never_the_configmap():
    documents = render(None, "redis.auth.existingSecret=redis-auth")
    redis = one(documents, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    assert redis["args"][-2:] == ["--requirepass", "$(REDIS_PASSWORD)"]
    env = {e["name"]: e for e in gateway_container(documents)["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "redis-auth", "key": "redis-password"}
    names = list(env)
    assert names.index("REDIS_PASSWORD") < names.index("MCP_GATEWAY_STORE__URL")  # $(VAR) needs it defined first
    assert env["MCP_GATEWAY_STORE__URL"]["value"] == "redis://:$(REDIS_PASSWORD)@gw-mcp-auth-gateway-redis:6379/0"
    assert "url" not in yaml.safe_load(config_of(documents))["store"]


def test_an_external_redis_url_from_a_secret_is_the_store_url_by_environment():
    documents = render(None, "redis.enabled=false", "externalRedis.existingSecret=mcp-redis")
    env = {e["name"]: e for e in gateway_container(documents)["env"]}
    assert env["MCP_GATEWAY_STORE__URL"]["valueFrom"]["secretKeyRef"] == {"name": "mcp-redis", "key": "redis-url"}
    assert not kind(documents, "StatefulSet") and "store" not in yaml.safe_load(config_of(documents))


def test_sidecar_mode_puts_the_mcp_server_in_the_gateways_pod_on_the_embedded_store():
    documents = render(DEPLOY / "helm" / "examples" / "sidecar.yaml")
    deployment = one(documents, "Deployment")
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"mcp-server", "gateway"}
    assert containers["mcp-server"]["args"] == ["--host", "127.0.0.1", "--port", "9001"]
    assert containers["mcp-server"]["securityContext"]["allowPrivilegeEscalation"] is False
    assert yaml.safe_load(config_of(documents))["routes"][0]["upstream"] == "http://127.0.0.1:9001/mcp"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = one(documents, "PersistentVolumeClaim")
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_the_admin_listener_stays_on_the_pods_loopback_with_its_token_from_a_secret():
    documents = render(DEPLOY / "helm" / "examples" / "production.yaml")
    config = yaml.safe_load(config_of(documents))
    assert config["admin"]["listen"] == {"host": "127.0.0.1", "port": 9465}
    container = gateway_container(documents)
    assert 9465 not in [p["containerPort"] for p in container["ports"]]
    token = next(e for e in container["env"] if e["name"] == "MCP_GATEWAY_ADMIN__TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "mcp-gateway-tokens", "key": "admin-token"}


def test_a_created_secret_rolls_the_pods_when_it_changes():
    first = one(render(None, "secretEnv.GOOGLE_CLIENT_SECRET=one"), "Deployment")
    second = one(render(None, "secretEnv.GOOGLE_CLIENT_SECRET=two"), "Deployment")
    checksum = "checksum/secret"
    assert (
        first["spec"]["template"]["metadata"]["annotations"][checksum]
        != second["spec"]["template"]["metadata"]["annotations"][checksum]
    )


# -- security defaults ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUES, ids=values_id)
def test_every_pod_runs_unprivileged_read_only_and_without_an_api_token(values):
    for document in render(values):
        if document["kind"] not in ("Deployment", "StatefulSet", "Pod"):
            continue
        pod = document["spec"] if document["kind"] == "Pod" else document["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
            assert not container["image"].endswith(":latest") and ":" in container["image"]
            if container["name"] != "mcp-server":  # the user's own server chooses its root filesystem
                assert context["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("values", VALUES, ids=values_id)
def test_no_secret_value_is_rendered_into_a_configmap(values):
    config = config_of(render(values))
    for key in ("client_secret", "token", "password", "metrics_token"):
        for line in config.splitlines():
            if line.strip().startswith(f"{key}:"):
                assert "${" in line, line


# -- refusals -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sets, says",
    [
        (("redis.enabled=false", "replicaCount=3"), "the embedded store serves one replica"),
        (
            ("redis.enabled=false", "replicaCount=1", "autoscaling.enabled=true"),
            "the embedded store serves one replica",
        ),
        (("externalRedis.url=redis://r:6379/0",), "redis.enabled and externalRedis: choose one store"),
        (
            ("redis.enabled=false", "externalRedis.url=redis://r:6379/0", "externalRedis.existingSecret=s"),
            "url or existingSecret, not both",
        ),
        (("sidecar.enabled=true",), "sidecar.enabled needs sidecar.container.image"),
        (("admin.enabled=true",), "admin.enabled needs admin.tokenSecret.name"),
        (("admin.enabled=true", "admin.tokenSecret.name=t", "admin.port=8080"), "admin.port must differ"),
        (("metrics.enabled=false", "metrics.serviceMonitor.enabled=true"), "serviceMonitor needs metrics.enabled"),
        (("config.public_url=",), "config.public_url is required"),
        (("redis.enbled=true",), "Additional property enbled is not allowed"),
        (("replicas=3",), "Additional property replicas is not allowed"),
        (("externalRedis.url=http://r",), "externalRedis.url"),
        (("image.digest=latest",), "image.digest"),
    ],
    ids=lambda value: value if isinstance(value, str) else ",".join(value),
)
def test_combinations_that_cannot_work_are_refused_with_a_reason(sets, says):
    assert says in refusal(*sets)


# -- the plain manifests --------------------------------------------------------------------------------------------


def test_the_plain_manifests_are_the_chart_rendered():
    done = subprocess.run(
        ["bash", str(DEPLOY / "render-manifests.sh"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("values", VALUES, ids=values_id)
def test_the_release_notes_render_with_each_values_file(values, tmp_path):
    """NOTES.txt is rendered only by `helm install` (which needs a cluster): a copy of the chart renders it through
    `tpl` into a ConfigMap of its own, so its template errors show here."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy)
    shutil.copy(CHART / "templates" / "NOTES.txt", copy / "notes.txt")
    (copy / "templates" / "notes-check.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}\n'
    )
    args = ["template", "gw", str(copy), "--show-only", "templates/notes-check.yaml", "--namespace", "tools"]
    done = run_helm(*args, *([] if values is None else ["-f", str(values)]))
    assert done.returncode == 0, done.stderr
    notes = yaml.safe_load(done.stdout)["data"]["notes"]
    assert "mcp-auth-gateway 0.1.0 is installed as" in notes and "helm -n tools test gw" in notes
    assert ("port-forward" in notes) == (values is not None and values.stem == "production")
