#!/usr/bin/env bash
# Benchmarks moat's gateway against nginx + ModSecurity v3 + OWASP CRS on
# this machine, both in front of the same backend, with the same requests.
# Usage: bench/gateway/run.sh [duration] [connections]
# Needs: go, wrk, nginx, libnginx-mod-http-modsecurity, openssl.
# Everything listens on 127.0.0.1; all state lives in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10s}
CONNS=${2:-32}
CORPUS=${CORPUS:-internal/waf/testdata/corpus.jsonl}
for c in wrk nginx openssl go; do
  command -v "$c" >/dev/null || { echo "bench: $c is not installed (apt-get install -y wrk nginx libnginx-mod-http-modsecurity)"; exit 1; }
done
W=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

echo "== building"
go build -o "$W/moat" ./cmd/moat
go build -o "$W/backend" ./bench/gateway/backend
go build -o "$W/replay" ./bench/gateway/replay
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null

# The same CRS on both sides: the v4 rules moat embeds (coraza-coreruleset).
CRS_DIR=$(go list -m -f '{{.Dir}}' github.com/corazawaf/coraza-coreruleset/v4)/rules
mkdir -p "$W/crs"
cp "$CRS_DIR"/@owasp_crs/* "$W/crs/"
cp "$CRS_DIR/@crs-setup.conf.example" "$W/crs-setup.conf"
CRS_VERSION=$(grep -o "OWASP_CRS/[0-9.]*" "$W/crs-setup.conf" | head -1)

"$W/backend" -addr 127.0.0.1:19000 & pids+=($!)

for mode in on off; do
  port=18443; [ $mode = off ] && port=18444
  waf="waf:\n  disabled: false"; [ $mode = off ] && waf="waf:\n  disabled: true"
  printf "listen: 127.0.0.1:$port\nredirect_listen: \"off\"\ntls:\n  cert_file: $W/cert.pem\n  key_file: $W/key.pem\nrate_limit:\n  off: true\nlimits:\n  max_conns_per_ip: 100000\nservices: [app]\nroutes:\n  - service: app\n    port: 19000\n    csrf_off: true\n$waf\n" > "$W/gw-$mode.yaml"
  "$W/moat" gateway --config "$W/gw-$mode.yaml" --upstream app=127.0.0.1:19000 --log-level warn 2>"$W/gw-$mode.log" & pids+=($!)
done

cat > "$W/modsec.conf" <<CONF
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
Include $W/crs-setup.conf
Include $W/crs/*.conf
CONF
cat > "$W/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;
worker_processes auto;
pid $W/nginx.pid;
error_log $W/nginx-error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/body;
  proxy_temp_path $W/proxy;
  upstream app { server 127.0.0.1:19000; keepalive 64; }
  server {
    listen 127.0.0.1:19443 ssl http2;
    ssl_certificate $W/cert.pem;
    ssl_certificate_key $W/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    modsecurity on;
    modsecurity_rules_file $W/modsec.conf;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:19444 ssl http2;
    ssl_certificate $W/cert.pem;
    ssl_certificate_key $W/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
NGINX_CRS="$CRS_VERSION (the rules moat embeds)"
if ! nginx -t -c "$W/nginx.conf" -p "$W" >"$W/nginx-t.log" 2>&1; then
  # libmodsecurity 3.0.9 (Debian 12) cannot parse CRS 4's blocking
  # evaluation; fall back to the CRS Debian packages for it.
  echo "bench: ModSecurity here cannot load $CRS_VERSION: $(grep -o 'Rules error.*Line: [0-9]*' "$W/nginx-t.log" | head -1)"
  sed -i "s|Include $W/crs-setup.conf|Include /etc/modsecurity/crs/crs-setup.conf|; s|Include $W/crs/\*.conf|Include /usr/share/modsecurity-crs/rules/*.conf|" "$W/modsec.conf"
  NGINX_CRS="OWASP_CRS/$(dpkg-query -W -f '${Version}' modsecurity-crs) (Debian's package)"
  nginx -t -c "$W/nginx.conf" -p "$W" >"$W/nginx-t.log" 2>&1 || { cat "$W/nginx-t.log"; exit 1; }
fi
echo "bench: nginx+ModSecurity runs $NGINX_CRS; moat runs $CRS_VERSION"
nginx -c "$W/nginx.conf" -p "$W"
sleep 3

body1k=$(head -c 700 /dev/zero | tr '\0' 'a')
cat > "$W/form.lua" <<LUA
wrk.method = "POST"
wrk.headers["Host"] = "localhost"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Origin"] = "https://localhost"
wrk.body = "name=Ana+Mar%C3%ADa&email=ana%40example.com&comment=It%27s+a+great+product%2C+thanks%21&qty=2"
LUA
cat > "$W/json.lua" <<LUA
wrk.method = "POST"
wrk.headers["Host"] = "localhost"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Origin"] = "https://localhost"
wrk.body = '{"customer":{"name":"Ana Maria","email":"ana@example.com","address":"Rua Augusta 10, Lisboa"},"items":[{"sku":"A-100","qty":2,"note":"$body1k"},{"sku":"B-7","qty":1}],"comment":"leave at the door, please"}'
LUA
cat > "$W/get.lua" <<LUA
wrk.headers["Host"] = "localhost"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
wrk.headers["Accept"] = "text/html,application/json"
LUA

run() { # label url script
  local out
  out=$(wrk -t2 -c"$CONNS" -d"$DUR" --latency -s "$3" "$2" 2>&1)
  local rps p50 p99 non2xx
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  printf "%-34s %10s req/s  p50 %8s  p99 %8s  non-2xx %s\n" "$1" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

echo "== throughput ($DUR, $CONNS connections, 2 wrk threads, $(nproc) cores shared with the servers; paranoia 1 on both)"
attack='/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--'
for t in "benign GET|/products?id=42&sort=price|get.lua" "form POST|/contact|form.lua" "1 KB JSON POST|/api/orders|json.lua" "blocked attack (GET)|$attack|get.lua"; do
  IFS='|' read -r label path script <<<"$t"
  run "moat WAF on:  $label" "https://127.0.0.1:18443$path" "$W/$script"
  run "moat WAF off: $label" "https://127.0.0.1:18444$path" "$W/$script"
  run "nginx+ModSec: $label" "https://127.0.0.1:19443$path" "$W/$script"
  run "nginx plain:  $label" "https://127.0.0.1:19444$path" "$W/$script"
done

echo "== detection ($CORPUS)"
"$W/replay" -url https://127.0.0.1:18443 -corpus "$CORPUS" -name "moat (WAF on)"
"$W/replay" -url https://127.0.0.1:19443 -corpus "$CORPUS" -name "nginx+ModSecurity"
