#!/usr/bin/env bash
# Side-by-side benchmark: Berth versus the CNCF Distribution registry (docker-registry).
#
# How to run (from anywhere inside the repository):
#
#   scripts/bench.sh                  # full run: 3 rotating rounds per column, ~15 min
#   scripts/bench.sh --quick          # smoke test: 1 round, short durations, 1000 tags
#   scripts/bench.sh --modes open     # Berth in open mode only (no token flows)
#   scripts/bench.sh --help           # all options of crates/berth-bench
#
# Columns: Berth in Harbor mode with docker-style token flows (a token per repository
# scope; a push that mounts asks for the source repository too), Berth in open mode
# (no authentication, as Distribution runs), and Distribution; the ratios are each
# Berth column over Distribution.
#
# Any argument is passed through to target/release/berth-bench. The script
#   1. builds `cargo build --release -p berth -p berth-bench`
#      (if Berth does not build yet, it builds berth-bench alone and runs with
#      `--berth none`, so Berth's column shows as pending);
#   2. installs Debian's docker-registry (Distribution 2.8) with apt-get when
#      /usr/bin/docker-registry is missing;
#   3. runs the benchmark. Everything listens and connects on 127.0.0.1 only;
#      the servers and their temporary data dirs are removed at the end.
#
# The machine should be otherwise idle: the table is printed as Markdown on
# stdout (progress goes to stderr), e.g. `scripts/bench.sh > bench.md`.
set -euo pipefail

cd "$(dirname "$0")/.."

if pgrep -x rustc >/dev/null 2>&1 || pgrep -x cc1 >/dev/null 2>&1; then
    echo "bench.sh: note: a compiler is running; figures will be skewed" >&2
fi

extra=()
if cargo build --release -p berth -p berth-bench >&2; then
    :
else
    echo "bench.sh: Berth did not build; building berth-bench alone, Berth's column will be pending" >&2
    cargo build --release -p berth-bench >&2
    extra=(--berth none)
fi

if [ ! -x /usr/bin/docker-registry ]; then
    echo "bench.sh: installing docker-registry (CNCF Distribution) with apt-get" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends docker-registry >&2
    # The package starts a system registry on :5000; the benchmark runs its own.
    if command -v systemctl >/dev/null 2>&1; then
        $SUDO systemctl stop docker-registry >/dev/null 2>&1 || true
    fi
fi

exec target/release/berth-bench "${extra[@]}" "$@"
