#!/usr/bin/env bash
# Proxy benchmark with wrk: what callgate adds in front of an app, measured in one run.
#
#   bench/proxy.sh [seconds]
#
# Starts a small upstream app and a bare httputil.ReverseProxy (bench/bareproxy), and two
# gateways with --upstream: the reference scripts (no authorized callback) and the same plus
# an authorized callback (bench/scripts-authorized). Each gateway serves the app at / with the
# assertion JWT and at /plain without it. Signs in once per gateway, then at 32 and 128
# connections measures:
#   upstream        the app directly (with the same session cookie as every run)
#   bare            the bare reverse proxy (likewise)
#   cg              callgate, valid session, no authorized callback, no assertion
#   cg+jwt          the same with the assertion JWT
#   cg+authz        callgate, valid session, authorized callback, no assertion
#   cg+authz+jwt    the same with the assertion JWT
#   forward-auth    GET /_callgate/forward-auth (authorized callback, assertion), no upstream
# and prints req/s, p50/p99, the ratio to the bare proxy, and each gateway's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install -y wrk)"; exit 1; }

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
go build -o "$work/gateway" ./cmd/gateway
go build -o "$work/bareproxy" ./bench/bareproxy
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitfor() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "bench: $1 did not answer"; exit 1; }

up_port=$(freeport); bare_port=$(freeport)
"$work/bareproxy" -mode upstream -listen "127.0.0.1:$up_port" & pids+=($!)
# The yardstick gets the collector settings gateway serve picks for itself (cmd/gateway
# tuneGC), so the ratio measures the gateway's work, not a difference in GC tuning.
GOGC=400 GOMEMLIMIT=36MiB "$work/bareproxy" -mode proxy -listen "127.0.0.1:$bare_port" -to "http://127.0.0.1:$up_port" & pids+=($!)
waitfor "http://127.0.0.1:$up_port/"
waitfor "http://127.0.0.1:$bare_port/"

export AUTH_SECRET=bench-secret-0123456789abcdef0123456789abcdef
cat >"$work/routes.yaml" <<YAML
proxy:
  trusted_proxies: [127.0.0.1]
routes:
  - {name: app, path: /, upstream: "http://127.0.0.1:$up_port"}
  - {name: plain, path: /plain, upstream: "http://127.0.0.1:$up_port", assertion: false}
YAML
start_gateway() { # name scripts-dir → sets port_<name>, pid_<name>, cookie_<name>
  local name=$1 scripts=$2 port
  port=$(freeport)
  mkdir -p "$work/$name"
  "$work/gateway" users import --data "$work/$name/data" testdata/users.json >/dev/null
  "$work/gateway" serve --listen "127.0.0.1:$port" --url "http://127.0.0.1:$port" --data "$work/$name/data" \
    --scripts "$scripts" --config "$work/routes.yaml" >"$work/$name/log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!; port_$name=$port"
  waitfor "http://127.0.0.1:$port/api/auth/providers"
  local jar="$work/$name/cookies" csrf
  csrf=$(curl -s -c "$jar" "http://127.0.0.1:$port/api/auth/csrf" | sed 's/.*"csrfToken":"\([0-9a-f]*\)".*/\1/')
  curl -s -b "$jar" -c "$jar" -d "username=jatin&password=secret&json=true&csrfToken=$csrf" \
    "http://127.0.0.1:$port/api/auth/callback/credentials" >/dev/null
  local c
  c=$(awk '$6 == "next-auth.session-token" {print $6 "=" $7}' "$jar")
  [ -n "$c" ] || { echo "bench: sign-in on $name failed"; cat "$work/$name/log"; exit 1; }
  eval "cookie_$name=\$c"
  # The session must reach the app: fail loudly rather than benchmark a redirect.
  curl -fs -H "Cookie: $c" "http://127.0.0.1:$port/plain" | grep -q '"user":"65a1' ||
    { echo "bench: proxied request on $name did not reach the app signed in"; exit 1; }
}
start_gateway plain scripts
start_gateway authz bench/scripts-authorized

run() { # label connections url cookie forwarded
  local out rps lat non2xx
  out=$(CALLGATE_COOKIE="$4" CALLGATE_FORWARDED="${5:-0}" wrk -t2 -c"$2" -d"${secs}s" --latency -s bench/proxy.lua "$3" 2>&1)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  lat=$(echo "$out" | grep p50_ms || true)
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $4}')
  printf '%-14s c=%-4s %10s req/s  %s  ratio-to-bare=%s  non-2xx=%s\n' "$1" "$2" "$rps" "$lat" \
    "$(awk -v a="$rps" -v b="${bare_rps:-$rps}" 'BEGIN {printf "%.2f", a/b}')" "${non2xx:-0}"
  [ "$1" = bare ] && bare_rps=$rps
  return 0
}

echo "callgate proxy benchmark: $(go version | awk '{print $3}'), $(nproc) CPUs, ${secs}s per run"
for c in 32 128; do
  bare_rps=""
  # Every run sends the same request, session cookie included: an app behind a bare proxy
  # receives its users' cookies too, so the baselines carry (and forward) the same bytes.
  run upstream "$c" "http://127.0.0.1:$up_port/plain" "$cookie_plain"
  run bare "$c" "http://127.0.0.1:$bare_port/plain" "$cookie_plain"
  run cg "$c" "http://127.0.0.1:$port_plain/plain" "$cookie_plain"
  run cg+jwt "$c" "http://127.0.0.1:$port_plain/" "$cookie_plain"
  run cg+authz "$c" "http://127.0.0.1:$port_authz/plain" "$cookie_authz"
  run cg+authz+jwt "$c" "http://127.0.0.1:$port_authz/" "$cookie_authz"
  run forward-auth "$c" "http://127.0.0.1:$port_authz/_callgate/forward-auth" "$cookie_authz" 1
done
for name in plain authz; do
  eval "p=\$pid_$name"
  echo "gateway ($name) peak RSS: $(( $(awk '/VmHWM/ {print $2}' "/proc/$p/status") / 1024 )) MiB"
done
