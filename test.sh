#!/usr/bin/env bash
# test.sh runs every callgate test, on a fresh machine or a developer's:
#   1. installs the npm packages of the NextAuth interop tests (testdata/interop), the browser
#      tests (testdata/browser) and the type check (testdata/types) from their lockfiles, unless
#      node_modules already matches;
#   2. makes a Redis server available (REDIS_URL, else one on 127.0.0.1:6379, else a private
#      redis-server started here and stopped on exit);
#   3. go vet ./... and go test -race -count=1 ./...;
#   4. a short fuzzing run of every target in FUZZ_TARGETS (FUZZ_TIME each, default 50000 inputs).
# With CI=true a missing tool is an error; otherwise the tests that need it skip themselves.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '==> %s\n' "$*"; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; }
die() { printf '==> ERROR: %s\n' "$*" >&2; exit 1; }
in_ci() { [[ ${CI:-} == true ]]; }

# --- 1. npm packages for testdata/interop -----------------------------------------------------
install_interop_packages() {
  local dir=testdata/interop
  local stamp="$dir/node_modules/.callgate-lockfile-sha256"
  if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    in_ci && die "node and npm are required for the NextAuth interop tests"
    warn "node/npm not found: the NextAuth interop tests will be skipped"
    return 0
  fi
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ -f $stamp && $(<"$stamp") == "$want" && -f $dir/node_modules/next-auth/package.json ]]; then
    say "npm packages in $dir match package-lock.json; not reinstalling"
    return 0
  fi
  say "npm ci in $dir (node $(node --version), npm $(npm --version))"
  (cd "$dir" && npm ci --no-audit --no-fund)
  # Written only after a successful install, so an interrupted one is redone next time.
  printf '%s' "$want" >"$stamp"
}

# npm packages for testdata/browser (playwright-core driving Debian's chromium), same rules.
install_browser_packages() {
  local dir=testdata/browser
  local stamp="$dir/node_modules/.callgate-lockfile-sha256"
  command -v npm >/dev/null 2>&1 || return 0
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ -f $stamp && $(<"$stamp") == "$want" && -f $dir/node_modules/playwright-core/package.json ]]; then
    say "npm packages in $dir match package-lock.json; not reinstalling"
    return 0
  fi
  say "npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund)
  printf '%s' "$want" >"$stamp"
}

# The TypeScript compiler (testdata/types, pinned by its lockfile) that type-checks the shipped
# .d.ts files, the default scripts and the TypeScript fixtures (TestShippedTypesTypeCheck).
install_types_packages() {
  local dir=testdata/types
  local stamp="$dir/node_modules/.callgate-lockfile-sha256"
  command -v npm >/dev/null 2>&1 || return 0
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ -f $stamp && $(<"$stamp") == "$want" && -f $dir/node_modules/typescript/package.json ]]; then
    say "npm packages in $dir match package-lock.json; not reinstalling"
    return 0
  fi
  say "npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund)
  printf '%s' "$want" >"$stamp"
}

# --- 2. Redis ---------------------------------------------------------------------------------
redis_pid=""
redis_dir=""
stop_redis() {
  if [[ -n $redis_pid ]]; then
    say "stopping redis-server (pid $redis_pid)"
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  if [[ -n $redis_dir ]]; then rm -rf "$redis_dir"; fi
}
trap stop_redis EXIT

# redis_answers HOST PORT: true when a Redis server there answers PING.
redis_answers() {
  (
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 reply <&3 || exit 1
    [[ $reply == +PONG* ]]
  ) 2>/dev/null
}

# port_in_use PORT: true when something accepts connections on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

provide_redis() {
  if [[ -n ${REDIS_URL:-} ]]; then
    say "using Redis at REDIS_URL=$REDIS_URL"
    return 0
  fi
  if redis_answers 127.0.0.1 6379; then
    export REDIS_URL=redis://127.0.0.1:6379/0
    say "using the Redis server already answering on 127.0.0.1:6379 (REDIS_URL=$REDIS_URL)"
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    in_ci && die "redis-server is required: REDIS_URL is unset and nothing answers on 127.0.0.1:6379"
    warn "no Redis (REDIS_URL unset, nothing on 127.0.0.1:6379, no redis-server): Redis tests will skip"
    return 0
  fi
  redis_dir=$(mktemp -d)
  local attempt port
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 20000))
    port_in_use "$port" && continue
    say "starting redis-server on 127.0.0.1:$port for this run"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$redis_dir" --save '' --appendonly no \
      --logfile "$redis_dir/redis.log" &
    redis_pid=$!
    for _ in $(seq 50); do
      if redis_answers 127.0.0.1 "$port"; then
        export REDIS_URL="redis://127.0.0.1:$port/0"
        say "Redis ready: REDIS_URL=$REDIS_URL"
        return 0
      fi
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    warn "redis-server on port $port did not answer (attempt $attempt):"
    cat "$redis_dir/redis.log" >&2 || true
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
  done
  die "could not start redis-server"
}

