#!/usr/bin/env bash
# Starts a throwaway single-node Garage (S3-compatible object storage) for tests: free
# ports on 127.0.0.1, sqlite metadata and data in a temp dir, replication factor 1, one
# layout applied, and one access key that may create buckets. When ready it prints
#
#   GARAGE_ENDPOINT=http://127.0.0.1:PORT
#   GARAGE_REGION=garage
#   GARAGE_ACCESS_KEY=GK...
#   GARAGE_SECRET_KEY=...
#   GARAGE_CONFIG=/tmp/.../garage.toml
#   GARAGE_BIN=/path/to/garage
#   READY
#
# then keeps Garage running until this script is killed, or the process it watches
# exits (--watch PID, default: its parent), and removes the temp dir. Make a bucket
# for the key with
#   garage -c "$GARAGE_CONFIG" bucket create NAME
#   garage -c "$GARAGE_CONFIG" bucket allow --read --write --owner NAME --key "$GARAGE_ACCESS_KEY"
# The binary is $GARAGE_BIN, else `garage` on PATH, else ~/.cargo/bin/garage
# (install: cargo install garage --locked --no-default-features --features bundled-libs,sqlite).
set -euo pipefail

watch=$PPID
if [ "${1:-}" = "--watch" ]; then watch=$2; fi

bin=${GARAGE_BIN:-}
if [ -z "$bin" ]; then
  bin=$(command -v garage || true)
  [ -n "$bin" ] || bin="$HOME/.cargo/bin/garage"
fi
if [ ! -x "$bin" ]; then
  echo "garage-test-server: no garage binary (set GARAGE_BIN, or: cargo install garage --locked --no-default-features --features bundled-libs,sqlite)" >&2
  exit 127
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/berth-garage.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# A port nothing listens on (checked, then used right away), below Linux's ephemeral
# range (32768+), where every other test's port-0 listener and outgoing connection lands.
taken=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    case "$taken" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      taken="$taken$p "
      echo "$p"
      return
    fi
  done
}
hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

fail() {
  echo "garage-test-server: $1" >&2
  tail -n 30 "$dir/garage.log" >&2 || true
  exit 1
}
g() { "$bin" -c "$dir/garage.toml" "$@"; }

# A port checked free can still be taken before Garage binds it (tests run in parallel):
# a start that dies is retried on fresh ports.
ready=""
for attempt in 1 2 3; do
  rpc_port=$(free_port)
  s3_port=$(free_port)
  rm -rf "$dir/meta" "$dir/data"
  cat >"$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(hex 32)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"
EOF
  chmod 600 "$dir/garage.toml"
  RUST_LOG=${RUST_LOG:-warn} "$bin" -c "$dir/garage.toml" server >"$dir/garage.log" 2>&1 &
  pid=$!
  # Generous: in CI the whole test suite runs at once on two cores, and a start that
  # takes a few seconds alone can take tens of seconds then.
  deadline=$((SECONDS + 90))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      pid=""
      [ "$attempt" -lt 3 ] || fail "garage exited during start (3 tries)"
      echo "garage-test-server: garage exited during start; trying other ports" >&2
      break
    fi
    if node=$(g node id -q 2>/dev/null) && g status >/dev/null 2>&1; then
      ready=1
      break
    fi
    sleep 0.2
  done
  [ -n "$ready" ] && break
  [ -z "$pid" ] || break
done
[ -n "$ready" ] || fail "garage did not start within 90 s"

g layout assign -z dc1 -c 1G "${node%%@*}" >/dev/null || fail "layout assign failed"
g layout apply --version 1 >/dev/null || fail "layout apply failed"

access_key="GK$(hex 12)"
secret_key=$(hex 32)
g key import --yes -n berth-test "$access_key" "$secret_key" >/dev/null || fail "key import failed"
g key allow --create-bucket "$access_key" >/dev/null || fail "key allow failed"

# The S3 API answers once the layout is live.
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ]; do
  (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break
  sleep 0.1
done

echo "GARAGE_ENDPOINT=http://127.0.0.1:$s3_port"
echo "GARAGE_REGION=garage"
echo "GARAGE_ACCESS_KEY=$access_key"
echo "GARAGE_SECRET_KEY=$secret_key"
echo "GARAGE_CONFIG=$dir/garage.toml"
echo "GARAGE_BIN=$bin"
echo "READY"

while kill -0 "$pid" 2>/dev/null && kill -0 "$watch" 2>/dev/null; do
  sleep 0.5
done
