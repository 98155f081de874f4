#!/usr/bin/env bash
# Mesh benchmark: direct loopback vs two real moat agents (with a real
# control plane) vs an HAProxy mTLS pair, in one run. See README.md.
#
#   bench/mesh/run.sh                 # 3 repetitions of 10 s phases
#   DUR=30s REPS=5 bench/mesh/run.sh
#   SMOKE=1 bench/mesh/run.sh         # a few seconds: checks the harness runs
set -euo pipefail
cd "$(dirname "$0")/../.."
args=(-dur "${DUR:-10s}" -reps "${REPS:-3}" -bulk-mb "${BULK_MB:-1024}")
[ -n "${SMOKE:-}" ] && args=(-smoke)
exec go run ./bench/mesh "${args[@]}" "$@"
