#!/usr/bin/env bash
# Side-by-side load benchmark of GET /api/auth/session: callgate against a real NextAuth v4 app.
#
#   bench/nextauth.sh [seconds] [connections]      # ROUNDS=3 by default
#
# Installs (npm ci, only when node_modules does not match package-lock.json) and builds (next
# build, only when the sources or the lockfile changed) the NextAuth 4.24.15 / Next.js 14.2.35
# app in bench/nextauth-app, which has the same credentials provider, users and callbacks as
# scripts/auth.config.js, and starts it with `next start` (NODE_ENV=production). Builds and
# starts the gateway as bench/run.sh does, with the same secret. Signs in to each with curl
# (GET /api/auth/csrf, then POST /api/auth/callback/credentials) and keeps the three cookies a
# browser then sends (next-auth.csrf-token, next-auth.callback-url, next-auth.session-token);
# prints both session bodies once and stops unless they have the same shape; warms both up;
# then runs wrk -t2 -c<connections> with bench/session.lua on each in alternation (nextauth,
# callgate, nextauth, callgate, ...) for ROUNDS rounds. Reports per target the median req/s,
# p50 and p99 over the rounds, the non-2xx / bad-body / socket-error counts (any of them not 0
# fails the run), the CPU time (utime+stime) each server spent per request, the peak RSS (VmHWM,
# summed over the process tree for next start), and the callgate/nextauth ratios of req/s and
# peak RSS against the targets. A third target, floor, is the gateway's GET /api/auth/providers
# with the same cookies (no token, no callback: the HTTP stack alone), measured in the same
# rounds: its ratio to NextAuth's session read is the most any handler could reach here.
# A manual benchmark: neither test.sh nor .ci/run runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
rounds=${ROUNDS:-3}
app=bench/nextauth-app
for tool in wrk node npm go curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is not installed${tool/wrk/ (apt-get install -y wrk)}"; exit 1; }
done
export NEXT_TELEMETRY_DISABLED=1

# --- NextAuth app: install and build, each only when needed -----------------------------------
lock_sum=$(sha256sum "$app/package-lock.json" | cut -d' ' -f1)
stamp="$app/node_modules/.callgate-lockfile-sha256"
if [[ -f $stamp && $(<"$stamp") == "$lock_sum" && -f $app/node_modules/next/package.json ]]; then
  echo "bench: npm packages in $app match package-lock.json"
else
  echo "bench: npm ci in $app"
  (cd "$app" && npm ci --no-audit --no-fund)
  printf '%s' "$lock_sum" >"$stamp"
