#!/usr/bin/env bash
# Load benchmark of a real gateway process with wrk (Debian package "wrk").
#
#   bench/run.sh [seconds] [connections]
#
# Builds the gateway, starts it with the reference app (scripts/ and testdata/users.json),
# signs in once, then measures in one run, on this machine:
#   static   GET /api/auth/providers            the HTTP floor: no cookie, no callback
#   session  GET /api/auth/session + cookie     decode, jwt(), session(), re-encode
#   signin   POST /api/auth/callback/credentials  a full credentials sign-in (bcrypt cost 10)
# and prints req/s, p50/p99 latency, the session/static ratio, peak RSS of the gateway, and
# raw bcrypt compares/s at the same cost for comparison with sign-ins/s.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install -y wrk)"; exit 1; }

work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/gateway" ./cmd/gateway
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
export AUTH_SECRET=bench-secret-0123456789abcdef0123456789abcdef
"$work/gateway" users import --data "$work/data" testdata/users.json >/dev/null
"$work/gateway" serve --listen "127.0.0.1:$port" --url "$url" --data "$work/data" --scripts scripts >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "$url/api/auth/providers" >/dev/null && break; sleep 0.1; done

jar="$work/cookies"
csrf=$(curl -s -c "$jar" "$url/api/auth/csrf" | sed 's/.*"csrfToken":"\([0-9a-f]*\)".*/\1/')
curl -s -b "$jar" -c "$jar" -d "username=jatin&password=secret&json=true&csrfToken=$csrf" "$url/api/auth/callback/credentials" >/dev/null
session=$(awk '$6 == "next-auth.session-token" {print $6 "=" $7}' "$jar")
csrf_cookie=$(awk '$6 == "next-auth.csrf-token" {print $6 "=" $7}' "$jar")
[ -n "$session" ] || { echo "bench: sign-in failed"; cat "$work/log"; exit 1; }

run() { # name script connections
  local out
  out=$(wrk -t2 -c"$3" -d"${secs}s" --latency -s "bench/$2" "$url$4" 2>&1)
  local rps lat
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  lat=$(echo "$out" | grep p50_ms || true)
  local non2xx
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $4}')
  printf '%-8s %10s req/s  %s  non-2xx=%s\n' "$1" "$rps" "$lat" "${non2xx:-0}"
  eval "rps_$1=$rps"
}

echo "gateway: $(go version | awk '{print $3}'), $(nproc) CPUs, ${secs}s per run, $conns connections"
run static static.lua "$conns" /api/auth/providers
CALLGATE_COOKIE="$session" run session session.lua "$conns" /api/auth/session
CALLGATE_CSRF_COOKIE="$csrf_cookie" CALLGATE_CSRF_TOKEN="$csrf" run signin signin.lua 4 /api/auth/callback/credentials
rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "session/static ratio: $(awk -v a="$rps_session" -v b="$rps_static" 'BEGIN {printf "%.2f", a/b}')"
echo "gateway peak RSS: $((rss / 1024)) MiB"
echo "raw bcrypt (cost 10) on the same machine:"
go test -run '^$' -bench BcryptCompare -benchtime 2s ./engine/ | awk '/BenchmarkBcryptCompare/ {printf "  %.1f compares/s (%s ns/op, parallel)\n", 1e9/$3, $3}'
