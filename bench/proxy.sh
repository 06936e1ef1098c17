#!/usr/bin/env bash
# Proxy benchmark with wrk: what callgate adds in front of an app.
#
#   bench/proxy.sh [seconds-per-run] [rounds]      (defaults: 5 s, 5 rounds)
#
# Starts a small upstream app and a bare httputil.ReverseProxy (bench/bareproxy), and two
# gateways with --upstream: the reference scripts (no authorized callback) and the same plus
# an authorized callback (bench/scripts-authorized). Each gateway serves the app at / with the
# assertion JWT and at /plain without it. Signs in once per gateway; the configurations are
#   upstream        the app directly (with the same session cookie as every run)
#   bare            the bare reverse proxy (likewise)
#   cg              callgate, valid session, no authorized callback, no assertion
#   cg+jwt          the same with the assertion JWT
#   cg+authz        callgate, valid session, authorized callback, no assertion
#   cg+authz+jwt    the same with the assertion JWT
#   forward-auth    GET /_callgate/forward-auth (authorized callback, assertion), no upstream
#
# A single run on a shared 2-core machine varies by ±10%, so one run per configuration says
# little. For each connection count (32, 128): one 2 s warm-up run per configuration, not
# reported, then `rounds` rounds, each running every configuration once. The order changes
# from round to round (a balanced Latin square), so no configuration always follows the
# same neighbour or sits at the same point of a round. Each run records req/s, p50/p99
# (proxy.lua) and CPU time per request: utime+stime from /proc/PID/stat before and after
# the run, divided by the requests wrk counted, of the process doing the configuration's
# work (the app for upstream, bareproxy for bare, the gateway for cg* and forward-auth) and
# of the app behind it. Per-request CPU is closer to the cost itself; req/s also depends on
# how the two cores were shared with wrk and whatever else ran at the time.
#
# Per connection count it prints one line per configuration: the median req/s over the
# rounds and its min-max, the median over rounds of each round's ratio to that round's bare
# run, the median p50 and p99, the median CPU µs per request of the proxy and of the app,
# and the error responses over all rounds. wrk counts only status >= 400 as errors, so each
# run is also followed by the same request, which must still reach the app signed in (a
# redirect to sign-in stops the script). Then each gateway's peak RSS. Error responses or
# socket errors are named under the table and make the script exit 1. Progress, with each
# run's req/s, goes to stderr.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-5}
warm=2
[[ $secs =~ ^[1-9][0-9]*$ && $rounds =~ ^[1-9][0-9]*$ ]] ||
  { echo "usage: bench/proxy.sh [seconds-per-run] [rounds]"; exit 2; }
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install -y wrk)"; exit 1; }
hz=$(getconf CLK_TCK)

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
go build -o "$work/gateway" ./cmd/gateway
go build -o "$work/bareproxy" ./bench/bareproxy
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitfor() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "bench: $1 did not answer"; exit 1; }

up_port=$(freeport); bare_port=$(freeport)
"$work/bareproxy" -mode upstream -listen "127.0.0.1:$up_port" & pids+=($!)
up_pid=$!
# The yardstick gets the collector settings gateway serve picks for itself (cmd/gateway
# tuneGC), so the ratio measures the gateway's work, not a difference in GC tuning.
GOGC=400 GOMEMLIMIT=36MiB "$work/bareproxy" -mode proxy -listen "127.0.0.1:$bare_port" -to "http://127.0.0.1:$up_port" & pids+=($!)
bare_pid=$!
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