# --- Ory Hydra, the OpenID Connect provider of the OAuth end-to-end tests -----------------------
# Built from testdata/hydra (a module of its own, pinned to v2.3.0) into testdata/hydra/bin, and
# only when missing or older than that module's go.sum. The build needs cgo (SQLite, for Hydra's
# in-memory database) and prints how long it took.
build_hydra() {
  local dir=testdata/hydra bin=testdata/hydra/bin/hydra
  if [[ -x $bin && $bin -nt $dir/go.sum ]]; then
    say "Ory Hydra already built ($bin)"
    return 0
  fi
  if ! command -v gcc >/dev/null 2>&1; then
    in_ci && die "gcc is required to build Ory Hydra (cgo SQLite) for the OAuth tests"
    warn "no gcc: Ory Hydra cannot be built; the OAuth end-to-end tests will skip"
    return 0
  fi
  say "building Ory Hydra into $bin"
  local start=$SECONDS
  (cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=1 GOBIN="$PWD/bin" \
    go install -tags sqlite,sqlite_omit_load_extension github.com/ory/hydra/v2)
  say "Ory Hydra built in $((SECONDS - start))s"
}

# --- Mailpit, the SMTP server of the e-mail sign-in tests ---------------------------------------
# Built from testdata/mailpit (a module of its own, pinned to v1.33.1) into testdata/mailpit/bin,
# and only when missing or older than that module's go.sum. Pure Go (no cgo).
build_mailpit() {
  local dir=testdata/mailpit bin=testdata/mailpit/bin/mailpit
  if [[ -x $bin && $bin -nt $dir/go.sum ]]; then
    say "Mailpit already built ($bin)"
    return 0
  fi
  say "building Mailpit into $bin"
  local start=$SECONDS
  (cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$PWD/bin" go install github.com/axllent/mailpit)
  say "Mailpit built in $((SECONDS - start))s"
}

# --- Jaeger v2, the tracing backend of the OpenTelemetry tests --------------------------------
# Built from testdata/jaeger (a module of its own, pinned to v1.76.0, whose cmd/jaeger is the
# collector-based Jaeger v2) into testdata/jaeger/bin, and only when missing or older than that
# module's go.sum. Pure Go (no cgo). A big build: minutes on 2 cores the first time.
build_jaeger() {
  local dir=testdata/jaeger bin=testdata/jaeger/bin/jaeger
  if [[ -x $bin && $bin -nt $dir/go.sum ]]; then
    say "Jaeger already built ($bin)"
    return 0
  fi
  say "building Jaeger into $bin"
  local start=$SECONDS
  (cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$PWD/bin" go install github.com/jaegertracing/jaeger/cmd/jaeger)
  say "Jaeger built in $((SECONDS - start))s"
}

# --- 3. Go ------------------------------------------------------------------------------------
install_interop_packages
install_browser_packages
install_types_packages
provide_redis
build_hydra
build_mailpit
build_jaeger

say "go vet ./..."
go vet ./...

say "go test -race -count=1 ./..."
go test -race -count=1 ./...

# --- 4. Fuzzing -----------------------------------------------------------------------------
# Each target runs for FUZZ_TIME (default 50000x: 50,000 inputs; FUZZ_TIME=0 skips the step).
# A count, not a duration: Go 1.26's fuzzing coordinator can fail a target that found nothing
# with "context deadline exceeded" when a duration ends while a starved worker is mid-input
# (go.dev/issue/75804, fixed in Go 1.27), which a busy 2-core CI machine hits. One `go test -fuzz`
# per target because -fuzz takes exactly one. The checked-in seed corpora
# (<pkg>/testdata/fuzz/<FuzzName>/) already ran as plain tests above; this looks for new
# inputs. A failing input is written to that directory: check it in with the fix.
# Add yours here as "<package dir>:<FuzzName>".
FUZZ_TARGETS=(
  "./engine/cookie:FuzzParseString"
  "./engine/cookie:FuzzChunkRoundTrip"
  "./engine/cookie:FuzzSessionValue"
  "./engine/token:FuzzDecode"
  "./engine/token:FuzzEncodeDecode"
  "./engine/urlpolicy:FuzzCanonicalPath"
  "./engine/urlpolicy:FuzzRedirects"
  "./engine/proxy:FuzzOriginalRequest"
  "./engine/script:FuzzPlainJSON"
  "./engine/factor:FuzzVerify"
  "./engine/factor:FuzzOpen"
  "./engine/factor:FuzzPasskeyFinishLogin"
  "./engine/factor:FuzzPasskeyFinishRegistration"
  "./engine/inspect:FuzzRedact"
)
FUZZ_TIME=${FUZZ_TIME:-50000x}
if [[ $FUZZ_TIME != 0 ]]; then
  for target in "${FUZZ_TARGETS[@]}"; do
    pkg=${target%%:*} name=${target##*:}
    say "fuzz $name in $pkg for $FUZZ_TIME"
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZ_TIME" -fuzzminimizetime 5s "$pkg"
  done
fi

say "all tests passed"
