#!/usr/bin/env bash
# bench/mesh.sh: a proxy pair between two workloads, side by side in one run: Weft's sidecars,
# an HAProxy pair, an nginx pair, and no proxy at all.
#
# Brings up a 2-host Weft lab (controller and agents, network blue) with four workloads: cm
# (host1) and sm (host2) are meshed (`--mesh`: a Weft sidecar each, intercepting), cp (host1) and
# sp (host2) are plain. Both servers run the same backend, nginx with one worker answering
# `GET /` with 13 bytes on 8080 (HTTP/1.1) and 8082 (HTTP/2 prior knowledge). A Service
# `backend` selects sm (port 80 -> 8080 http, port 82 -> 8082 http2). The variants, each proxy
# with one thread or event loop:
#
#   direct   cp -> sp:8080 / sp:8082, no proxy.
#   weft     cm -> 100.64.0.1:80 / :82 (the VIP): cm's sidecar balances per request or stream,
#            sm's sidecar takes the connection inbound and relays it to the backend.
#   haproxy  cp -> haproxy in cp (127.0.0.1:10080, mode http, h2 on 10082) -> haproxy in sp
#            (10081, h2 on 10083) -> backend; keep-alive to the next hop (http-reuse always).
#   nginx    cp -> nginx in cp (127.0.0.1:11080, h2 on 11082) -> nginx in sp (11081) ->
#            backend; upstream keepalive 64 (nginx proxies HTTP/1.1 only, so its h2 pair speaks
#            HTTP/1.1 behind the first hop).
#
# Per variant: wrk -t1 -c32 and -c1 (requests/s, latency p50/p99), h2load -c4 -m16 (HTTP/2
# requests/s), wrk -c32 with "Connection: close" (every request a new client connection, and so
# a new connection between the pair: with --mtls a full TLS handshake, session reuse off), the
# pair's CPU per request under the c32 load (user + system time of its processes over the load,
# divided by the requests), and the pair's RSS idle (before the load) and at its peak (VmHWM
# after it); MBENCH_VARIANTS="direct weft" measures fewer variants, MBENCH_DEBUG=1 logs more;
# and the Weft sidecar's time from start to ready. Variants are measured in turn, ROUNDS times;
# figures are medians. Prints the table with ratios (weft/haproxy, weft/nginx; for c32 req/s and
# CPU per request also round by round, which a host that is slow for a while skews less) and
# appends a dated section to bench/RESULTS.md.
#
# Safety: only this run's lab (`mbench-<pid>`: namespaces weft-mbench-<pid>-*) and the processes
# it starts (nginx, haproxy, the extra sidecar: by pid; the lab's through `weft lab down`).
# Nothing changes in the root namespace; all traffic stays in the lab. Leftover labs of earlier
# runs whose process is gone are removed on start.
set -Eeuo pipefail

usage() {
  cat <<'EOF'
usage: bench/mesh.sh [-t SECONDS] [-r ROUNDS] [--mtls] [--no-record] [-h]

Requests/s, latency and memory of a Weft sidecar pair against an HAProxy pair, an nginx pair and
no proxy, between two lab workloads. Needs root, wrk, h2load (nghttp2-client), haproxy, nginx.

  -t SECONDS    each load's duration (default 10)
  -r ROUNDS     rounds of all variants in turn; figures are medians (default 3)
  --mtls        the HAProxy and nginx pairs speak TLS 1.3 to each other too, both sides
                verifying certificates (Weft's pair always does)
  --no-record   print the table only; do not append to bench/RESULTS.md
  -h, --help    this help

environment:
  WEFT=PATH     weft binary (default .build/release/weft, else .build/debug/weft)
EOF
}

DURATION=10
ROUNDS=3
RECORD=1
MTLS=0
while [ $# -gt 0 ]; do
  case "$1" in
    -t) DURATION=${2:?-t needs seconds}; shift 2 ;;
    -r) ROUNDS=${2:?-r needs a number}; shift 2 ;;
    --no-record) RECORD=0; shift ;;
    --mtls) MTLS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "mesh.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || { echo "mesh.sh: -t wants a positive integer" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "mesh.sh: -r wants a positive integer" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "mesh.sh: needs root (network namespaces)" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ -z "${WEFT:-}" ]; then
  if [ -x .build/release/weft ]; then WEFT=.build/release/weft; else WEFT=.build/debug/weft; fi
