#!/usr/bin/env bash
# Runs Berth's whole test suite. On a fresh Debian machine it first installs the real
# clients and services the integration tests drive (skopeo, podman, umoci, haproxy, keepalived,
# PostgreSQL, Redis), chromium and chromedriver for the web UI tests, docker-registry
# (CNCF Distribution, the replication tests' remote), and starts PostgreSQL and Redis if
# they are not running, so this one command is all a newcomer or CI needs. Extra
# arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
for pair in skopeo:skopeo podman:podman umoci:umoci haproxy:haproxy keepalived:keepalived redis-server:redis-server \
            docker-registry:docker-registry \
            pg_ctlcluster:postgresql chromium:chromium chromedriver:chromium-driver; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing test dependencies: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Garage (S3-compatible object storage) for the berth-blob-s3 tests, which start their
# own throwaway server with scripts/garage-test-server.sh. Not packaged by Debian.
if ! command -v garage >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/garage" ]; then
  echo "installing garage (cargo install, takes a while)"
  cargo install garage --locked --no-default-features --features bundled-libs,sqlite
fi

# PostgreSQL on 127.0.0.1:5432 with trust auth for the user postgres, as the store and
# HA tests expect. A cluster this script had to install gets trust auth for loopback.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -n | tail -1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q "^host all postgres 127.0.0.1/32 trust" "$hba"; then
    $SUDO sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  fi
  echo "starting PostgreSQL $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >/dev/null
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
