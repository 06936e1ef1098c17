#!/usr/bin/env bash
# Hot reload, idle and under load. Saves go the way editors save (a temporary file renamed
# over scripts/auth.config.js), and each is timed from the rename until a session read shows
# the new version (polled back to back on one keep-alive connection):
#
#   1. idle: 25 saves, nothing else running;
#   2. under load: wrk reads GET /api/auth/session while the scripts are saved 100 times,
#      every 5th save broken (syntax error, throw at load, a callback that is not a
#      function, a failing *.test.js).
#
#   bench/reload.sh [connections]
#
# Prints save→live p50/p99 idle and under load; wrk's req/s, latency and non-2xx count for
# the loaded run; and how many reloads the gateway swapped and refused (/metrics).
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

# saves.py COUNT BROKEN: COUNT saves, every 5th broken when BROKEN is 1; prints save→live.
cat >"$work/saves.py" <<'PY'
import http.client, os, re, subprocess, sys, time
count, broken = int(sys.argv[1]), sys.argv[2] == "1"
work, host, port, cookie, label = os.environ["WORK"], "127.0.0.1", int(os.environ["PORT"]), os.environ["SESSION"], sys.argv[3]
scripts = os.path.join(work, "scripts")
base = open("scripts/auth.config.js").read()
def version_config(v):
    return base.replace("return session;", 'session.version = "%s";\n      return session;' % v, 1)
def save(name, content):  # the way editors save: a temporary file, renamed over the old one
    tmp = os.path.join(scripts, "." + name + ".swp")
    with open(tmp, "w") as f:
        f.write(content)
    os.rename(tmp, os.path.join(scripts, name))
conn = http.client.HTTPConnection(host, port)
def version():
    global conn
    try:
        conn.request("GET", "/api/auth/session", headers={"Cookie": cookie})
        body = conn.getresponse().read().decode()
    except (http.client.HTTPException, OSError):
        conn.close(); conn = http.client.HTTPConnection(host, port); return None
    m = re.search(r'"version":"([^"]*)"', body)
    return m and m.group(1)
passing = open(os.path.join(work, "passing.test.js")).read()
live = []
for i in range(1, count + 1):
    if broken and i % 5 == 0:
        kind = (i // 5) % 4
        if kind == 1: save("auth.config.js", "export default {\n  providers: [,\n  callbacks: {\n")
        elif kind == 2: save("auth.config.js", "const x = null;\nx.boom();\nexport default {};\n")
        elif kind == 3: save("auth.config.js", base.replace("async session(", "session: 42, async _session(", 1))
        else:
            save("auth.test.js", passing.replace('toBe("string")', 'toBe("number")'))
            save("auth.config.js", version_config("failing-test-%s-%d" % (label, i)))
        time.sleep(0.3)  # the refusal is counted in /metrics at the end
        save("auth.test.js", passing)
        continue
    v = "%s-%d" % (label, i)
    save("auth.config.js", version_config(v))
    start = time.monotonic()
    while version() != v:
        if time.monotonic() - start > 10:
            sys.exit("bench: %s not live after 10 s" % v)
    live.append((time.monotonic() - start) * 1000)
    time.sleep(0.05)  # let the previous generation drain; the next save is a new edit
live.sort()
pick = lambda p: live[min(len(live) - 1, int(len(live) * p))]
print("save→live %s over %d saves (write+rename): p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (label, len(live), pick(.5), pick(.99), live[-1]))
PY
export WORK="$work" PORT="$port" SESSION="$session"
python3 "$work/saves.py" 25 0 idle

log_mark=$(wc -l <"$work/log")
CALLGATE_COOKIE="$session" wrk -t2 -c"$conns" -d600s --latency -s bench/session.lua "$url/api/auth/session" >"$work/wrk" 2>&1 &
wrkpid=$!
sleep 1
python3 "$work/saves.py" 100 1 "under-load" >"$work/loaded"
kill -INT "$wrkpid"; wait "$wrkpid" || true
cat "$work/loaded"
echo "wrk during the 100 saves (20 broken), $conns connections:"
grep -E 'Requests/sec|Non-2xx|Socket errors|p50_ms' "$work/wrk" || true
curl -s "$url/metrics" | grep '^callgate_script_reloads_total'
# Where the time of the loaded reloads went, from the gateway's own log lines: wait (first
# file event to the attempt: the debounce), load (bundle, compile, first runtime), tests (the
# self-tests, beside the load) and duration (the attempt, up to the swap).
tail -n +"$((log_mark + 1))" "$work/log" | python3 -c '
import re, sys
unit = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
def ms(d):
    return sum(float(n) * unit[u] for n, u in re.findall(r"([0-9.]+)(ns|µs|us|ms|s|m)", d))
phases = {k: [] for k in ("wait", "load", "tests", "duration")}
for line in sys.stdin:
    if "msg=\"scripts reloaded\"" not in line:
        continue
    for k in phases:
        m = re.search(r"\b%s=(\S+)" % k, line)
        if m:
            phases[k].append(ms(m.group(1)))
for k, v in phases.items():
    if v:
        v.sort()
        pick = lambda p: v[min(len(v) - 1, int(len(v) * p))]
        print("reload %-8s under load over %d swaps: p50 %6.1f ms, p99 %6.1f ms" % (k, len(v), pick(.5), pick(.99)))
'

