-- GET /api/auth/session with a valid session cookie (decode, jwt(), session(), re-encode).
-- The Cookie header comes from the environment: CALLGATE_COOKIES, the whole header a browser
-- sends (bench/nextauth.sh: "next-auth.csrf-token=…; next-auth.callback-url=…;
-- next-auth.session-token=…"), else CALLGATE_COOKIE="next-auth.session-token=…" (bench/run.sh).
-- A response that is not a 200 with a user in its body counts as bad (NextAuth answers a
-- cookie it cannot read with 200 and {}, which wrk's non-2xx count would not catch).
-- CALLGATE_EXPECT replaces the text a good body holds ('"user"') for other routes.
wrk.method = "GET"
wrk.headers["Cookie"] = os.getenv("CALLGATE_COOKIES") or os.getenv("CALLGATE_COOKIE")
wrk.headers["Content-Type"] = "application/json"

local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end

local expect = os.getenv("CALLGATE_EXPECT") or '"user"'
bad = 0
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, expect, 1, true) then bad = bad + 1 end
end

done = function(summary, latency, requests)
  local nbad = 0
  for _, thread in ipairs(threads) do nbad = nbad + thread:get("bad") end
  io.write(string.format("p50_ms=%.3f p99_ms=%.3f bad=%d\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000, nbad))
end
