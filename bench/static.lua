-- GET /api/auth/providers: no cookie work, no callback — the floor of the HTTP stack.
done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.3f p99_ms=%.3f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
