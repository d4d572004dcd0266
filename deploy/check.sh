#!/usr/bin/env bash
# Checks everything under deploy/ that can be checked without a Docker
# engine or a Kubernetes cluster (CI runs it from .ci/run):
#   yamllint on all YAML; kubectl kustomize renders every overlay; every
#   rendered object validates against the Kubernetes schemas, with no
#   unknown keys; promtool check config / check rules / test rules; the
#   image's runtime packages cover what `ldd goring` needs; and the
#   cross-check against a real goring and a private redis-server
#   (check/crosscheck.mjs).
# Builds goring and goringctl into build/ unless GORING_BINARY is set.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
out="$repo/build/deploy-check"
started=$SECONDS
step() { echo "== deploy/check: $* ($((SECONDS - started)) s)"; }

step "tools"
deploy/install-build-deps.sh
deploy/install-check-deps.sh

step "yamllint"
yamllint --strict -c deploy/.yamllint .

step "kustomize"
rm -rf "$out" && mkdir -p "$out"
rendered=()
for overlay in deploy/k8s/overlays/*/; do
  name="$(basename "$overlay")"
  kubectl kustomize "$overlay" >"$out/$name.yaml"
  echo "rendered $overlay: $(grep -c '^kind:' "$out/$name.yaml") objects"
  rendered+=("$out/$name.yaml")
done

step "npm ci"
(cd deploy/check && npm ci --no-audit --no-fund --loglevel=error)

step "schemas"
node deploy/check/validate.mjs "${rendered[@]}"

step "promtool"
(cd deploy/prometheus && promtool check config prometheus.yml && promtool check rules goring-rules.yml \
  && promtool test rules goring-rules.test.yml)

step "build goring"
if [ -z "${GORING_BINARY:-}" ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" --target goring goringctl
  GORING_BINARY="$repo/build/goring"
fi
goringctl_binary="$(dirname "$GORING_BINARY")/tools/goringctl/goringctl"

step "runtime libraries"
# Every shared library the binaries load comes from a package the runtime
# stage installs, or from debian:bookworm-slim itself.
base_packages="libc6 libgcc-s1 libstdc++6 zlib1g"
# Installed for their files, not loaded: the system CAs of outbound HTTPS.
data_packages="ca-certificates"
image_packages="$(sed -n '/^FROM debian:bookworm-slim$/,$p' deploy/Dockerfile | tr '\\\n' '  ' |
  sed -n 's/.*apt-get install -y --no-install-recommends \([^&]*\)&&.*/\1/p')"
libs_ok=1
needed=" "
for bin in "$GORING_BINARY" "$goringctl_binary"; do
  [ -x "$bin" ] || continue
  for lib in $(ldd "$bin" | awk '/=> \//{print $3}'); do
    pkg="$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1)" || true
    [ -n "$pkg" ] || pkg="$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1)" || true
    needed+="$pkg "
    if [[ " $base_packages $image_packages " != *" $pkg "* ]]; then
      echo "deploy/check: $(basename "$bin") needs $lib from '$pkg', which deploy/Dockerfile's runtime stage does not install" >&2
      libs_ok=0
    fi
  done
done
for pkg in $image_packages; do
  if [[ "$needed" != *" $pkg "* && " $data_packages " != *" $pkg "* ]]; then
    echo "deploy/check: deploy/Dockerfile's runtime stage installs $pkg, which neither binary loads" >&2
    libs_ok=0
  fi
done
[ "$libs_ok" = 1 ] || exit 1
image_packages="$(echo $image_packages)"
echo "runtime packages cover ldd: $image_packages"

step "cross-check against a running goring"
node deploy/check/crosscheck.mjs --goring "$GORING_BINARY" --deploy deploy --repo . "${rendered[@]}"

step "done"
