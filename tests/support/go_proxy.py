"""A Go module proxy in a directory (GOPROXY=file://…) for deploy/helm.sh's build path, which the real proxy cannot
exercise on a machine that does not reach it. It serves the two modules the script asks for, in the layout
proxy.golang.org uses (`<module>/@v/list`, `.info`, `.mod`, `.zip`):

- golang.org/toolchain@v0.0.1-<GO_TOOLCHAIN>.linux-<arch>: the distribution's own Go (GOROOT of `go`) packed the
  way cmd/distpack packs a release (go.mod files as _go.mod, no file modes, no testdata); so the script's
  download, its permission and go.mod fixes and its build all run on a real Go distribution;
- helm.sh/helm/v3@v3.17.3: a small stand-in for Helm's command with Helm's own internal/version variables
  (version, metadata, gitCommit, gitTreeState), so the -X flags the script passes are checked by what it prints.
"""

from __future__ import annotations

import json
import platform
import subprocess
import zipfile
from pathlib import Path

TOOLCHAIN_MODULE = "golang.org/toolchain"
HELM_MODULE = "helm.sh/helm/v3"

VERSION_GO = """package version

var (
	version      = "v3.17"
	metadata     = "unreleased"
	gitCommit    = ""
	gitTreeState = ""
)

// Get is what `helm version` reports.
func Get() map[string]string {
	v := version
	if metadata != "" {
		v += "+" + metadata
	}
	return map[string]string{"Version": v, "GitCommit": gitCommit, "GitTreeState": gitTreeState}
}
"""

HELM_GO = """package main

import (
	"fmt"
	"os"
	"text/template"

	"helm.sh/helm/v3/internal/version"
)

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "version" {
		info := version.Get()
		if len(os.Args) == 4 && os.Args[2] == "--template" {
			template.Must(template.New("v").Parse(os.Args[3])).Execute(os.Stdout, info)
			return
		}
		fmt.Println(info["Version"])
		return
	}
	fmt.Fprintln(os.Stderr, "a stand-in for helm: only `version` works")
	os.Exit(2)
}
"""


def publish(proxy: Path, module: str, version: str, go_mod: str, files: dict[str, Path | str]) -> None:
    """One version of `module` in `proxy`: `files` maps a path in the module to a file on disk or a text."""
    where = proxy / module / "@v"
    where.mkdir(parents=True, exist_ok=True)
    prefix = f"{module}@{version}/"
    with zipfile.ZipFile(where / f"{version}.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, source in files.items():
            if isinstance(source, Path):
                archive.write(source, prefix + name)
            else:
                archive.writestr(prefix + name, source)
    (where / f"{version}.mod").write_text(go_mod)
    (where / f"{version}.info").write_text(json.dumps({"Version": version, "Time": "2025-04-09T00:00:00Z"}))
    with (where / "list").open("a") as listing:
        listing.write(version + "\n")


def goroot() -> Path:
    done = subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True, check=True)
    return Path(done.stdout.strip())


def toolchain_files(root: Path) -> dict[str, Path]:
    """GOROOT as a toolchain module holds it: bin, pkg/tool, pkg/include, src and VERSION; go.mod as _go.mod."""
    files: dict[str, Path] = {}
    for top in ("bin", "pkg/tool", "pkg/include", "src", "VERSION"):
        base = root / top
        for path in [base] if base.is_file() else base.rglob("*"):
            name = path.relative_to(root).as_posix()
            if not path.is_file() or "/testdata/" in f"/{name}/":
                continue
            if path.name == "go.mod":
                name = name[: -len("go.mod")] + "_go.mod"
            files[name] = path
    return files


def go_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def build_proxy(proxy: Path, toolchain: str, helm_version: str) -> None:
    """Both modules; `toolchain` is the version the script pins (e.g. go1.23.7), whatever Go is packed under it."""
    module_version = f"v0.0.1-{toolchain}.linux-{go_arch()}"
    publish(proxy, TOOLCHAIN_MODULE, module_version, f"module {TOOLCHAIN_MODULE}\n", toolchain_files(goroot()))
    go_mod = f"module {HELM_MODULE}\n\ngo 1.19\n"
    files = {"go.mod": go_mod, "internal/version/version.go": VERSION_GO, "cmd/helm/helm.go": HELM_GO}
    publish(proxy, HELM_MODULE, helm_version, go_mod, files)
