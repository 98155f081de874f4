#!/usr/bin/env bash
# Mesh benchmark: direct loopback vs moat's 2-hop mesh (client → agent →
# agent → server) vs HAProxy as a 2-hop mTLS pair, all in one run on
# loopback. See README.md for what is measured and the last figures.
#
#   bench/mesh/run.sh            # 10 s per load phase
#   DUR=30s bench/mesh/run.sh    # longer phases
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${DUR:-10s}
BULK_MB=${BULK_MB:-1024}
CONNS=${CONNS:-1000}

command -v haproxy >/dev/null || { echo "run.sh: haproxy missing (apt-get install -y haproxy)" >&2; exit 1; }
command -v fortio >/dev/null || PATH="$PATH:$(go env GOPATH)/bin"
command -v fortio >/dev/null || go install fortio.org/fortio@v1.67.1
command -v python3 >/dev/null || { echo "run.sh: python3 missing" >&2; exit 1; }

W=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT

go build -o "$W/meshbench" ./bench/mesh
"$W/meshbench" setup "$W"

fortio server -http-port 127.0.0.1:18080 -grpc-port disabled -redirect-port disabled >"$W/fortio-server.log" 2>&1 &
pids+=($!)
"$W/meshbench" backends -echo 127.0.0.1:18081 -sink 127.0.0.1:18082 &
pids+=($!)
"$W/meshbench" agent -dir "$W" -role dst 2>"$W/dst.log" &
DST=$!; pids+=($DST)
"$W/meshbench" agent -dir "$W" -role src 2>"$W/src.log" &
SRC=$!; pids+=($SRC)

# HAProxy pair: A originates TLS with frontend's SVID, B terminates it with
# verify required; both check the peer against the same root.
common="global
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
"
{
  echo "$common"
  for i in 0 1 2; do
    echo "frontend fa$i
  bind 127.0.0.1:1708$i
  default_backend ba$i
backend ba$i
  server b 127.0.0.1:1744$i ssl crt $W/frontend.pem ca-file $W/ca.pem verify required ssl-min-ver TLSv1.3
"
  done
} >"$W/ha.cfg"
{
  echo "$common"
  for i in 0 1 2; do
    echo "frontend fb$i
  bind 127.0.0.1:1744$i ssl crt $W/api.pem ca-file $W/ca.pem verify required ssl-min-ver TLSv1.3
  default_backend bb$i
backend bb$i
  server app 127.0.0.1:1808$i
"
  done
} >"$W/hb.cfg"
haproxy -db -f "$W/hb.cfg" >"$W/hb.log" 2>&1 &
HB=$!; pids+=($HB)
haproxy -db -f "$W/ha.cfg" >"$W/ha.log" 2>&1 &
HA=$!; pids+=($HA)
# Wait until every listener answers.
for port in 18080 18081 18082 16080 16081 16082 17080 17081 17082 17440 17441 17442 15443; do
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
  done
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null || { echo "run.sh: nothing listens on $port" >&2; cat "$W"/*.log >&2; exit 1; }
done

hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

declare -A base=([direct]=1808 [mesh]=1608 [haproxy]=1708)
echo "path,p50_us,p99_us,max_rps,bulk_mbps,conn_p50_us,conn_p99_us,rss_a_kb,rss_b_kb" >"$W/results.csv"
for path in direct mesh haproxy; do
  b=${base[$path]}
  echo "== $path: 1 KB requests at 1000 req/s for $DUR" >&2
  fortio load -quiet -qps 1000 -c 8 -t "$DUR" -payload-size 1024 -p 50,99 -json "$W/$path-1k.json" "http://127.0.0.1:${b}0/echo" >"$W/$path-1k.log" 2>&1
  rss_a=-; rss_b=-
  case $path in
    mesh) rss_a=$(hwm $SRC); rss_b=$(hwm $DST) ;;
    haproxy) rss_a=$(hwm $HA); rss_b=$(hwm $HB) ;;
  esac
  echo "== $path: most req/s for $DUR" >&2
  fortio load -quiet -qps 0 -c 32 -t "$DUR" -payload-size 1024 -json "$W/$path-max.json" "http://127.0.0.1:${b}0/echo" >"$W/$path-max.log" 2>&1
  echo "== $path: bulk ${BULK_MB} MB" >&2
  mbps=$("$W/meshbench" bulk -addr "127.0.0.1:${b}2" -mb "$BULK_MB")
  echo "== $path: $CONNS new connections" >&2
  read -r c50 c99 < <("$W/meshbench" connlat -addr "127.0.0.1:${b}1" -n "$CONNS")
  python3 - "$W/$path-1k.json" "$W/$path-max.json" "$path" "$mbps" "$c50" "$c99" "$rss_a" "$rss_b" >>"$W/results.csv" <<'EOF'
import json, sys
lat, mx, path, mbps, c50, c99, ra, rb = sys.argv[1:]
l = json.load(open(lat)); m = json.load(open(mx))
pct = {p["Percentile"]: p["Value"] for p in l["DurationHistogram"]["Percentiles"]}
for f, j in ((lat, l), (mx, m)):
    bad = {k: v for k, v in j["RetCodes"].items() if k != "200"}
    if bad:
        sys.exit(f"{path}: non-200 answers in {f}: {bad}")
print(f"{path},{pct[50]*1e6:.0f},{pct[99]*1e6:.0f},{m['ActualQPS']:.0f},{mbps},{c50},{c99},{ra},{rb}")
EOF
done
echo "== agent RSS after every phase (KB, VmRSS/VmHWM): src $(rss $SRC)/$(hwm $SRC) dst $(rss $DST)/$(hwm $DST); haproxy A $(rss $HA)/$(hwm $HA) B $(rss $HB)/$(hwm $HB)" >&2
kill -TERM "$SRC" "$DST"
wait "$SRC" "$DST" 2>/dev/null || true
echo "== mesh counters (TLS handshakes vs connections carried):" >&2
grep -h "agent stats" "$W/src.log" "$W/dst.log" >&2 || true

python3 - "$W/results.csv" <<'EOF'
import csv, sys
rows = {r["path"]: r for r in csv.DictReader(open(sys.argv[1]))}
cols = [("p50_us", "p50 µs @1k rps"), ("p99_us", "p99 µs @1k rps"), ("max_rps", "max req/s"),
        ("bulk_mbps", "bulk MB/s"), ("conn_p50_us", "new conn p50 µs"), ("conn_p99_us", "new conn p99 µs"),
        ("rss_a_kb", "peak RSS hop A KB"), ("rss_b_kb", "peak RSS hop B KB")]
print("| metric | direct | moat mesh | HAProxy | mesh/HAProxy | mesh/direct |")
print("|---|---|---|---|---|---|")
for k, name in cols:
    d, m, h = rows["direct"][k], rows["mesh"][k], rows["haproxy"][k]
    def ratio(a, b):
        try:
            return f"{float(a)/float(b):.2f}×"
        except (ValueError, ZeroDivisionError):
            return "–"
    print(f"| {name} | {d} | {m} | {h} | {ratio(m, h)} | {ratio(m, d)} |")
EOF
