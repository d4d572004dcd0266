#!/usr/bin/env bash
# Builds the container image from deploy/Dockerfile and checks it running,
# with podman (CI runs it from .ci/run, after deploy/check.sh):
#   1. the base debian:bookworm-slim, unless present: no container registry
#      is reachable from CI, so it is made here with debootstrap from the
#      Debian mirror apt uses, configured like Docker's debian:bookworm-slim
#      (apt keeps no caches, no docs, man pages or locales), and cached as a
#      tarball in ${XDG_CACHE_HOME:-~/.cache}/goring (delete it to refresh);
#   2. podman build of deploy/Dockerfile, the repository root as context;
#   3. the image with a private redis-server, both on free loopback ports:
#      /health on both listeners and /ready answer 200, the HEALTHCHECK
#      passes, a call between two WebSocket clients goes through it, it
#      runs as uid 10001 on a read-only root filesystem, and stopped, it
#      drains and exits 0;
#   4. the image's size and what it adds above its base;
#   5. docker-compose up of deploy/docker-compose.yml's scaling profile
#      (Redis and two goring) through podman's Docker API, a call from one
#      instance to the other, stop (both exit 0), down.
# Everything it starts is stopped on exit, on failure too. Needs root:
# rootless podman does not run on these machines.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
step() { echo "== deploy/check-image: $* ($((SECONDS - started)) s)"; }
fail() {
  echo "deploy/check-image: $*" >&2
  exit 1
}
if [ "$(id -u)" -ne 0 ]; then
  exec sudo "$0" "$@"
fi

step "tools"
packages=(podman buildah debootstrap runc docker-compose redis-server curl)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
deploy/apt-install-missing.sh "${packages[@]}"
if [ ! -d deploy/check/node_modules ]; then
  (cd deploy/check && npm ci --no-audit --no-fund --loglevel=error)
fi

tmp="$(mktemp -d /tmp/goring-check-image.XXXXXX)"
container=""
redis_pid=""
service_pid=""
compose_dir=""
cleanup() {
  local status=$?
  set +e
  if [ -n "$compose_dir" ]; then
    docker-compose --project-directory "$compose_dir" -f "$compose_dir/docker-compose.yml" -p "$project" \
      --profile scaling down --volumes --timeout 20 >/dev/null 2>&1
  fi
  [ -n "$container" ] && podman rm --force --time 10 "$container" >/dev/null 2>&1
  [ -n "$service_pid" ] && kill "$service_pid" 2>/dev/null && wait "$service_pid" 2>/dev/null
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  # debootstrap mounts /proc and /sys in its target; never delete through one.
  findmnt -rn -o TARGET | grep "^$tmp/" | sort -r | xargs -r umount -l
  rm -rf --one-file-system "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stock podman here fails: crun cannot handle the hybrid cgroup layout, and
# the default ulimits may not be raised. runc with fixed ulimits works.
cat >"$tmp/containers.conf" <<'EOF'
[engine]
runtime = "runc"

[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
EOF
export CONTAINERS_CONF="$tmp/containers.conf"

# A loopback port nothing listens on now.
free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
# Polls URL until it answers 200 (returns 0) or 30 s pass (returns 1).
wait_200() {
  local url="$1" end=$((SECONDS + 30)) code
  while :; do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$url" || true)"
    [ "$code" = 200 ] && return 0
    if [ $SECONDS -ge $end ]; then
      echo "deploy/check-image: $url answered $code, not 200, for 30 s" >&2
      return 1
    fi
    sleep 0.5
  done
}
# "URI SUITE" for every enabled deb source of this machine's apt, from
# one-line .list files and deb822 .sources files.
apt_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2, $3 }'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      {
        delete v; key = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^#/) continue
          if ($i ~ /^[ \t]/) { v[key] = v[key] " " $i; continue }
          key = tolower(substr($i, 1, index($i, ":") - 1)); v[key] = substr($i, index($i, ":") + 1)
        }
        if (tolower(v["enabled"]) ~ /no/ || (" " v["types"] " ") !~ /[ \t]deb[ \t]/) next
        n = split(v["uris"], uris, /[ \t]+/); m = split(v["suites"], suites, /[ \t]+/)
        for (a = 1; a <= n; a++) for (b = 1; b <= m; b++) if (uris[a] != "" && suites[b] != "") print uris[a], suites[b]
      }' "$f"
  done
}

step "base image"
base=debian:bookworm-slim
if podman image exists "$base"; then
  echo "using the local $base: $(podman image inspect --format '{{.Id}} {{.Created}}' "$base")"
