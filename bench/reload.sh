#!/usr/bin/env bash
# Hot reload under load: wrk reads GET /api/auth/session while this script rewrites
# scripts/auth.config.js 100 times (every 5th write broken: syntax error, throw at load,
# a callback that is not a function, a failing *.test.js), and measures for each good
# write how long until the session shows the new version.
#
#   bench/reload.sh [connections]
#
# Prints wrk's req/s, latency and non-2xx count for the whole run, the write→live p50/p99
# of the good versions, and how many reloads the gateway swapped and refused (/metrics).
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-32}
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install -y wrk)"; exit 1; }

work=$(mktemp -d)
trap 'kill "${pid:-}" "${wrkpid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/gateway" ./cmd/gateway
mkdir "$work/scripts"
version_config() { # version
  sed "s/return session;/session.version = \"$1\";\n      return session;/" scripts/auth.config.js
}
version_config v0 >"$work/scripts/auth.config.js"
cat >"$work/scripts/auth.test.js" <<'JS'
import config from "./auth.config.js";
import { test, expect, args } from "callgate/test";
test("session has a version", async () => {
  const s = await config.callbacks.session(args.session());
  expect(typeof s.version).toBe("string");
});
JS
cp "$work/scripts/auth.test.js" "$work/passing.test.js"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
export AUTH_SECRET=bench-secret-0123456789abcdef0123456789abcdef
"$work/gateway" users import --data "$work/data" testdata/users.json >/dev/null
"$work/gateway" serve --listen "127.0.0.1:$port" --url "$url" --data "$work/data" --scripts "$work/scripts" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "$url/api/auth/providers" >/dev/null && break; sleep 0.1; done

jar="$work/cookies"
csrf=$(curl -s -c "$jar" "$url/api/auth/csrf" | sed 's/.*"csrfToken":"\([0-9a-f]*\)".*/\1/')
curl -s -b "$jar" -c "$jar" -d "username=jatin&password=secret&json=true&csrfToken=$csrf" "$url/api/auth/callback/credentials" >/dev/null
session=$(awk '$6 == "next-auth.session-token" {print $6 "=" $7}' "$jar")
[ -n "$session" ] || { echo "bench: sign-in failed"; cat "$work/log"; exit 1; }

CALLGATE_COOKIE="$session" wrk -t2 -c"$conns" -d600s --latency -s bench/session.lua "$url/api/auth/session" >"$work/wrk" 2>&1 &
wrkpid=$!
sleep 1

now_ms() { date +%s%3N; }
: >"$work/live"
for i in $(seq 1 100); do
  if (( i % 5 == 0 )); then
    case $(( (i / 5) % 4 )) in
      1) printf 'export default {\n  providers: [,\n  callbacks: {\n' >"$work/scripts/auth.config.js" ;;
      2) printf 'const x = null;\nx.boom();\nexport default {};\n' >"$work/scripts/auth.config.js" ;;
      3) sed 's/async session(/session: 42, async _session(/' scripts/auth.config.js >"$work/scripts/auth.config.js" ;;
      0) sed 's/toBe("string")/toBe("number")/' "$work/passing.test.js" >"$work/scripts/auth.test.js"
         version_config "failing-test-$i" >"$work/scripts/auth.config.js" ;;
    esac
    sleep 0.3
    cp "$work/passing.test.js" "$work/scripts/auth.test.js"
    continue
  fi
  start=$(now_ms)
  version_config "v$i" >"$work/scripts/auth.config.js"
  until curl -s -b "$session" "$url/api/auth/session" | grep -q "\"version\":\"v$i\""; do sleep 0.002; done
  echo $(( $(now_ms) - start )) >>"$work/live"
done
kill -INT "$wrkpid"; wait "$wrkpid" || true
sort -n "$work/live" >"$work/live.sorted"
n=$(wc -l <"$work/live.sorted")
p50=$(sed -n "$(( (n + 1) / 2 ))p" "$work/live.sorted")
p99=$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$work/live.sorted")
echo "wrk during 100 reloads (20 broken), $conns connections:"
grep -E 'Requests/sec|Non-2xx|Socket errors|p50_ms' "$work/wrk" || true
echo "write→live over $n good versions: p50 ${p50} ms, p99 ${p99} ms, max $(tail -1 "$work/live.sorted") ms"
curl -s "$url/metrics" | grep '^callgate_script_reloads_total'
