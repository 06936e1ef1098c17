#!/usr/bin/env bash
# Session-strategy benchmark with wrk, in one run, for
#   jwt        the default strategy (decode, jwt(), session(), re-encode; no store read)
#   db-bolt    strategy "database" on the embedded store (one bbolt read per request)
#   db-redis   strategy "database" on Redis (one round trip per request, a Lua script
#              reading the session and its user)
# two requests each: GET /api/auth/session, and a GET proxied to a small upstream app
# (bench/bareproxy) with the session checked on the proxy path (no assertion JWT), next to
# the upstream measured directly.
#
#   bench/sessions.sh [seconds] [connections]
#
# Redis: REDIS_URL, else 127.0.0.1:6379. Each gateway runs on its own port; they run one at
# a time so they do not compete for the CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379/0}
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install -y wrk)"; exit 1; }

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
go build -o "$work/gateway" ./cmd/gateway
go build -o "$work/bareproxy" ./bench/bareproxy
up_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/bareproxy" -mode upstream -listen "127.0.0.1:$up_port" &
pids+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$up_port/" && break; sleep 0.1; done
routes="routes:
  - {name: app, path: /app, upstream: \"http://127.0.0.1:$up_port\", assertion: false}"
printf '%s\n' "$routes" >"$work/routes.yaml"
export AUTH_SECRET=bench-secret-0123456789abcdef0123456789abcdef
prefix="callgate-bench-$$"

# The reference app's callbacks, with the database strategy: session() reads the user record.
mkdir -p "$work/dbscripts"
cat >"$work/dbscripts/auth.config.js" <<'JS'
import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";
export default {
  session: { strategy: "database" },
  providers: [Credentials({
    credentials: { username: {}, password: {} },
    async authorize(c) {
      const u = await users.findOne({ username: c.username });
      if (!u || !(await bcrypt.compare(c.password, u.password))) return null;
      return { id: u._id, name: u.name, email: u.email };
    },
  })],
  callbacks: {
    async session({ session, user }) { session.user.id = user.id; session.user.role = user.role; return session; },
  },
};
JS
printf 'store: %s\nredis:\n  key_prefix: %s\n%s\n' "$redis_url" "$prefix" "$routes" >"$work/redis.yaml"
"$work/gateway" users import --store "$redis_url" --key-prefix "$prefix" testdata/users.json >/dev/null

# measure LABEL LUA URL COOKIE: one wrk run.
measure() {
  local out rps lat non2xx
  out=$(CALLGATE_COOKIE="$4" wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$2" "$3" 2>&1)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  lat=$(echo "$out" | grep p50_ms || true)
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $4}')
  printf '%-17s %10s req/s  %s  non-2xx=%s\n' "$1" "$rps" "$lat" "${non2xx:-0}"
}

# bench NAME SCRIPTS [serve flags…]: start a gateway, sign in, measure GET /session and a
# proxied GET, stop it.
bench() {
  local name=$1 scripts=$2
  shift 2
  local port url data
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  url="http://127.0.0.1:$port"
  data="$work/data-$name"
  "$work/gateway" users import --data "$data" testdata/users.json >/dev/null
  "$work/gateway" serve --listen "127.0.0.1:$port" --url "$url" --data "$data" --scripts "$scripts" "$@" >"$work/log-$name" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do curl -fs "$url/api/auth/providers" >/dev/null && break; sleep 0.1; done
  local jar="$work/cookies-$name" csrf session
  csrf=$(curl -s -c "$jar" "$url/api/auth/csrf" | sed 's/.*"csrfToken":"\([0-9a-f]*\)".*/\1/')
  curl -s -b "$jar" -c "$jar" -d "username=jatin&password=secret&json=true&csrfToken=$csrf" "$url/api/auth/callback/credentials" >/dev/null
  session=$(awk '$6 == "next-auth.session-token" {print $6 "=" $7}' "$jar")
  [ -n "$session" ] || { echo "bench: sign-in failed on $name"; cat "$work/log-$name"; exit 1; }
  # The session must reach the app through the proxy: fail loudly rather than benchmark a redirect.
  curl -fs -H "Cookie: $session" "$url/app/x" | grep -q '"user":"65a1' ||
    { echo "bench: proxied request on $name did not reach the app signed in"; cat "$work/log-$name"; exit 1; }
  measure "$name session" bench/session.lua "$url/api/auth/session" "$session"
  measure "$name proxied" bench/proxy.lua "$url/app/x" "$session"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

echo "GET /api/auth/session: $(go version | awk '{print $3}'), $(nproc) CPUs, ${secs}s per run, $conns connections, $(redis-server --version 2>/dev/null | awk '{print $3}')"
measure "upstream direct" bench/proxy.lua "http://127.0.0.1:$up_port/app/x" ""
bench jwt scripts --config "$work/routes.yaml"
bench db-bolt "$work/dbscripts" --config "$work/routes.yaml"
bench db-redis "$work/dbscripts" --config "$work/redis.yaml"
redis-cli -u "$redis_url" --scan --pattern "{$prefix}:*" | xargs -r redis-cli -u "$redis_url" del >/dev/null