fi
# The build depends on the lockfile and the app's own files (users.json is read at run time).
build_sum=$(cd "$app" && find package.json package-lock.json pages -type f -print0 |
  sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
build_stamp="$app/.next/.callgate-build-sha256"
if [[ -f $build_stamp && $(<"$build_stamp") == "$build_sum" && -f $app/.next/BUILD_ID ]]; then
  echo "bench: next build of $app is up to date"
else
  echo "bench: next build in $app"
  rm -f "$build_stamp"
  (cd "$app" && node node_modules/next/dist/bin/next build)
  printf '%s' "$build_sum" >"$build_stamp"
fi

# --- start both -----------------------------------------------------------------------------
tree_pids() { # pid → that pid and all its descendants
  local c
  echo "$1"
  for c in $(pgrep -P "$1" || true); do tree_pids "$c"; done
}
peak_rss_kib() { # pid → sum of VmHWM over the process tree, KiB
  local sum=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
hz=$(getconf CLK_TCK)
cputicks() { # pid → utime+stime of the process tree in clock ticks (fields 14, 15 of stat)
  local sum=0 p st f
  for p in $(tree_pids "$1"); do
    read -r st <"/proc/$p/stat" 2>/dev/null || continue
    read -r -a f <<<"${st##*) }"
    sum=$((sum + f[11] + f[12]))
  done
  echo "$sum"
}
any_alive() { local p; for p; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
stop() { # SIGTERM to both process trees; next start takes a few seconds to exit
  local p pids
  pids="${next_pid:+$(tree_pids "$next_pid")} ${gw_pid:-}"
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    any_alive $pids || break
    sleep 0.1
  done
  rm -rf "$work"
}
work=$(mktemp -d)
trap stop EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

secret=bench-secret-0123456789abcdef0123456789abcdef
export AUTH_SECRET=$secret NEXTAUTH_SECRET=$secret

nport=$(free_port)
nurl="http://127.0.0.1:$nport"
(cd "$app" && NODE_ENV=production NEXTAUTH_URL="$nurl" \
  exec node node_modules/next/dist/bin/next start -H 127.0.0.1 -p "$nport") >"$work/next.log" 2>&1 &
next_pid=$!

go build -o "$work/gateway" ./cmd/gateway
gport=$(free_port)
gurl="http://127.0.0.1:$gport"
"$work/gateway" users import --data "$work/data" testdata/users.json >/dev/null
"$work/gateway" serve --listen "127.0.0.1:$gport" --url "$gurl" --data "$work/data" --scripts scripts >"$work/gateway.log" 2>&1 &
gw_pid=$!

wait_up() { # name url log
  for _ in $(seq 300); do curl -fs "$2/api/auth/providers" >/dev/null && return 0; sleep 0.1; done
  echo "bench: $1 did not come up at $2"; cat "$3"; exit 1
}
wait_up nextauth "$nurl" "$work/next.log"
wait_up callgate "$gurl" "$work/gateway.log"

declare -A url pid cookies
url[nextauth]=$nurl url[callgate]=$gurl
pid[nextauth]=$next_pid pid[callgate]=$gw_pid

signin() { # name → sets cookies[name] to the Cookie header a browser sends after sign-in
  local jar="$work/$1.jar" csrf name value header=""
  csrf=$(curl -s -c "$jar" "${url[$1]}/api/auth/csrf" | sed 's/.*"csrfToken":"\([0-9a-f]*\)".*/\1/')
  curl -s -b "$jar" -c "$jar" -d "username=jatin&password=secret&json=true&csrfToken=$csrf" \
    "${url[$1]}/api/auth/callback/credentials" >/dev/null
  for name in next-auth.csrf-token next-auth.callback-url next-auth.session-token; do
    value=$(awk -v n="$name" '$6 == n {print $7}' "$jar")
    [ -n "$value" ] || { echo "bench: no $name cookie after signing in to $1"; cat "$jar"; exit 1; }
    header="${header:+$header; }$name=$value"
  done
  cookies[$1]=$header
}
signin nextauth
signin callgate

# --- same answer? -----------------------------------------------------------------------------
for t in nextauth callgate; do
  curl -s -H 'Content-Type: application/json' -H "Cookie: ${cookies[$t]}" "${url[$t]}/api/auth/session" >"$work/$t.body"
  printf '%-8s body: %s\n' "$t" "$(<"$work/$t.body")"
done
node -e '
  const fs = require("fs");
  const shape = (v) => v === null ? "null" : Array.isArray(v) ? [v.map(shape)] :
    typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, shape(v[k])])) : typeof v;
  const [a, b] = process.argv.slice(1).map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
  const sa = JSON.stringify(shape(a)), sb = JSON.stringify(shape(b));
  if (sa !== sb) { console.error("bench: the bodies differ in shape:\n  " + sa + "\n  " + sb); process.exit(1); }
  const sorted = (o) => JSON.stringify(o, Object.keys(o ?? {}).sort());
  if (!a.user || sorted(a.user) !== sorted(b.user)) {
    console.error("bench: the bodies name different users"); process.exit(1);
  }
  console.log("same shape: " + sa);
' "$work/nextauth.body" "$work/callgate.body"

# --- measure ----------------------------------------------------------------------------------
cookies[floor]=${cookies[callgate]} pid[floor]=$gw_pid
declare -A target expect
target[nextauth]=$nurl/api/auth/session target[callgate]=$gurl/api/auth/session
target[floor]=$gurl/api/auth/providers
expect[nextauth]='"user"' expect[callgate]='"user"' expect[floor]='"credentials"'
targets="nextauth callgate floor"
wrkrun() { # name seconds → wrk's output
  CALLGATE_COOKIES="${cookies[$1]}" CALLGATE_EXPECT="${expect[$1]}" wrk -t2 -c"$conns" -d"$2s" \
    --latency -s bench/session.lua "${target[$1]}" 2>&1
}
warm=$((secs < 5 ? secs : 5))
echo "warm-up: ${warm}s each, unreported"
for t in $targets; do wrkrun "$t" "$warm" >/dev/null; done