fi
[ -x "$WEFT" ] || { echo "mesh.sh: no weft binary at $WEFT" >&2; exit 1; }
WEFT=$(realpath "$WEFT")
for tool in wrk h2load haproxy nginx jq curl openssl; do
  command -v "$tool" >/dev/null || { echo "mesh.sh: needs $tool (apt-get install wrk nghttp2-client haproxy nginx-light jq)" >&2; exit 1; }
done
NGINX=$(command -v nginx)
HAPROXY=$(command -v haproxy)

PREFIX=mbench
LAB=$PREFIX-$$
TMP=$(mktemp -d /tmp/$PREFIX-$$.XXXXXX)
PIDS=()
log() { printf '[mesh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
ns() { echo "weft-$LAB-wl.$1"; }
in_ns() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$WEFT" lab down "$LAB" >/dev/null 2>&1 || true
  if [ "${MBENCH_KEEP_TMP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

# Leftovers of earlier runs (their process gone): labs named mbench-<pid>.
for dir in /run/weft/labs/$PREFIX-*; do
  [ -d "$dir" ] || continue
  old=${dir##*/}; pid=${old#$PREFIX-}
  if ! kill -0 "$pid" 2>/dev/null; then log "removing leftover lab $old"; "$WEFT" lab down "$old" >/dev/null 2>&1 || true; fi
done

# ---- the lab ----------------------------------------------------------------------------------
log "lab $LAB: 2 hosts, 4 workloads"
"$WEFT" lab up "$LAB" --hosts 2 >/dev/null
cat >"$TMP/lab.yaml" <<EOF
apiVersion: weft/v1
kind: Network
metadata: {name: blue}
spec: {cidr: 100.96.0.0/16}
---
apiVersion: weft/v1
kind: Service
metadata: {name: backend}
spec:
  network: blue
  selector: {app: backend}
  ports: [{port: 80, targetPort: 8080, protocol: http}, {port: 82, targetPort: 8082, protocol: http2}]
EOF
"$WEFT" lab apply "$LAB" -f "$TMP/lab.yaml" >/dev/null
"$WEFT" lab workload add "$LAB" sp --host host2 --network blue --label app=plain >/dev/null
"$WEFT" lab workload add "$LAB" cp --host host1 --network blue --label app=plain >/dev/null
address() { jq -r --arg n "$1" '.workloads[] | select(.name == $n) | .address' "/run/weft/labs/$LAB/lab.json" | cut -d/ -f1; }

backend_conf() {  # $1: workload; nginx answering 13 bytes on 8080 (h1) and 8082 (h2c)
  cat >"$TMP/backend-$1.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/backend-$1.pid;
error_log $TMP/backend-$1.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 8080 reuseport; listen 8082 http2; location / { return 200 "hello, weft!\n"; } }
}
EOF
}
start() {  # $1: workload, rest: command; records the pid
  local n=$1; shift
  # Not through in_ns: a backgrounded function is a subshell, and $! would be its pid.
  ip netns exec "$(ns "$n")" "$@" >"$TMP/$n-$(basename "$1")-$RANDOM.log" 2>&1 &
  PIDS+=($!)
}
wait_http() {  # $1: workload, $2: url
  for _ in $(seq 100); do in_ns "$1" curl -sf -o /dev/null -m 1 "$2" && return 0; sleep 0.1; done
  die "$2 does not answer from $1"
}

backend_conf sp; start sp "$NGINX" -c "$TMP/backend-sp.conf"
SP=$(address sp)
wait_http cp "http://$SP:8080/"

# The meshed pair: sm serves the backend, both get sidecars (one event loop each).
"$WEFT" lab workload add "$LAB" sm --host host2 --network blue --label app=backend --mesh >/dev/null
backend_conf sm; start sm "$NGINX" -c "$TMP/backend-sm.conf"
"$WEFT" lab workload add "$LAB" cm --host host1 --network blue --label app=client --mesh >/dev/null
wait_http cm "http://100.64.0.1/"
proxy_pid() { jq -r --arg n "$1" '.workloads[] | select(.name == $n) | .proxyPID' "/run/weft/labs/$LAB/lab.json"; }
WEFT_PIDS="$(proxy_pid cm) $(proxy_pid sm)"

# Certificates for the HAProxy and nginx pairs' own mutual TLS (--mtls): a P-256 CA, a server
# certificate for sp (name sp, its address) and a client certificate.
if [ "$MTLS" = 1 ]; then
  ossl() { openssl "$@" >/dev/null 2>&1 || die "openssl $1 failed"; }
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/ca.key" -out "$TMP/ca.pem" -days 2 -subj /CN=bench-ca
  for who in server client; do
    ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/$who.key" -out "$TMP/$who.csr" -subj "/CN=$who"
    usage=$( [ "$who" = server ] && echo serverAuth || echo clientAuth)
    printf 'subjectAltName=DNS:sp,IP:%s\nextendedKeyUsage=%s\n' "$SP" "$usage" >"$TMP/$who.ext"
    ossl x509 -req -in "$TMP/$who.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial -days 2 -extfile "$TMP/$who.ext" -out "$TMP/$who.pem"
    cat "$TMP/$who.pem" "$TMP/$who.key" >"$TMP/$who-bundle.pem"
  done
  HA_SERVER_TLS="ssl crt $TMP/client-bundle.pem ca-file $TMP/ca.pem verify required verifyhost sp ssl-min-ver TLSv1.3"
  HA_BIND_TLS="ssl crt $TMP/server-bundle.pem ca-file $TMP/ca.pem verify required ssl-min-ver TLSv1.3"
  HA_H2_SERVER="$HA_SERVER_TLS alpn h2"; HA_H2_BIND="$HA_BIND_TLS alpn h2"; HA_NO_REUSE="no-ssl-reuse"
else
  HA_SERVER_TLS=""; HA_BIND_TLS=""; HA_H2_SERVER="proto h2"; HA_H2_BIND="proto h2"; HA_NO_REUSE=""
fi

# HAProxy pair (frontend hs: no server connection shared between client connections, no TLS
# session reuse, for the "close" load).
cat >"$TMP/haproxy-client.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend h1
  bind 127.0.0.1:10080
  default_backend next1
frontend h2
  bind 127.0.0.1:10082 proto h2
  default_backend next2
frontend hs
  bind 127.0.0.1:10084
  default_backend nexths
backend next1
  server sp $SP:10081 $HA_SERVER_TLS
backend next2
  server sp $SP:10083 $HA_H2_SERVER
backend nexths
  http-reuse never
  server sp $SP:10081 $HA_SERVER_TLS $HA_NO_REUSE
EOF
cat >"$TMP/haproxy-server.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend h1
  bind :10081 $HA_BIND_TLS
  default_backend app1
frontend h2
  bind :10083 $HA_H2_BIND
  default_backend app2
backend app1
  server app 127.0.0.1:8080
backend app2
  server app 127.0.0.1:8082 proto h2
EOF
start cp "$HAPROXY" -db -f "$TMP/haproxy-client.cfg"; HAPROXY_PIDS="${PIDS[-1]}"
start sp "$HAPROXY" -db -f "$TMP/haproxy-server.cfg"; HAPROXY_PIDS+=" ${PIDS[-1]}"

# nginx pair (server on 11084: an upstream without keepalive and no TLS session reuse, for the
# "close" load).
if [ "$MTLS" = 1 ]; then
  NGX_SCHEME=https
  NGX_PROXY_TLS="proxy_ssl_certificate $TMP/client.pem; proxy_ssl_certificate_key $TMP/client.key; proxy_ssl_trusted_certificate $TMP/ca.pem; proxy_ssl_verify on; proxy_ssl_name sp; proxy_ssl_protocols TLSv1.3;"
  NGX_LISTEN_TLS="ssl; ssl_certificate $TMP/server.pem; ssl_certificate_key $TMP/server.key; ssl_client_certificate $TMP/ca.pem; ssl_verify_client on; ssl_protocols TLSv1.3"
else
  NGX_SCHEME=http; NGX_PROXY_TLS=""; NGX_LISTEN_TLS=""
fi
cat >"$TMP/nginx-client.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx-client.pid;
error_log $TMP/nginx-client.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream next { server $SP:11081; keepalive 64; }
  upstream nexths { server $SP:11081; }
  server {
    listen 127.0.0.1:11080; listen 127.0.0.1:11082 http2;
    location / { proxy_pass $NGX_SCHEME://next; proxy_http_version 1.1; proxy_set_header Connection ""; $NGX_PROXY_TLS }
  }
  server {
    listen 127.0.0.1:11084;
    location / { proxy_pass $NGX_SCHEME://nexths; proxy_http_version 1.1; proxy_ssl_session_reuse off; $NGX_PROXY_TLS }
  }
}
EOF
cat >"$TMP/nginx-server.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx-server.pid;
error_log $TMP/nginx-server.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:8080; keepalive 64; }
  server {
    listen 11081 $NGX_LISTEN_TLS;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
start cp "$NGINX" -c "$TMP/nginx-client.conf"; NGINX_MASTERS="${PIDS[-1]}"
start sp "$NGINX" -c "$TMP/nginx-server.conf"; NGINX_MASTERS+=" ${PIDS[-1]}"
wait_http cp "http://127.0.0.1:10080/"
wait_http cp "http://127.0.0.1:11080/"

# ---- measuring ----------------------------------------------------------------------------------
declare -A URL1=([direct]="http://$SP:8080/" [weft]="http://100.64.0.1/" [haproxy]="http://127.0.0.1:10080/" [nginx]="http://127.0.0.1:11080/")
declare -A URL3=([direct]="http://$SP:8080/" [weft]="http://100.64.0.1/" [haproxy]="http://127.0.0.1:10084/" [nginx]="http://127.0.0.1:11084/")
declare -A URL2=([direct]="http://$SP:8082/" [weft]="http://100.64.0.1:82/" [haproxy]="http://127.0.0.1:10082/" [nginx]="http://127.0.0.1:11082/")
declare -A FROM=([direct]=cp [weft]=cm [haproxy]=cp [nginx]=cp)
VARIANTS="${MBENCH_VARIANTS:-direct weft haproxy nginx}"

pids_of() {  # the processes of a variant's pair (nginx: masters and their workers)
  case $1 in
    weft) echo "$WEFT_PIDS" ;;
    haproxy) echo "$HAPROXY_PIDS" ;;
    nginx) local out="$NGINX_MASTERS" m; for m in $NGINX_MASTERS; do out+=" $(pgrep -P "$m" | tr '\n' ' ')"; done; echo "$out" ;;
    *) echo "" ;;
  esac
}
rss_kb() {  # $1: field (VmRSS or VmHWM), rest: pids; the sum in kB
  local field=$1 sum=0 pid v; shift
  for pid in "$@"; do v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0); sum=$((sum + ${v:-0})); done
  echo "$sum"
}
cpu_ticks() {  # rest: pids; their user and system CPU so far, in clock ticks: "user system"
  local user=0 system=0 pid u s
  for pid in "$@"; do
    read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat" 2>/dev/null || echo "0 0")
    user=$((user + ${u:-0})); system=$((system + ${s:-0}))
  done
  echo "$user $system"
}
TICK=$(getconf CLK_TCK)
to_ms() {  # wrk latency like 1.23ms, 456.00us, 1.02s -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
wrk_run() {  # $1 variant, $2 connections[, $3 "close"] -> "rps p50 p99"
  local out
  if [ "${3:-}" = close ]; then
    out=$(in_ns "${FROM[$1]}" wrk -t1 -c"$2" -d"${DURATION}s" --latency -H "Connection: close" "${URL3[$1]}")
  else
    out=$(in_ns "${FROM[$1]}" wrk -t1 -c"$2" -d"${DURATION}s" --latency "${URL1[$1]}")
  fi
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  [ -z "$errors" ] || log "$1 c$2: $errors"
  echo "$rps $p50 $p99"
}
h2_run() {  # $1 variant -> rps
  local out
  out=$(in_ns "${FROM[$1]}" h2load -D "$DURATION" -c4 -m16 "${URL2[$1]}" 2>&1)
  grep -q " 0 failed" <<<"$out" || log "$1 h2: $(grep '^requests:' <<<"$out")"
  awk '/^finished in/ {print $4}' <<<"$out"
}

declare -A R
for round in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    pids=$(pids_of "$v")
    idle=$( [ -n "$pids" ] && rss_kb VmRSS $pids || echo 0 )
    read -r user0 system0 <<<"$( [ -n "$pids" ] && cpu_ticks $pids || echo "0 0")"
    read -r rps32 p50_32 p99_32 <<<"$(wrk_run "$v" 32)"
    read -r user1 system1 <<<"$( [ -n "$pids" ] && cpu_ticks $pids || echo "0 0")"
    # The pair's CPU per request under the c32 load, in microseconds (and its user and kernel
    # parts, for the log).
    per_request() { awk -v t="$1" -v hz="$TICK" -v r="$rps32" -v d="$DURATION" 'BEGIN { if (r > 0) printf "%.1f", t / hz * 1e6 / (r * d); else print 0 }'; }
    us32=$(per_request $((user1 - user0 + system1 - system0)))
    split32="user $(per_request $((user1 - user0))), system $(per_request $((system1 - system0)))"
    rss_c32=$( [ -n "$pids" ] && rss_kb VmRSS $pids || echo 0 )
    read -r rps1 p50_1 p99_1 <<<"$(wrk_run "$v" 1)"
    h2=$(h2_run "$v")
    rss_h2=$( [ -n "$pids" ] && rss_kb VmRSS $pids || echo 0 )
    read -r close32 _ _ <<<"$(wrk_run "$v" 32 close)"
    rss_close=$( [ -n "$pids" ] && rss_kb VmRSS $pids || echo 0 )
    [ -z "$pids" ] || log "$v RSS after c32 ${rss_c32} kB, after c1 and h2 ${rss_h2} kB, after close ${rss_close} kB ($(for p in $pids; do printf '%s:%s ' "$p" "$(rss_kb VmRSS "$p")"; done))"
    if [ "$v" = weft ] && [ "${MBENCH_DEBUG:-0}" = 1 ]; then
      for w in cm sm; do log "$w: $(in_ns $w curl -s http://127.0.0.1:15000/metrics | grep -E 'open_connections' | tr '\n' ' ')"; done
      sleep 5; log "weft RSS 5 s later: $(rss_kb VmRSS $pids) kB"
    fi
    peak=$( [ -n "$pids" ] && rss_kb VmHWM $pids || echo 0 )
    log "round $round $v: c32 $rps32 req/s p99 ${p99_32} ms, pair CPU ${us32} us/req ($split32); c1 $rps1 req/s p50 ${p50_1} ms; h2 $h2 req/s; RSS idle ${idle} kB peak ${peak} kB; close $close32 req/s"
    R[$v,$round]="$rps32 $p50_32 $p99_32 $rps1 $p50_1 $p99_1 $h2 $idle $peak $close32 $us32"
  done
done

# Sidecar start to ready: a second sidecar in cp (no interception, its own ports), timed until
# its /ready answers, five times.
echo '{"version": 1, "services": []}' >"$TMP/empty.json"
READY=()
for i in 1 2 3 4 5; do
  t0=$(date +%s%N)
  ip netns exec "$(ns cp)" "$WEFT" proxy --config "$TMP/empty.json" --no-intercept --outbound-port 25001 \
    --inbound-port 25006 --admin-port 25000 >"$TMP/ready-$i.log" 2>&1 &
  pid=$!
  until in_ns cp curl -sf -o /dev/null -m 1 http://127.0.0.1:25000/ready; do sleep 0.005; done
  t1=$(date +%s%N)
  READY+=($(( (t1 - t0) / 1000000 )))
  sleep 0.2
  IDLE_ONE=$(rss_kb VmRSS $pid)
  IDLE_ANON=$(rss_kb RssAnon $pid)
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
col() {  # $1 variant, $2 column (1-based) -> median over rounds
  local vals="" r
  for r in $(seq "$ROUNDS"); do vals+=" $(awk -v c="$2" '{print $c}' <<<"${R[$1,$r]}")"; done
  median <<<"$vals"
}
declare -A M
for v in $VARIANTS; do for c in 1 2 3 4 5 6 7 8 9 10 11; do M[$v,$c]=$(col "$v" "$c"); done; done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
READY_MS=$(median <<<"${READY[*]}")
# Weft against another variant round by round (each round measures every variant within minutes,
# so a host that is slow for a while weighs on both sides of one ratio): "r1 r2 ... (median m)".
per_round() {  # $1 column, $2 other variant
  local vals="" r
  for r in $(seq "$ROUNDS"); do
    vals+=" $(ratio "$(awk -v c="$1" '{print $c}' <<<"${R[weft,$r]}")" "$(awk -v c="$1" '{print $c}' <<<"${R[$2,$r]}")")"
  done
  if grep -q -- '-' <<<"$vals"; then echo "${vals# }"; else echo "${vals# } (median $(median <<<"$vals"))"; fi
}

TABLE=$(
  printf '| variant | c32 req/s | c32 p50 ms | c32 p99 ms | c32 pair CPU us/req | c1 req/s | c1 p50 ms | c1 p99 ms | c1 added p50 ms | h2 req/s | c32 close req/s | RSS idle MB | RSS peak MB |\n'
  printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
  for v in $VARIANTS; do
    printf '| %s | %.0f | %.3f | %.3f | %.1f | %.0f | %.3f | %.3f | %s | %.0f | %.0f | %s | %s |\n' "$v" "${M[$v,1]}" "${M[$v,2]}" "${M[$v,3]}" "${M[$v,11]}" \
      "${M[$v,4]}" "${M[$v,5]}" "${M[$v,6]}" "$(added "${M[$v,5]}" "${M[direct,5]}")" "${M[$v,7]}" "${M[$v,10]}" \
      "$(awk -v k="${M[$v,8]}" 'BEGIN {printf "%.1f", k / 1024}')" "$(awk -v k="${M[$v,9]}" 'BEGIN {printf "%.1f", k / 1024}')"
  done
  printf '\n'
  printf -- '- weft/haproxy: c32 req/s %sx, c32 p99 %sx, c32 CPU per request %sx, c1 added latency %s vs %s ms, h2 req/s %sx, close req/s %sx\n' \
    "$(ratio "${M[weft,1]}" "${M[haproxy,1]}")" "$(ratio "${M[weft,3]}" "${M[haproxy,3]}")" "$(ratio "${M[weft,11]}" "${M[haproxy,11]}")" \
    "$(added "${M[weft,5]}" "${M[direct,5]}")" "$(added "${M[haproxy,5]}" "${M[direct,5]}")" "$(ratio "${M[weft,7]}" "${M[haproxy,7]}")" \
    "$(ratio "${M[weft,10]}" "${M[haproxy,10]}")"
  if [[ " $VARIANTS " == *" weft "* && " $VARIANTS " == *" nginx "* ]]; then
    printf -- '- weft/nginx: c32 req/s %sx, c32 p99 %sx, h2 req/s %sx, close req/s %sx\n' \
      "$(ratio "${M[weft,1]}" "${M[nginx,1]}")" "$(ratio "${M[weft,3]}" "${M[nginx,3]}")" "$(ratio "${M[weft,7]}" "${M[nginx,7]}")" \
      "$(ratio "${M[weft,10]}" "${M[nginx,10]}")"
  fi
  if [[ " $VARIANTS " == *" weft "* && " $VARIANTS " == *" haproxy "* ]]; then
    printf -- '- weft/haproxy round by round: c32 req/s %s, c32 CPU per request %s\n' "$(per_round 1 haproxy)" \
      "$(per_round 11 haproxy)"
  fi
  printf -- '- one Weft sidecar: start to ready %s ms (median of 5), RSS idle %s MB, of which anonymous %s MB\n' "$READY_MS" \
    "$(awk -v k="$IDLE_ONE" 'BEGIN {printf "%.1f", k / 1024}')" "$(awk -v k="$IDLE_ANON" 'BEGIN {printf "%.1f", k / 1024}')"
)
echo
echo "$TABLE"

if [ "$RECORD" = 1 ]; then
  {
    printf '\n## Mesh proxies, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'Command: `bench/mesh.sh -t %s -r %s%s` (weft: %s, commit %s). 2 vCPUs shared by wrk/h2load, both proxies and the backend (nginx, 1 worker); every proxy 1 thread. Weft'"'"'s pair speaks mutual TLS 1.3; the HAProxy and nginx pairs %s. RSS is the pair'"'"'s sum. Medians of %s rounds.\n\n' \
      "$DURATION" "$ROUNDS" "$( [ "$MTLS" = 1 ] && echo ' --mtls')" "$WEFT" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
      "$( [ "$MTLS" = 1 ] && echo 'too (TLS 1.3, both sides verified; no TLS session reuse for the close load)' || echo 'speak plain TCP')" "$ROUNDS"
    echo "$TABLE"
  } >>bench/RESULTS.md
  log "appended to bench/RESULTS.md"
fi