else
  # The base's apt sources are this machine's Debian ones, so that the
  # Dockerfile's apt-get reaches the same mirror apt does here.
  sources="$(apt_sources | awk '$2 ~ /^bookworm(-updates|-security)?$/' | sort -u)"
  mirror="$(awk '$2 == "bookworm" { print $1; exit }' <<<"$sources")"
  [ -n "$mirror" ] || fail "no Debian bookworm source in /etc/apt/sources.list{,.d}"
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/goring"
  tarball="$cache/debian-bookworm-slim-$(sha256sum <<<"$sources" | cut -c1-12).tar"
  if [ ! -s "$tarball" ]; then
    echo "debootstrap --variant=minbase bookworm from $mirror"
    rootfs="$tmp/rootfs"
    nice debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
      { tail -20 "$tmp/debootstrap.log" >&2; fail "debootstrap failed"; }
    while read -r uri suite; do
      printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n' \
        "$uri" "$suite"
    done <<<"$sources" >"$rootfs/etc/apt/sources.list.d/debian.sources"
    rm -f "$rootfs/etc/apt/sources.list"
    # As in Docker's debian images: apt keeps no package caches or .debs,
    # keeps its lists compressed, fetches no translations; no service starts
    # during a build; dpkg installs no docs (but copyrights), man pages or
    # locales.
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d" && chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
    (
      cd "$rootfs"
      find usr/share/doc -mindepth 1 ! -type d ! -path 'usr/share/doc/*/copyright' -delete
      find usr/share/doc -mindepth 1 -depth -type d -empty -delete
      find usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
      rm -rf usr/share/groff/* usr/share/info/* usr/share/linda/* usr/share/lintian/overrides/* usr/share/man/*
      # The engine provides these at run time; debootstrap copied the host's.
      rm -f etc/hostname etc/resolv.conf
      rm -rf var/cache/apt/* var/lib/apt/lists/* var/log/bootstrap.log var/log/apt/*.log
    )
    mkdir -p "$cache"
    tar --numeric-owner -C "$rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf --one-file-system "$rootfs"
  fi
  podman import --quiet --change 'CMD ["bash"]' \
    --message "debootstrap --variant=minbase bookworm $mirror, slimmed (deploy/check-image.sh)" \
    "$tarball" "localhost/$base" >/dev/null
  echo "made localhost/$base from $tarball"
fi

step "build"
image=goring:latest
# Docker's image format, as `docker build` makes: OCI's has no HEALTHCHECK.
# Each line of the log gets the script's clock, so the steps show their time.
nice podman build --pull=never --format docker -f deploy/Dockerfile --ignorefile deploy/Dockerfile.dockerignore \
  -t "$image" . 2>&1 | while IFS= read -r line; do printf '%5d s  %s\n' $((SECONDS - started)) "$line"; done \
  >"$tmp/build.log" || { tail -40 "$tmp/build.log" >&2; fail "podman build failed"; }
grep -E 'STEP [0-9]+/[0-9]+: (FROM|RUN)|Using cache|COMMIT' "$tmp/build.log" | cut -c1-120

step "run"
redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$tmp/redis.log" 2>&1 &
redis_pid=$!
public_port="$(free_port)"
admin_port="$(free_port)"
secret="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
container="goring-check-image-$$"
# As Compose and Kubernetes run it: read-only root, a tmpfs on /tmp only, no
# capabilities. On the host's network, so it reaches the private Redis on
# loopback and listens on loopback only.
podman run --detach --name "$container" --network host \
  --read-only --read-only-tmpfs=false --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
  -e SERVER_ID=image-check -e JWT_SECRET="$secret" -e REDIS_ADDR="127.0.0.1:$redis_port" \
  -e BIND_ADDR=127.0.0.1 -e PORT="$public_port" -e ADMIN_ADDR=127.0.0.1 -e ADMIN_PORT="$admin_port" \
  "$image" >/dev/null 2>"$tmp/run.log" || { cat "$tmp/run.log" >&2; fail "podman run failed"; }
# (Its stderr holds podman's complaint that no systemd runs here to schedule
# health checks; see `podman healthcheck run` below.)
show_logs() { podman logs --tail 30 "$container" >&2 || true; }
wait_200 "http://127.0.0.1:$admin_port/health" || { show_logs; exit 1; }
wait_200 "http://127.0.0.1:$public_port/health" || { show_logs; exit 1; }
wait_200 "http://127.0.0.1:$admin_port/ready" || { show_logs; exit 1; }
echo "GET /health (public :$public_port, admin :$admin_port) and /ready: 200"
# No systemd here, so podman schedules no health checks: run it once.
podman healthcheck run "$container" || { show_logs; fail "the image's HEALTHCHECK failed"; }
echo "HEALTHCHECK (goring-healthcheck): healthy"
node deploy/check/call.mjs --secret "$secret" "$public_port" || { show_logs; exit 1; }

pid="$(podman inspect --format '{{.State.Pid}}' "$container")"
uids="$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")"
[ "$uids" = "10001 10001 10001 10001" ] || fail "goring runs with uids $uids, not 10001"
gid="$(awk '/^Gid:/ { print $2 }' "/proc/$pid/status")"
[ "$gid" = 10001 ] || fail "goring runs with gid $gid, not 10001"
[ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$container")" = true ] || fail "root filesystem not read-only"
if podman exec "$container" sh -c ': >/usr/local/bin/written && echo wrote' 2>/dev/null | grep -q wrote; then
  fail "could write to the root filesystem"
fi
podman exec "$container" sh -c ': >/tmp/written' || fail "cannot write to /tmp"
echo "goring runs as uid/gid 10001; the root filesystem refuses writes, /tmp takes them"
# The outbound HTTPS client (JWKS, webhooks) verifies against the system CAs.
podman exec "$container" sh -c 'test -s /etc/ssl/certs/ca-certificates.crt' \
  || fail "the image has no system CA bundle (/etc/ssl/certs/ca-certificates.crt)"
echo "the image holds the system CA bundle for outbound HTTPS"
# STOPSIGNAL: goring drains and exits 0 within SHUTDOWN_GRACE (8 s).
podman stop --time 15 "$container" >/dev/null 2>&1
code="$(podman inspect --format '{{.State.ExitCode}}' "$container")"
[ "$code" = 0 ] || { show_logs; fail "goring exited $code after the stop signal"; }
echo "stopped: goring drained and exited 0"
podman rm --force "$container" >/dev/null 2>&1
container=""
kill "$redis_pid"
wait "$redis_pid" || true
redis_pid=""

step "size"
size() { podman image inspect --format '{{.Size}}' "$1"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
podman history --format '{{.Size}}\t{{.CreatedBy}}' "$image" | cut -c1-110
image_size="$(size "$image")"
base_size="$(size "$base")"
echo "image: $(mb "$image_size"); $base: $(mb "$base_size"); above the base: $(mb $((image_size - base_size)))"

step "compose"
# docker-compose talks to podman's Docker API on a private socket.
podman system service --time=0 "unix://$tmp/podman.sock" >"$tmp/service.log" 2>&1 &
service_pid=$!
export DOCKER_HOST="unix://$tmp/podman.sock"
for _ in $(seq 100); do [ -S "$tmp/podman.sock" ] && break; sleep 0.1; done
# Redis: a stand-in for redis:7-bookworm (no registry), see the Dockerfile.
mkdir "$tmp/redis-context"
nice podman build --pull=never --format docker -f deploy/check/redis.Dockerfile -t localhost/goring-check-redis:7 "$tmp/redis-context" \
  >"$tmp/redis-build.log" 2>&1 || { tail -20 "$tmp/redis-build.log" >&2; fail "building the Redis stand-in failed"; }
# The compose file as it is, next to its own .env (a deploy/.env of yours is
# left alone): .env.example with the two secrets set, as README says.
project="goring-check-image-$$"
compose_dir="$tmp/compose"
mkdir "$compose_dir"
cp deploy/docker-compose.yml "$compose_dir/"
admin_token="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
sed -e "s/^JWT_SECRET=.*/JWT_SECRET=$secret/" -e "s/^ADMIN_TOKEN=.*/ADMIN_TOKEN=$admin_token/" \
  deploy/.env.example >"$compose_dir/.env"
ports=()
for _ in 1 2 3 4; do ports+=("$(free_port)"); done
export REDIS_IMAGE=localhost/goring-check-redis:7
export GORING_1_PUBLISH="127.0.0.1:${ports[0]}" GORING_1_ADMIN_PUBLISH="${ports[1]}"
export GORING_2_PUBLISH="127.0.0.1:${ports[2]}" GORING_2_ADMIN_PUBLISH="${ports[3]}"
compose() {
  docker-compose --project-directory "$compose_dir" -f "$compose_dir/docker-compose.yml" -p "$project" \
    --profile scaling "$@"
}
# Podman runs health checks from systemd timers; without systemd this runs
# them until each container is healthy, bounded.
healthy() {
  local c end=$((SECONDS + 60))
  for c in "$@"; do
    until podman healthcheck run "$c" >/dev/null 2>&1; do
      [ $SECONDS -lt $end ] || { podman logs --tail 30 "$c" >&2; fail "$c not healthy within 60 s"; }
      sleep 1
    done
  done
}
container_of() { compose ps -q "$1"; }
compose up --detach --no-build redis
healthy "$(container_of redis)"
compose up --detach --no-build
healthy "$(container_of goring)" "$(container_of goring-2)"
compose ps
wait_200 "http://127.0.0.1:${ports[1]}/ready" || { compose logs --tail 30 >&2; exit 1; }
wait_200 "http://127.0.0.1:${ports[3]}/ready" || { compose logs --tail 30 >&2; exit 1; }
echo "both instances healthy and ready (admin :${ports[1]}, :${ports[3]})"
node deploy/check/call.mjs --secret "$secret" "${ports[0]}" "${ports[2]}" || { compose logs --tail 30 >&2; exit 1; }
# Within stop_grace_period, both drain and exit 0.
instances="$(container_of goring) $(container_of goring-2)"
compose stop --timeout 20
for c in $instances; do
  code="$(podman inspect --format '{{.Name}} {{.State.ExitCode}}' "$c")"
  [ "${code##* }" = 0 ] || fail "${code% *} exited ${code##* } after compose stop"
done
echo "compose stop: both instances drained and exited 0"
compose down --volumes
compose_dir=""
kill "$service_pid"
wait "$service_pid" || true
service_pid=""

step "done"
