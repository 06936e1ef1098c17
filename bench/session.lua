-- GET /api/auth/session with a valid session cookie (decode, jwt(), session(), re-encode).
-- The cookie comes from the environment: CALLGATE_COOKIE="next-auth.session-token=…".
wrk.method = "GET"
wrk.headers["Cookie"] = os.getenv("CALLGATE_COOKIE")
wrk.headers["Content-Type"] = "application/json"

local bad = 0
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"user"', 1, true) then bad = bad + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.3f p99_ms=%.3f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
