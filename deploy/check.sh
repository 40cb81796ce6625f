#!/usr/bin/env bash
# Offline checks of the Kubernetes deployment, for developers and CI (exits non-zero on any
# problem):
#   1. the derived files are current (deploy/k8s/sync.py --check: alert rules, dashboards, the
#      workers' Secret Role, the KEDA triggers);
#   2. every overlay renders (kubectl kustomize);
#   3. the rendered objects validate (deploy/k8s/validate.py): core objects strictly against the
#      Kubernetes ${K8S_VERSION} schemas of kubernetes-validate, the custom resources
#      (ServiceMonitor, PrometheusRule, ScaledObject) structurally, plus the cross-object facts.
# Needs kubectl (with its built-in kustomize) and python3; installs kubernetes-validate==1.37.0
# into .venv (PyPI) when it is missing there. PYTHON=... selects another interpreter that already
# has it.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION="${K8S_VERSION:-1.32.0}"
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"

if ! command -v kubectl >/dev/null; then
  echo "deploy/check.sh: kubectl not found (it renders the overlays with kustomize)" >&2
  exit 1
fi
if [ -z "${PYTHON:-}" ]; then
  PYTHON=.venv/bin/python
  if ! { [ -x "$PYTHON" ] && "$PYTHON" -c 'import kubernetes_validate, yaml' 2>/dev/null; }; then
    [ -x "$PYTHON" ] || python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "$KUBERNETES_VALIDATE"
  fi
fi
if ! "$PYTHON" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
  echo "deploy/check.sh: $PYTHON lacks $KUBERNETES_VALIDATE" >&2
  exit 1
fi

"$PYTHON" deploy/k8s/sync.py --check

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
for overlay in deploy/k8s/overlays/*/; do
  name="$(basename "$overlay")"
  kubectl kustomize "$overlay" > "$rendered/$name.yaml"
done

"$PYTHON" deploy/k8s/validate.py --kubernetes-version "$K8S_VERSION" "$rendered"/*.yaml
echo "deploy/check.sh: all overlays render and validate (Kubernetes $K8S_VERSION)"