# The configurations, as parallel arrays. Every run sends the same request, session cookie
# included: an app behind a bare proxy receives its users' cookies too, so the baselines
# carry (and forward) the same bytes. proc is the process whose CPU counts as the
# configuration's own; expect is what a correct answer's body contains (the user id when the
# gateway must have let the request through to the app signed in).
# shellcheck disable=SC2154 # port_*, pid_* and cookie_* are set by start_gateway
{
  label=(upstream bare cg cg+jwt cg+authz cg+authz+jwt forward-auth)
  url=("http://127.0.0.1:$up_port/plain" "http://127.0.0.1:$bare_port/plain"
    "http://127.0.0.1:$port_plain/plain" "http://127.0.0.1:$port_plain/"
    "http://127.0.0.1:$port_authz/plain" "http://127.0.0.1:$port_authz/"
    "http://127.0.0.1:$port_authz/_callgate/forward-auth")
  cookie=("$cookie_plain" "$cookie_plain" "$cookie_plain" "$cookie_plain"
    "$cookie_authz" "$cookie_authz" "$cookie_authz")
  forwarded=(0 0 0 0 0 0 1)
  proc=("$up_pid" "$bare_pid" "$pid_plain" "$pid_plain" "$pid_authz" "$pid_authz" "$pid_authz")
  expect=('"ok":true' '"ok":true' '"user":"65a1' '"user":"65a1' '"user":"65a1' '"user":"65a1' '')
}
n=${#label[@]}

cputicks() { # pid → utime+stime in clock ticks (fields 14 and 15; comm may hold spaces)
  local s f
  read -r s <"/proc/$1/stat"
  read -r -a f <<<"${s##*) }"
  echo $((f[11] + f[12]))
}

# wrk answers 3xx without counting it as an error, so after each run the same request must
# still get a 200 that (for the gateways) reached the app signed in.
check() { # index
  local i=$1 hdr=() body code
  [ "${forwarded[i]}" = 1 ] && hdr=(-H "X-Forwarded-Method: GET" -H "X-Forwarded-Proto: https"
    -H "X-Forwarded-Host: app.example.test" -H "X-Forwarded-Uri: /reports/1")
  body=$(curl -s -w '\n%{http_code}' -H "Cookie: ${cookie[i]}" "${hdr[@]}" "${url[i]}") || true
  code=${body##*$'\n'}
  if [ "$code" != 200 ] || ! grep -qF -- "${expect[i]}" <<<"${body%$'\n'*}"; then
    echo "bench: ${label[i]} answered $code after its run, not the signed-in app: the run is not valid" >&2
    exit 1
  fi
}

wrkrun() { # index connections seconds → wrk's output
  CALLGATE_COOKIE="${cookie[$1]}" CALLGATE_FORWARDED="${forwarded[$1]}" \
    wrk -t2 -c"$2" -d"$3s" --latency -s bench/proxy.lua "${url[$1]}" 2>&1
}

measure() { # index connections round → appends one record to $work/runs, sets rps
  local i=$1 c=$2 r=$3 out p0 p1 u0 u1 reqs lat non2xx sock
  p0=$(cputicks "${proc[i]}"); u0=$(cputicks "$up_pid")
  out=$(wrkrun "$i" "$c" "$secs")
  p1=$(cputicks "${proc[i]}"); u1=$(cputicks "$up_pid")
  check "$i"
  reqs=$(awk '/ requests in / {print $1}' <<<"$out")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  lat=$(sed -n 's/^p50_ms=\([0-9.]*\) p99_ms=\([0-9.]*\)$/\1 \2/p' <<<"$out")
  if [ -z "$reqs" ] || [ "$reqs" = 0 ] || [ -z "$rps" ] || [ -z "$lat" ]; then
    echo "bench: wrk run of ${label[i]} at c=$c gave no figures:" >&2; echo "$out" >&2; exit 1
  fi
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  sock=$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' <<<"$out")
  echo "$c $r ${label[i]} $rps $lat $reqs $((p1 - p0)) $((u1 - u0)) ${non2xx:-0} ${sock:-0}" >>"$work/runs"
}

order() { # round (0-based) → the configuration indices of that round, in order
  # A Williams design: row r of the Latin square built from 0, 1, n-1, 2, n-2, … shifted by
  # r, and in the next n rounds the same rows reversed. Over n rounds each configuration
  # runs once at each point of a round; over 2n each follows every other one equally often.
  local r=$1 seq=(0) lo=1 hi=$((n - 1)) row=() p
  while ((${#seq[@]} < n)); do
    seq+=("$lo"); lo=$((lo + 1))
    if ((${#seq[@]} < n)); then seq+=("$hi"); hi=$((hi - 1)); fi
  done
  for ((p = 0; p < n; p++)); do row+=($(((r % n + seq[p]) % n))); done
  if (((r / n) % 2)); then for ((p = n - 1; p >= 0; p--)); do printf '%s ' "${row[p]}"; done
  else printf '%s ' "${row[@]}"; fi
}

total=$(((warm * n + secs * n * rounds) * 2))
echo "callgate proxy benchmark: $(go version | awk '{print $3}'), $(nproc) CPUs, $rounds rounds of ${secs}s per configuration (about $((total / 60 + 1)) min)"
: >"$work/runs"
for c in 32 128; do
  echo "c=$c: warm-up, ${warm}s per configuration" >&2
  for ((i = 0; i < n; i++)); do wrkrun "$i" "$c" "$warm" >/dev/null; check "$i"; done
  for ((r = 0; r < rounds; r++)); do
    line="c=$c round $((r + 1))/$rounds:"
    for i in $(order "$r"); do measure "$i" "$c" "$((r + 1))"; line+=" ${label[i]} $(printf "%.0f" "$rps")"; done
    echo "$line" >&2
  done
done

status=0
python3 - "$work/runs" "$hz" "${label[@]}" <<'PY' || status=$?
import statistics as st
import sys

path, hz, labels = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
runs = {}  # (c, label) -> list of runs; bare[(c, round)] -> req/s
bare = {}
for line in open(path):
    c, rnd, lab, rps, p50, p99, reqs, pt, ut, non2xx, sock = line.split()
    run = dict(rnd=rnd, rps=float(rps), p50=float(p50), p99=float(p99),
               cpu=int(pt) / hz * 1e6 / int(reqs), up=int(ut) / hz * 1e6 / int(reqs),
               non2xx=int(non2xx), sock=int(sock))
    runs.setdefault((int(c), lab), []).append(run)
    if lab == "bare":
        bare[(int(c), rnd)] = run["rps"]

print("req/s: median and min-max over rounds | ratio: median over rounds of req/s / the same round's bare req/s")
print("p50, p99 (ms), cpu proxy, cpu app (µs of CPU per request; upstream's proxy is the app): medians"
      " | non2xx: status >= 400 over all rounds, must be 0")
bad = []
for c in sorted({c for c, _ in runs}):
    rounds = len(runs[(c, "bare")])
    print(f"\nc={c}, {rounds} rounds")
    print(f"{'config':<14} {'req/s':>7} {'min-max':>13} {'ratio':>5} {'p50':>6} {'p99':>6} {'cpu proxy':>9} {'cpu app':>7} {'non2xx':>6}")
    for lab in labels:
        rs = runs[(c, lab)]
        rps = [r["rps"] for r in rs]
        ratio = st.median(r["rps"] / bare[(c, r["rnd"])] for r in rs)
        app = "-" if lab == "upstream" else f"{st.median(r['up'] for r in rs):.1f}"
        errs = sum(r["non2xx"] for r in rs)
        sock = sum(r["sock"] for r in rs)
        print(f"{lab:<14} {st.median(rps):>7.0f} {f'{min(rps):.0f}-{max(rps):.0f}':>13} {ratio:>5.2f}"
              f" {st.median(r['p50'] for r in rs):>6.2f} {st.median(r['p99'] for r in rs):>6.1f}"
              f" {st.median(r['cpu'] for r in rs):>9.1f} {app:>7} {errs:>6}")
        if errs:
            bad.append(f"{lab} at c={c}: {errs} error responses")
        if sock:
            bad.append(f"{lab} at c={c}: {sock} socket errors (connect/read/write/timeout)")
for b in bad:
    print(f"!!! bench: {b}; these figures are not valid")
sys.exit(1 if bad else 0)
PY
for name in plain authz; do
  eval "p=\$pid_$name"
  echo "gateway ($name) peak RSS: $(($(awk '/VmHWM/ {print $2}' "/proc/$p/status") / 1024)) MiB"
done
echo "bare proxy peak RSS: $(($(awk '/VmHWM/ {print $2}' "/proc/$bare_pid/status") / 1024)) MiB"
exit "$status"
