-- POST /api/auth/callback/credentials with the right password: one full credentials sign-in
-- (CSRF check, authorize with a bcrypt compare, jwt, encode). The CSRF cookie and token come
-- from the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = os.getenv("CALLGATE_CSRF_COOKIE")
wrk.body = "username=jatin&password=secret&json=true&csrfToken=" .. os.getenv("CALLGATE_CSRF_TOKEN")

done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.3f p99_ms=%.3f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
