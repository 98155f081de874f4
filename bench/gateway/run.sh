#!/usr/bin/env bash
# Benchmarks moat's gateway against nginx + ModSecurity v3 + OWASP CRS on
# this machine, both in front of the same backend, with the same requests.
#
# moat runs as it does in production: a control plane (moat server), an
# agent on the backend's node, and moat gateway joined as node "edge" that
# reaches the backend over the mesh (mutual TLS, allowed by an intention).
# nginx proxies to the backend directly.
#
# Usage: bench/gateway/run.sh [duration=10s] [connections=32]
#   REPS=3         repetitions of every measurement (medians are reported)
#   SMOKE=1        a run of a few seconds that only proves the harness works
#   CORPUS=file    request corpus for the detection replay
#   KEEP=1         keep the temporary directory (logs, configs)
#   PROFILE=1      build moat with -tags pprof and write a CPU profile of
#                  the WAF-on gateway under each request type to
#                  $W/moat-<type>.pprof, the WAF-off one's to
#                  $W/moat-off-<type>.pprof and the backend node's
#                  agent's during the WAF-off runs to
#                  $W/agent-off-<type>.pprof (with KEEP=1 to look at them)
#   BASE=<git ref> A/B mode: also build moat at that ref and run it as a
#                  third gateway node (WAF on, same control plane, agent,
#                  backend and config); the throughput loop then measures
#                  only the two WAF-on builds, side by side per repetition
#                  and request type (alternating which goes first), and
#                  reports medians per build and current/base ratios
#   BASE_WAF=off   with BASE: the base node runs without the WAF, and the
#                  loop measures the two WAF-off builds instead
# Needs: go, wrk, nginx, libnginx-mod-http-modsecurity, modsecurity-crs,
# openssl, python3, curl. Everything listens on 127.0.0.1 on ports found
# free; all state lives in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10s}
CONNS=${2:-32}
REPS=${REPS:-3}
CORPUS=${CORPUS:-internal/waf/testdata/corpus.jsonl}
LIMIT=0
BASE=${BASE:-}
BASE_WAF=${BASE_WAF:-on}
case $BASE_WAF in on | off) ;; *) echo "bench: BASE_WAF is on or off" >&2; exit 1 ;; esac
AB_CUR="moat WAF $BASE_WAF" AB_BASE="base WAF $BASE_WAF"
if [ -n "${SMOKE:-}" ]; then
  DUR=1s CONNS=4 REPS=1 LIMIT=40
fi
MODSEC_SO=/usr/lib/nginx/modules/ngx_http_modsecurity_module.so
for c in wrk nginx openssl go python3 curl; do
  command -v "$c" >/dev/null || { echo "bench: $c is not installed (apt-get install -y wrk nginx libnginx-mod-http-modsecurity modsecurity-crs openssl python3 curl)" >&2; exit 1; }
done
[ -f "$MODSEC_SO" ] || { echo "bench: $MODSEC_SO missing (apt-get install -y libnginx-mod-http-modsecurity)" >&2; exit 1; }
[ -d /usr/share/modsecurity-crs/rules ] || { echo "bench: Debian's CRS missing (apt-get install -y modsecurity-crs)" >&2; exit 1; }

W=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "bench: kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
fail() { echo "bench: $*" >&2; for f in "$W"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done; exit 1; }

