#!/usr/bin/env bash
# Installs what deploy/check.sh needs beyond install-build-deps.sh, from
# Debian 12 packages: yamllint, kubectl (kubernetes-client, unless a kubectl
# is already there), Node.js with npm, and promtool (prometheus).
set -euo pipefail

missing=()
command -v yamllint >/dev/null 2>&1 || missing+=(yamllint)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)

if [ ${#missing[@]} -gt 0 ]; then
  "$(dirname "$0")/apt-install-missing.sh" "${missing[@]}"
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO systemctl disable --now prometheus || true
fi

# The overlays use kustomize components and `labels` (kustomize 4.2+, in
# kubectl 1.22+). Debian 12's kubernetes-client is kubectl 1.20 (kustomize
# 2.0.3), too old: say so rather than fail on a parse error.
version="$(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: v\{0,1\}\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')"
if [ -z "$version" ]; then
  version="$(kubectl version --client 2>/dev/null | sed -n 's/.*Major:"\([0-9]*\)", Minor:"\([0-9]*\).*/\1 \2/p')"
fi
read -r major minor <<<"${version:-0 0}"
if [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -lt 22 ]; }; then
  echo "install-check-deps: kubectl $major.$minor is too old for the kustomize overlays (need 1.22+)." >&2
  echo "install-check-deps: install a current kubectl (https://kubernetes.io/docs/tasks/tools/)." >&2
  exit 1
fi
echo "install-check-deps: yamllint, kubectl $major.$minor, node $(node --version), promtool present"
