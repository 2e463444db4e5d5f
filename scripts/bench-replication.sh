#!/usr/bin/env bash
# Replication and proxy-cache benchmark, one run, everything on 127.0.0.1:
#
#   1. Berth replicates N images (one incompressible layer each, TOTAL_MB in all) to a
#      CNCF Distribution (a push policy, manual run, until the execution ends), and
#      `skopeo sync` copies the same set from Berth to a second, empty Distribution;
#      the ratio is skopeo's time over Berth's (>= 1: Berth at least as fast).
#   2. A proxy-cache hit against a local pull: the same image pulled with skopeo from a
#      proxy project whose upstream (the first Distribution) has it and that has cached
#      it already, and from the project it was pushed to, PULLS times each (alternating).
#
#   N=50 TOTAL_MB=1024 scripts/bench-replication.sh     # the issue's size (the default)
#   N=10 TOTAL_MB=100 PULLS=5 scripts/bench-replication.sh
#   BERTH=target/release/berth scripts/bench-replication.sh
#
# Needs: a built berth (BERTH, default target/release/berth, else target/debug/berth),
# docker-registry, skopeo, curl, jq. Prints a Markdown table on stdout, progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-50}
TOTAL_MB=${TOTAL_MB:-1024}
PULLS=${PULLS:-5}
PW=Harbor12345
BERTH=${BERTH:-}
if [ -z "$BERTH" ]; then
    if [ -x target/release/berth ]; then BERTH=target/release/berth; else BERTH=target/debug/berth; fi
fi
for t in docker-registry skopeo curl jq "$BERTH"; do
    command -v "$t" >/dev/null || { echo "bench-replication.sh: $t is required" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
log() { echo "bench-replication: $*" >&2; }

start_distribution() { # name -> prints URL
    local port dir
    port=$(free_port)
    dir="$tmp/$1"
    mkdir -p "$dir"
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$dir/data" "$port" >"$dir/config.yml"
    docker-registry serve "$dir/config.yml" >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
    echo "127.0.0.1:$port"
}

log "starting Berth ($BERTH), two Distributions"
mkfifo "$tmp/out"
BERTH_ADMIN_PASSWORD=$PW BERTH_LOG_LEVEL=warn "$BERTH" serve --listen 127.0.0.1:0 --data-dir "$tmp/berth" >"$tmp/out" &
pids+=($!)
read -r line <"$tmp/out"
B=${line#listening on }
DA=$(start_distribution dist-a)
DB=$(start_distribution dist-b)
api() { curl -fsS -u "admin:$PW" -H 'content-type: application/json' "$@"; }

api -X POST "http://$B/api/v2.0/projects" -d '{"project_name":"bench","metadata":{"public":"true"}}'
layer_bytes=$((TOTAL_MB * 1024 * 1024 / N))
log "pushing $N images of $layer_bytes bytes to Berth"
for i in $(seq "$N"); do
    head -c "$layer_bytes" /dev/urandom >"$tmp/layer"
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"bench":%s}' "$i" >"$tmp/config"
    ld=sha256:$(sha256sum "$tmp/layer" | cut -d' ' -f1)
    cd=sha256:$(sha256sum "$tmp/config" | cut -d' ' -f1)
    for f in layer config; do
        d=sha256:$(sha256sum "$tmp/$f" | cut -d' ' -f1)
        curl -fsS -u "admin:$PW" -X POST --data-binary "@$tmp/$f" -H 'content-type: application/octet-stream' \
            "http://$B/v2/bench/img$i/blobs/uploads/?digest=$d" >/dev/null
    done
    m=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
        "$cd" "$(stat -c %s "$tmp/config")" "$ld" "$layer_bytes")
    curl -fsS -u "admin:$PW" -X PUT -H 'content-type: application/vnd.oci.image.manifest.v1+json' -d "$m" \
        "http://$B/v2/bench/img$i/manifests/v1" >/dev/null
done

reg=$(api -X POST -D - -o /dev/null "http://$B/api/v2.0/registries" \
    -d "{\"name\":\"dist-a\",\"type\":\"docker-registry\",\"url\":\"http://$DA\",\"insecure\":true}" |
    tr -d '\r' | awk -F/ 'tolower($0) ~ /^location:/ {print $NF}')
pol=$(api -X POST -D - -o /dev/null "http://$B/api/v2.0/replication/policies" \
    -d "{\"name\":\"bench\",\"dest_registry\":{\"id\":$reg},\"filters\":[{\"type\":\"name\",\"value\":\"bench/**\"}]}" |
    tr -d '\r' | awk -F/ 'tolower($0) ~ /^location:/ {print $NF}')

log "Berth replicating to Distribution"
t0=$(now)
exec_id=$(api -X POST -D - -o /dev/null "http://$B/api/v2.0/replication/executions" -d "{\"policy_id\":$pol}" |
    tr -d '\r' | awk -F/ 'tolower($0) ~ /^location:/ {print $NF}')
while :; do
    st=$(api "http://$B/api/v2.0/replication/executions/$exec_id" | jq -r .status)
    [ "$st" != InProgress ] && break
    sleep 0.2
done
t_berth=$(echo "$(now) - $t0" | bc)
[ "$st" = Succeed ] || { log "replication ended $st"; exit 1; }

log "skopeo sync of the same set"
{
    echo "$B:"
    echo "  tls-verify: false"
    echo "  credentials: {username: admin, password: $PW}"
    echo "  images:"
    for i in $(seq "$N"); do echo "    bench/img$i: [v1]"; done
} >"$tmp/sync.yaml"
t0=$(now)
skopeo sync --src yaml --dest docker --dest-tls-verify=false "$tmp/sync.yaml" "$DB" >/dev/null 2>&1
t_skopeo=$(echo "$(now) - $t0" | bc)

log "proxy-cache hit against a local pull"
api -X POST "http://$B/api/v2.0/projects" -d "{\"project_name\":\"px\",\"registry_id\":$reg,\"metadata\":{\"public\":\"true\"}}"
pull() { # image -> seconds
    rm -rf "$tmp/pull"
    local t
    t=$(now)
    skopeo copy --src-tls-verify=false --src-creds "admin:$PW" "docker://$B/$1" "dir:$tmp/pull" >/dev/null 2>&1
    echo "$(now) - $t" | bc
}
pull px/bench/img1:v1 >/dev/null # first pull: fetched from the upstream
for _ in $(seq 300); do
    api -o /dev/null "http://$B/api/v2.0/projects/px/repositories/bench%252Fimg1/artifacts/v1" 2>/dev/null && break
    sleep 0.2
done
t_proxy=0
t_local=0
for _ in $(seq "$PULLS"); do
    t_proxy=$(echo "$t_proxy + $(pull px/bench/img1:v1)" | bc)
    t_local=$(echo "$t_local + $(pull bench/img1:v1)" | bc)
done

mib=$((layer_bytes * N / 1048576))
cat <<EOF
| measure | Berth | other | ratio |
|---|---|---|---|
| replicate $N images ($mib MiB) to Distribution vs \`skopeo sync\` | $(printf %.2f "$t_berth") s | $(printf %.2f "$t_skopeo") s | $(echo "scale=2; $t_skopeo / $t_berth" | bc)x |
| pull one image ($((layer_bytes / 1048576)) MiB), mean of $PULLS: proxy-cache hit vs local | $(echo "scale=3; $t_proxy / $PULLS" | bc) s | $(echo "scale=3; $t_local / $PULLS" | bc) s | $(echo "scale=2; $t_local / $t_proxy" | bc)x |
EOF
