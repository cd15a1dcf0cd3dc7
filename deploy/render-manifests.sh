#!/usr/bin/env bash
# deploy/k8s/*.yaml are the Helm chart rendered with an example's values, for `kubectl apply` without Helm:
#   deploy/render-manifests.sh          # rewrite them
#   deploy/render-manifests.sh --check  # exit 1 when one differs from the chart (tests/deploy runs this)
set -euo pipefail
cd "$(dirname "$0")"
helm=$(./helm.sh)
status=0
# manifest <- example values, release name
for pair in scaled:bundled-redis:mcp-gateway sidecar:sidecar:notes; do
  IFS=: read -r manifest example release <<<"$pair"
  want=$(
    printf '# Rendered from deploy/helm/mcp-auth-gateway with deploy/helm/examples/%s.yaml by\n' "$example"
    printf '# deploy/render-manifests.sh: edit the chart or the example, not this file.\n'
    sed -n '1,/^[^#]/{/^#/p}' "helm/examples/$example.yaml" | grep -v 'helm install\|render-manifests\|rendered (' |
      sed 's/^#/#/'
    printf '#   kubectl apply -f deploy/k8s/%s.yaml\n' "$manifest"
    "$helm" template "$release" helm/mcp-auth-gateway -f "helm/examples/$example.yaml" --skip-tests
  )
  if [ "${1:-}" = --check ]; then
    if ! diff -u "k8s/$manifest.yaml" <(echo "$want") >&2; then
      echo "render-manifests: deploy/k8s/$manifest.yaml differs from the chart: run deploy/render-manifests.sh" >&2
      status=1
    fi
  else
    echo "$want" >"k8s/$manifest.yaml"
    echo "render-manifests: deploy/k8s/$manifest.yaml" >&2
  fi
done
exit $status
