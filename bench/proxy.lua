-- GET through callgate's proxy (or forward-auth) with a valid session cookie. The cookie comes
-- from the environment (CALLGATE_COOKIE="next-auth.session-token=…"; the baselines get it too);
-- forward-auth headers from CALLGATE_FORWARDED=1.
wrk.method = "GET"
local cookie = os.getenv("CALLGATE_COOKIE")
if cookie and cookie ~= "" then wrk.headers["Cookie"] = cookie end
if os.getenv("CALLGATE_FORWARDED") == "1" then
  wrk.headers["X-Forwarded-Method"] = "GET"
  wrk.headers["X-Forwarded-Proto"] = "https"
  wrk.headers["X-Forwarded-Host"] = "app.example.test"
  wrk.headers["X-Forwarded-Uri"] = "/reports/1"
end

done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.3f p99_ms=%.3f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