echo "node $(node --version), next $(node -p 'require("./'"$app"'/node_modules/next/package.json").version'), next-auth $(node -p 'require("./'"$app"'/node_modules/next-auth/package.json").version'); gateway $(go version | awk '{print $3}'); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t2 -c$conns -d${secs}s, $rounds rounds, alternating"
: >"$work/runs"
for r in $(seq "$rounds"); do
  for t in $targets; do
    c0=$(cputicks "${pid[$t]}")
    out=$(wrkrun "$t" "$secs")
    c1=$(cputicks "${pid[$t]}")
    reqs=$(awk '/ requests in / {print $1}' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    read -r p50 p99 nbad < <(sed -n 's/^p50_ms=\([0-9.]*\) p99_ms=\([0-9.]*\) bad=\([0-9]*\)$/\1 \2 \3/p' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    sock=$(sed -n 's/^ *Socket errors: //p' <<<"$out")
    if [ -z "$rps" ] || [ -z "${p99:-}" ] || [ -z "$reqs" ] || [ "$reqs" = 0 ]; then echo "bench: wrk on $t gave no figures:"; echo "$out"; exit 1; fi
    cpu=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v n="$reqs" 'BEGIN {printf "%.0f", d / hz * 1e6 / n}')
    printf 'round %d  %-8s %10s req/s  p50 %7s ms  p99 %8s ms  cpu %5s us/req  non-2xx=%s bad=%s%s\n' \
      "$r" "$t" "$rps" "$p50" "$p99" "$cpu" "${non2xx:-0}" "$nbad" "${sock:+  socket errors: $sock}"
    echo "$t $rps $p50 $p99 $cpu ${non2xx:-0} $nbad ${sock:+x}" >>"$work/runs"
  done
done

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
declare -A mrps mp50 mp99 mcpu rss
failed=0
echo
echo "medians over $rounds rounds:"
for t in $targets; do
  mrps[$t]=$(awk -v t="$t" '$1 == t {print $2}' "$work/runs" | median)
  mp50[$t]=$(awk -v t="$t" '$1 == t {print $3}' "$work/runs" | median)
  mp99[$t]=$(awk -v t="$t" '$1 == t {print $4}' "$work/runs" | median)
  mcpu[$t]=$(awk -v t="$t" '$1 == t {print $5}' "$work/runs" | median)
  errs=$(awk -v t="$t" '$1 == t {n += $6 + $7 + ($8 == "x")} END {print n + 0}' "$work/runs")
  rss[$t]=$(peak_rss_kib "${pid[$t]}")
  nproc_t=$(tree_pids "${pid[$t]}" | wc -l)
  printf '  %-8s %10.0f req/s  p50 %7.3f ms  p99 %8.3f ms  cpu %5.0f us/req  peak RSS %4d MiB (%d process%s)  failed runs: %s\n' \
    "$t" "${mrps[$t]}" "${mp50[$t]}" "${mp99[$t]}" "${mcpu[$t]}" $((rss[$t] / 1024)) "$nproc_t" "$([ "$nproc_t" = 1 ] || echo es)" "$errs"
  [ "$errs" = 0 ] || failed=1
done
rps_ratio=$(awk -v a="${mrps[callgate]}" -v b="${mrps[nextauth]}" 'BEGIN {printf "%.1f", a / b}')
rss_ratio=$(awk -v a="${rss[callgate]}" -v b="${rss[nextauth]}" 'BEGIN {printf "%.2f", a / b}')
verdict() { if awk "BEGIN {exit !($1)}"; then echo met; else echo MISSED; fi; }
echo "callgate/nextauth req/s: ${rps_ratio}x (target >= 30x: $(verdict "$rps_ratio >= 30"))"
echo "floor/nextauth req/s: $(awk -v a="${mrps[floor]}" -v b="${mrps[nextauth]}" 'BEGIN {printf "%.1f", a / b}')x (the HTTP stack alone: the most any session read could reach on this machine)"
echo "callgate/floor req/s: $(awk -v a="${mrps[callgate]}" -v b="${mrps[floor]}" 'BEGIN {printf "%.2f", a / b}') (what the session read costs over the HTTP stack)"
echo "nextauth/callgate CPU per request: $(awk -v a="${mcpu[nextauth]}" -v b="${mcpu[callgate]}" 'BEGIN {printf "%.1f", a / b}')x (what the req/s ratio would be with the server alone on the CPUs)"
echo "callgate/nextauth peak RSS: $rss_ratio (target <= 0.25: $(verdict "$rss_ratio <= 0.25"))"
echo "callgate p99: ${mp99[callgate]} ms (target < 5 ms: $(verdict "${mp99[callgate]} < 5"))"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$failed" != 0 ]; then
  echo "bench: some runs had non-2xx responses, bad bodies or socket errors: the figures are not valid"
  exit 1
fi
