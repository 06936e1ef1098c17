package proxy_test

import (
	"testing"

	"github.com/callgate/callgate/engine/inspect"
)

// BenchmarkProxyInspector is BenchmarkProxy's session+authorized and
// session+authorized+assertion requests, and its forward-auth check, without the inspector
// (off: every gateway unless started with --dev or inspector.enabled) and with it (on: a
// flow per request, the session read and authorized callbacks traced and redacted, the
// access decision recorded, the ring full and evicting).
//
//	go test -run '^$' -bench ProxyInspector -benchmem ./engine/proxy/
func BenchmarkProxyInspector(b *testing.B) {
	described := []string{"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "http", "X-Forwarded-Host", "app.test", "X-Forwarded-Uri", "/plain/page?x=1"}
	for _, c := range []struct {
		name, target string
		extra        []string
	}{
		{"session+authorized", "http://gateway.test/plain", nil},
		{"session+authorized+assertion", "http://gateway.test/", nil},
		{"forward-auth+authorized", "http://gateway.test/_callgate/forward-auth", described},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.Run("off", func(b *testing.B) {
				p := newBenchProxyWith(b, "../../bench/scripts-authorized", nil)
				runBench(b, p.handler, c.target, p.cookie, c.extra...)
			})
			b.Run("on", func(b *testing.B) {
				in := inspect.New(inspect.Options{})
				b.Cleanup(in.Close)
				p := newBenchProxyWith(b, "../../bench/scripts-authorized", in)
				runBench(b, p.handler, c.target, p.cookie, c.extra...)
				if len(in.Snapshot()) == 0 {
					b.Fatal("the inspector kept no flow: the benchmark measured nothing of it")
				}
			})
		})
	}
}