# Free loopback ports (never fixed: other runs and tests share the
# machine), found free in 10000-13999, below the kernel's ephemeral range:
# they are bound only after the build, and a port from the ephemeral range
# could meanwhile become another test's connection. The range is the one
# bench/mesh uses (see internal/testkit's Ports); benchmarks never run at
# once, and the smoke test runs one after the other.
read -r P_SERVER P_MESH_APP P_MESH_ON P_MESH_OFF P_ON P_OFF P_BACKEND P_NGX_ON P_NGX_OFF P_PPROF P_PPROF_OFF P_BASE P_MESH_BASE P_PPROF_AGENT < <(python3 -c '
import random, socket
ports = []
for _ in range(2000):
    if len(ports) == 14:
        break
    p = random.randrange(10000, 14000)
    if p in ports:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(" ".join(str(p) for p in ports))')
[ -n "$P_PPROF_AGENT" ] || { echo "bench: no 14 free ports in 10000-13999" >&2; exit 1; }

# wait_http URL: until something answers (any status), at most 60 s.
wait_http() {
  for _ in $(seq 600); do
    curl -sk -o /dev/null "$1" && return 0
    sleep 0.1
  done
  fail "nothing answers at $1"
}

echo "== building"
if [ -n "${PROFILE:-}" ]; then
  go build -tags pprof -o "$W/moat" ./cmd/moat
else
  go build -o "$W/moat" ./cmd/moat
fi
if [ -n "$BASE" ]; then
  # The base build comes from the ref's tree alone (git archive: no
  # worktree to register or forget), built with the same toolchain.
  BASE_REV=$(git rev-parse --verify --short "$BASE^{commit}") || fail "BASE=$BASE is not a commit"
  mkdir -p "$W/base-src"
  git archive "$BASE_REV" | tar -x -C "$W/base-src"
  (cd "$W/base-src" && go build -o "$W/moat-base" ./cmd/moat) || fail "building moat at $BASE ($BASE_REV)"
  rm -rf "$W/base-src"
fi
go build -o "$W/backend" ./bench/gateway/backend
go build -o "$W/replay" ./bench/gateway/replay
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null

"$W/backend" -addr "127.0.0.1:$P_BACKEND" & pids+=($!)

echo "== moat: control plane, backend node agent, gateway nodes: WAF on, WAF off${BASE:+, and WAF on built at $BASE}"
export MOAT_SERVER="127.0.0.1:$P_SERVER" MOAT_ADMIN_DIR="$W/server.admin"
# (Background processes start "$W/moat" directly, so that $! is moat
# itself and the cleanup stops it.)
moat() { "$W/moat" "$@"; }
moat server init --data-dir "$W/server" --trust-domain bench.test >"$W/init.log" 2>&1 || fail "server init"
"$W/moat" server run --data-dir "$W/server" --listen "$MOAT_SERVER" >"$W/server.log" 2>&1 & pids+=($!)
for _ in $(seq 600); do moat svc list >/dev/null 2>&1 && break; sleep 0.1; done
moat svc list >/dev/null 2>"$W/svc.log" || fail "the control plane does not answer"
# Policy changes need a fresh second factor: enrol a TOTP authenticator and
# log in, computing codes from its secret (RFC 6238) as an app would.
secret=$(moat admin mfa enroll --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])') || fail "mfa enroll"
totp() { python3 - "$secret" "$1" <<'PY'
import base64, hashlib, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1]); step = int(time.time() // 30) + int(sys.argv[2])
h = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest(); o = h[-1] & 15
print("%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7fffffff) % 1000000))
PY
}
moat admin mfa confirm "$(totp 0)" >/dev/null || fail "mfa confirm"
moat admin mfa login "$(totp 1)" >/dev/null || fail "mfa login"
moat svc register --node app --name app --port "$P_BACKEND" >/dev/null
moat svc register --node edge-on --name gateway --port "$P_ON" >/dev/null
moat svc register --node edge-off --name gateway-nowaf --port "$P_OFF" >/dev/null
moat svc register --node edge-base --name gateway-base --port "$P_BASE" >/dev/null
printf "default: deny\nrules:\n  - name: edge-to-app\n    from: [gateway, gateway-nowaf, gateway-base]\n    to: app\n    ports: [%s]\n" "$P_BACKEND" >"$W/intentions.yaml"
moat policy apply -f "$W/intentions.yaml" >/dev/null
tok=$(moat token create --node app 2>/dev/null)
MOAT_PPROF=${PROFILE:+127.0.0.1:$P_PPROF_AGENT} "$W/moat" agent --data-dir "$W/app" --server "$MOAT_SERVER" --node app --join "$tok" \
  --listen "127.0.0.1:$P_MESH_APP" >"$W/agent.log" 2>&1 & pids+=($!)
AGENT=$!

# Both sides run paranoia level 1 with CRS's default anomaly thresholds;
# rate limits, the connection cap and the CSRF origin check (nginx has
# none) are off on moat, so that only the WAFs differ.
modes=(on off)
[ -z "$BASE" ] || modes+=(base)
for mode in "${modes[@]}"; do
  port=$P_ON mesh=$P_MESH_ON disabled=false svc=gateway bin=$W/moat
  [ $mode = off ] && port=$P_OFF mesh=$P_MESH_OFF disabled=true svc=gateway-nowaf
  [ $mode = base ] && port=$P_BASE mesh=$P_MESH_BASE svc=gateway-base bin=$W/moat-base
  [ $mode = base ] && [ "$BASE_WAF" = off ] && disabled=true
  cat >"$W/gw-$mode.yaml" <<YAML
listen: 127.0.0.1:$port
redirect_listen: "off"
tls: {cert_file: $W/cert.pem, key_file: $W/key.pem}
rate_limit: {off: true}
limits: {max_conns_per_ip: 100000}
waf: {disabled: $disabled, paranoia: 1}
services: [app]
routes:
  - service: app
    port: $P_BACKEND
    csrf_off: true
YAML
  "$bin" gateway --config "$W/gw-$mode.yaml" --validate >/dev/null || fail "gateway config $mode"
  pprof=
  if [ -n "${PROFILE:-}" ]; then
    pprof=127.0.0.1:$P_PPROF; [ $mode = off ] && pprof=127.0.0.1:$P_PPROF_OFF
  fi
  tok=$(moat token create --node "edge-$mode" 2>/dev/null)
  MOAT_PPROF=$pprof "$bin" gateway --config "$W/gw-$mode.yaml" --data-dir "$W/edge-$mode" --server "$MOAT_SERVER" --node "edge-$mode" --service "$svc" \
    --join "$tok" --mesh-listen "127.0.0.1:$mesh" --log-level warn >"$W/gw-$mode.log" 2>&1 & pids+=($!)
  declare "GW_${mode^^}=$!"
done

echo "== nginx + ModSecurity v3"
CRS_DIR=$(go list -m -f '{{.Dir}}' github.com/corazawaf/coraza-coreruleset/v4)/rules
MOAT_CRS=$(grep -o "OWASP_CRS/[0-9.]*" "$CRS_DIR/@crs-setup.conf.example" | head -1)
mkdir -p "$W/crs"
cp "$CRS_DIR"/@owasp_crs/* "$W/crs/"
cp "$CRS_DIR/@crs-setup.conf.example" "$W/crs-setup.conf"
chmod -R u+w "$W/crs" "$W/crs-setup.conf"
modsec_conf() { # setup-file rules-glob
  cat <<CONF
SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.'"
SecResponseBodyAccess Off
SecAuditEngine Off
SecPcreMatchLimit 100000
SecPcreMatchLimitRecursion 100000
Include $1
Include $2
CONF
}
modsec_conf "$W/crs-setup.conf" "$W/crs/*.conf" >"$W/modsec.conf"
cat >"$W/nginx.conf" <<CONF
load_module $MODSEC_SO;
worker_processes auto;
pid $W/nginx.pid;
error_log $W/nginx-error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/body;
  proxy_temp_path $W/proxy;
  fastcgi_temp_path $W/fastcgi;
  uwsgi_temp_path $W/uwsgi;
  scgi_temp_path $W/scgi;
  upstream app { server 127.0.0.1:$P_BACKEND; keepalive 64; }
  server {
    listen 127.0.0.1:$P_NGX_ON ssl;
    ssl_certificate $W/cert.pem;
    ssl_certificate_key $W/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    modsecurity on;
    modsecurity_rules_file $W/modsec.conf;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$P_NGX_OFF ssl;
    ssl_certificate $W/cert.pem;
    ssl_certificate_key $W/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
NGINX_CRS="$MOAT_CRS (the rules moat embeds)"
if ! nginx -t -c "$W/nginx.conf" -p "$W" >"$W/nginx-t.log" 2>&1; then
  # libmodsecurity 3.0.9 (Debian 12) cannot parse CRS 4's blocking
  # evaluation; fall back to the CRS Debian packages for it.
  echo "bench: ModSecurity here cannot load $MOAT_CRS: $(grep -o 'Rules error.*Line: [0-9]*' "$W/nginx-t.log" | head -1)"
  modsec_conf /etc/modsecurity/crs/crs-setup.conf "/usr/share/modsecurity-crs/rules/*.conf" >"$W/modsec.conf"
  NGINX_CRS="OWASP_CRS/$(dpkg-query -W -f '${Version}' modsecurity-crs) (Debian's modsecurity-crs)"
  nginx -t -c "$W/nginx.conf" -p "$W" >"$W/nginx-t.log" 2>&1 || fail "nginx -t: $(cat "$W/nginx-t.log")"
fi
nginx -c "$W/nginx.conf" -p "$W"
for _ in $(seq 50); do [ -s "$W/nginx.pid" ] && break; sleep 0.1; done
NGX_MASTER=$(cat "$W/nginx.pid")
[ -z "$BASE" ] || echo "bench: A/B: moat base is $BASE ($BASE_REV, $(git log -1 --format=%cs "$BASE_REV")), current is $(git describe --always --dirty 2>/dev/null); both WAF $BASE_WAF, same config, control plane, agent and backend"
echo "bench: nginx + $(dpkg-query -W -f 'libmodsecurity3 ${Version}' libmodsecurity3 2>/dev/null || echo ModSecurity) runs $NGINX_CRS; moat $(git describe --always --dirty 2>/dev/null || echo) runs $MOAT_CRS, paranoia 1 on both"

wait_http "https://127.0.0.1:$P_NGX_ON/"
wait_http "https://127.0.0.1:$P_NGX_OFF/"
# The gateways answer 502 until their node has its SVID and the mesh path
# to app is up: wait for a 200 through each.
gw_ports="$P_ON $P_OFF"
[ -z "$BASE" ] || gw_ports="$gw_ports $P_BASE"
for port in $gw_ports; do
  ok=
  for _ in $(seq 600); do
    [ "$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/")" = 200 ] && { ok=1; break; }
    sleep 0.1
  done
  [ -n "$ok" ] || fail "gateway on $port never answered 200 through the mesh"
done

body700=$(head -c 700 /dev/zero | tr '\0' 'a')
cat >"$W/form.lua" <<LUA
wrk.method = "POST"
wrk.headers["Host"] = "localhost"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Origin"] = "https://localhost"
wrk.body = "name=Ana+Mar%C3%ADa&email=ana%40example.com&comment=It%27s+a+great+product%2C+thanks%21&qty=2"
LUA
cat >"$W/json.lua" <<LUA
wrk.method = "POST"
wrk.headers["Host"] = "localhost"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Origin"] = "https://localhost"
wrk.body = '{"customer":{"name":"Ana Maria","email":"ana@example.com","address":"Rua Augusta 10, Lisboa"},"items":[{"sku":"A-100","qty":2,"note":"$body700"},{"sku":"B-7","qty":1}],"comment":"leave at the door, please"}'
LUA
cat >"$W/get.lua" <<LUA
wrk.headers["Host"] = "localhost"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
wrk.headers["Accept"] = "text/html,application/json"
LUA

# On a shared machine req/s moves with everyone else's load; the CPU time
# the servers spend per request moves far less. cpu_ticks PID...: the user
# and system clock ticks the processes have used.
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
# server_pids TARGET: moat's gateway and the backend node's agent (the
# mesh hop nginx does not make), or nginx's master and workers.
server_pids() {
  case $1 in
    "moat WAF on") echo "$GW_ON $AGENT" ;;
    "moat WAF off") echo "$GW_OFF $AGENT" ;;
    "base WAF on" | "base WAF off") echo "$GW_BASE $AGENT" ;;
    *) echo "$NGX_MASTER $(pgrep -P "$NGX_MASTER" | tr '\n' ' ')" ;;
  esac
}

# gw_pid TARGET: moat's gateway process of that target (none for nginx).
gw_pid() {
  case $1 in
    "moat WAF on") echo "$GW_ON" ;;
    "moat WAF off") echo "$GW_OFF" ;;
    "base WAF on" | "base WAF off") echo "${GW_BASE:-}" ;;
  esac
}
# mem_mb PID FIELD: the process's VmRSS or VmHWM (peak RSS) in MB.
mem_mb() { awk -v f="$2:" '$1==f {printf "%.0f", $2 / 1000}' "/proc/$1/status"; }

# measure TARGET TYPE URL SCRIPT: one wrk run, one line in $W/results:
# target|type|req/s|p50|p99|non-2xx|server CPU µs per request|gateway
# RSS MB after the run (moat only)
measure() {
  local out rps p50 p99 non2xx prof= sp t0 t1 n cpu
  if [ -n "${PROFILE:-}" ] && [[ "$1" == "moat WAF o"* ]]; then
    local secs=${DUR%s} port=$P_PPROF name=moat; secs=${secs%.*}
    [ "$1" = "moat WAF off" ] && port=$P_PPROF_OFF name=moat-off
    curl -s -o "$W/$name-${2// /-}.pprof" "http://127.0.0.1:$port/debug/pprof/profile?seconds=$((secs > 1 ? secs - 1 : 1))" & prof=$!
    if [ "$1" = "moat WAF off" ]; then
      curl -s -o "$W/agent-off-${2// /-}.pprof" "http://127.0.0.1:$P_PPROF_AGENT/debug/pprof/profile?seconds=$((secs > 1 ? secs - 1 : 1))" & prof="$prof $!"
    fi
  fi
  sp=$(server_pids "$1")
  # shellcheck disable=SC2086
  t0=$(cpu_ticks $sp)
  out=$(wrk -t2 -c"$CONNS" -d"$DUR" --latency -s "$4" "$3" 2>&1) || fail "wrk $3: $out"
  # shellcheck disable=SC2086
  t1=$(cpu_ticks $sp)
  # shellcheck disable=SC2086
  [ -z "$prof" ] || wait $prof
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$n" 'BEGIN {printf "%.0f", n ? d * 1e6 / hz / n : 0}')
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ -n "$rps" ] || fail "wrk printed no rate for $3: $out"
  local gw rss=
  gw=$(gw_pid "$1")
  [ -z "$gw" ] || rss=$(mem_mb "$gw" VmRSS)
  echo "$1|$2|$rps|$p50|$p99|${non2xx:-0}|$cpu|$rss" >>"$W/results"
  printf "%-14s %-16s %10s req/s  p50 %8s  p99 %8s  non-2xx %-6s server CPU %6s µs/req%s\n" "$1" "$2" "$rps" "$p50" "$p99" "${non2xx:-0}" "$cpu" "${rss:+  RSS $rss MB}"
}

attack='/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--'
types=("benign GET|/products?id=42&sort=price|get.lua" "form POST|/contact|form.lua" "1 KB JSON POST|/api/orders|json.lua" "blocked attack|$attack|get.lua")
targets=("moat WAF on|$P_ON" "moat WAF off|$P_OFF" "nginx+ModSec|$P_NGX_ON" "nginx plain|$P_NGX_OFF")
echo "== throughput ($DUR per run, $CONNS connections, 2 wrk threads, $REPS repetitions, $(nproc) cores shared by wrk, the backend and the servers)"
: >"$W/results"
: >"$W/pairs"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# last TARGET TYPE COLUMN: that column of the newest result line.
last() { awk -F'|' -v t="$1" -v y="$2" -v c="$3" '$1==t && $2==y {v=$c} END {print v}' "$W/results"; }
echo "bench: load average (1, 5, 15 min) before the runs: $(loadavg)"
declare -A RSS0
for g in "moat WAF on" "moat WAF off" "base WAF on"; do
  p=$(gw_pid "$g"); [ -n "$p" ] && RSS0[$g]=$(mem_mb "$p" VmRSS)
done
for rep in $(seq "$REPS"); do
  echo "-- repetition $rep (load average $(loadavg))"
  i=0
  for t in "${types[@]}"; do
    IFS='|' read -r label path script <<<"$t"
    if [ -z "$BASE" ]; then
      run=("${targets[@]}")
    else
      # A/B: the two builds back to back, the one going first
      # alternating by repetition and request type, so neither always
      # meets the same moment of the machine's load.
      cur_port=$P_ON
      [ "$BASE_WAF" = off ] && cur_port=$P_OFF
      run=("$AB_CUR|$cur_port" "$AB_BASE|$P_BASE")
      (((rep + i) % 2)) && run=("$AB_BASE|$P_BASE" "$AB_CUR|$cur_port")
      i=$((i + 1))
    fi
    for g in "${run[@]}"; do
      IFS='|' read -r name port <<<"$g"
      measure "$name" "$label" "https://127.0.0.1:$port$path" "$W/$script"
    done
    if [ -n "$BASE" ]; then
      awk -v y="$label" -v a="$(last "$AB_CUR" "$label" 3)" -v b="$(last "$AB_BASE" "$label" 3)" \
        -v ca="$(last "$AB_CUR" "$label" 7)" -v cb="$(last "$AB_BASE" "$label" 7)" \
        'BEGIN {printf "%s|%.4f|%.4f\n", y, (b ? a/b : 0), (cb ? ca/cb : 0)}' >>"$W/pairs"
    fi
  done
done
echo "bench: load average (1, 5, 15 min) after the runs: $(loadavg)"

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else if (NR) printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
med() { awk -F'|' -v t="$1" -v y="$2" -v c="${3:-3}" '$1==t && $2==y {print $c}' "$W/results" | median; }
if [ -n "$BASE" ]; then
  pmed() { awk -F'|' -v y="$1" -v c="$2" '$1==y {print $c}' "$W/pairs" | median; }
  echo "== A/B, WAF $BASE_WAF both: current ($(git describe --always --dirty 2>/dev/null)) against base $BASE ($BASE_REV), medians of $REPS"
  echo "   (pair ratio: current/base of the two runs made back to back, median over repetitions)"
  printf "%-16s %11s %11s %10s %10s %12s %12s %10s %10s\n" "request" "cur req/s" "base req/s" "cur/base" "pair ratio" "cur CPU µs" "base CPU µs" "cur/base" "pair ratio"
  for t in "${types[@]}"; do
    IFS='|' read -r label _ _ <<<"$t"
    a=$(med "$AB_CUR" "$label"); b=$(med "$AB_BASE" "$label")
    ca=$(med "$AB_CUR" "$label" 7); cb=$(med "$AB_BASE" "$label" 7)
    awk -v l="$label" -v a="$a" -v b="$b" -v ca="$ca" -v cb="$cb" -v pr="$(pmed "$label" 2)" -v pc="$(pmed "$label" 3)" 'BEGIN {
      printf "%-16s %11.0f %11.0f %9.3fx %9.3fx %12.0f %12.0f %9.3fx %9.3fx\n", l, a, b, (b ? a/b : 0), pr, ca, cb, (cb ? ca/cb : 0), pc }'
  done
  if [ "$BASE_WAF" = on ]; then
    blocked=$(awk -F'|' '$1=="base WAF on" && $2=="blocked attack" {s+=$6} END {print s+0}' "$W/results")
    [ "$blocked" -gt 0 ] || fail "the base build's WAF blocked none of the attack requests"
  fi
else
echo "== medians of $REPS (req/s), and the ratios the issue sets targets for (≥ 5× nginx+ModSecurity, ≥ 25% of WAF off)"
printf "%-16s %12s %12s %12s %12s %12s %12s\n" "request" "moat WAF on" "moat WAF off" "nginx+ModSec" "nginx plain" "on/ModSec" "on/off"
for t in "${types[@]}"; do
  IFS='|' read -r label _ _ <<<"$t"
  on=$(med "moat WAF on" "$label"); off=$(med "moat WAF off" "$label")
  ms=$(med "nginx+ModSec" "$label"); np=$(med "nginx plain" "$label")
  awk -v l="$label" -v on="$on" -v off="$off" -v ms="$ms" -v np="$np" 'BEGIN {
    printf "%-16s %12.0f %12.0f %12.0f %12.0f %11.2fx %11.0f%%\n", l, on, off, ms, np, on/ms, 100*on/off }'
done
echo "== server CPU per request, medians of $REPS (µs; moat: gateway + the backend node's agent, nginx: master + workers)"
printf "%-16s %12s %12s %12s %12s %12s %12s\n" "request" "moat WAF on" "moat WAF off" "nginx+ModSec" "nginx plain" "ModSec/on" "off/on"
for t in "${types[@]}"; do
  IFS='|' read -r label _ _ <<<"$t"
  on=$(med "moat WAF on" "$label" 7); off=$(med "moat WAF off" "$label" 7)
  ms=$(med "nginx+ModSec" "$label" 7); np=$(med "nginx plain" "$label" 7)
  awk -v l="$label" -v on="$on" -v off="$off" -v ms="$ms" -v np="$np" 'BEGIN {
    printf "%-16s %12.0f %12.0f %12.0f %12.0f %11.2fx %11.0f%%\n", l, on, off, ms, np, (on ? ms/on : 0), (on ? 100*off/on : 0) }'
done
fi
echo "== gateways' memory (MB): resident once serving, median resident after each request type's runs, peak resident (VmHWM) over the whole run"
medrss() { local v; v=$(awk -F'|' -v t="$1" -v y="$2" '$1==t && $2==y {print $8}' "$W/results" | median | awk '{printf "%.0f", $1}'); echo "${v:--}"; }
printf "%-14s %8s %8s %8s %8s %8s %8s\n" "gateway" "started" "GET" "form" "JSON" "attack" "peak"
for g in "moat WAF on" "moat WAF off" "base WAF on"; do
  p=$(gw_pid "$g"); [ -n "$p" ] || continue
  label=$g; [ "$g" = "base WAF on" ] && label="base WAF $BASE_WAF"
  printf "%-14s %8s %8s %8s %8s %8s %8s\n" "$label" "${RSS0[$g]}" "$(medrss "$label" "benign GET")" "$(medrss "$label" "form POST")" \
    "$(medrss "$label" "1 KB JSON POST")" "$(medrss "$label" "blocked attack")" "$(mem_mb "$p" VmHWM)"
done
if [ "$BASE_WAF" = on ]; then
  blocked=$(awk -F'|' '$1=="moat WAF on" && $2=="blocked attack" {s+=$6} END {print s+0}' "$W/results")
  [ "$blocked" -gt 0 ] || fail "moat's WAF blocked none of the attack requests"
fi

echo "== detection ($CORPUS)"
"$W/replay" -url "https://127.0.0.1:$P_ON" -corpus "$CORPUS" -limit "$LIMIT" -name "moat (WAF on)"
[ -z "$BASE" ] || [ "$BASE_WAF" = off ] || "$W/replay" -url "https://127.0.0.1:$P_BASE" -corpus "$CORPUS" -limit "$LIMIT" -name "moat base $BASE_REV (WAF on)"
"$W/replay" -url "https://127.0.0.1:$P_NGX_ON" -corpus "$CORPUS" -limit "$LIMIT" -name "nginx+ModSecurity"
