#!/bin/sh
# keepalived check script: healthy when this node can serve the registry, i.e. the local
# load balancer answers and at least one Berth instance behind it is healthy.
#
# It calls `berth healthcheck`, which needs no curl, has its own timeout (so keepalived
# never waits on a hung request) and exits 0 only on HTTP 200 from /api/v2.0/health.
# Harbor's sample scripts grepped `curl` output without a timeout and ran as a user that
# could not execute them; keepalived.conf here sets `script_user` and
# `enable_script_security` for this script (root-owned, not writable by others).
exec "${BERTH_BIN:-/usr/local/bin/berth}" healthcheck --url "${BERTH_CHECK_URL:-http://127.0.0.1:5000}" --timeout-secs 2
