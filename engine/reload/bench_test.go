package reload

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/script"
)

// bigConfig is a configVersion config padded to about n lines with helper functions the
// callbacks use, the shape a large real config has.
func bigConfig(n int) string {
	var b strings.Builder
	fns := (n - 15) / 5
	for i := range fns {
		fmt.Fprintf(&b, "function rule%d(token) {\n  if (token.role === \"r%d\") token.level = %d;\n  return token;\n}\n\n", i, i, i)
	}
	b.WriteString(strings.Replace(configVersion("big"), "async session({ session }) {", "async jwt({ token }) {\n      for (const f of ["+rules(fns)+"]) token = f(token);\n      return token;\n    },\n    async session({ session }) {", 1))
	return b.String()
}

func rules(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("rule%d", i)
	}
	return strings.Join(s, ", ")
}

// BenchmarkBuildGeneration is the time to bundle, compile, run and validate a generation.
func BenchmarkBuildGeneration(b *testing.B) {
	for _, tc := range []struct {
		name string
		src  string
	}{{"30-lines", configVersion("small") + strings.Repeat("// padding\n", 15)}, {"1000-lines", bigConfig(1000)}} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(tc.src), 0o644); err != nil {
				b.Fatal(err)
			}
			lines := strings.Count(tc.src, "\n")
			for b.Loop() {
				g, err := script.Load(context.Background(), script.Options{Dir: dir})
				if err != nil {
					b.Fatal(err)
				}
				g.Close()
			}
			b.ReportMetric(float64(lines), "lines")
		})
	}
}

// BenchmarkSessionDuringSwaps is a session read through the engine over HTTP: with no
// swap; with a swap every millisecond between two generations already built ("swap": what
// the swap itself costs in-flight requests); and with a full reload (build, validate, swap)
// every 5 ms ("reload": adds the CPU the builds take on the same cores).
func BenchmarkSessionDuringSwaps(b *testing.B) {
	for _, mode := range []string{"none", "swap", "reload"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "auth.config.js")
			write(b, path, configVersion("a"))
			g := startGateway(b, dir, false, -1)
			other, err := script.Load(context.Background(), script.Options{Dir: dir})
			if err != nil {
				b.Fatal(err)
			}
			first := g.eng.Generation()
			stop := make(chan struct{})
			done := make(chan struct{})
			swaps := 0
			go func() {
				defer close(done)
				flip := true
				for {
					select {
					case <-stop:
						return
					case <-time.After(map[string]time.Duration{"none": time.Hour, "swap": time.Millisecond, "reload": 5 * time.Millisecond}[mode]):
					}
					switch mode {
					case "swap":
						if flip {
							g.eng.SetGeneration(other)
						} else {
							g.eng.SetGeneration(first)
						}
					case "reload":
						write(b, path, configVersion(fmt.Sprint(flip)))
						_, _ = g.reloader.Reload(context.Background())
					}
					flip = !flip
					swaps++
				}
			}()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, g.url+"/api/auth/session", nil)
					req.Header.Set("Cookie", g.cookie)
					res, err := client.Do(req)
					if err != nil || res.StatusCode != 200 {
						b.Errorf("session: %v", err)
						return
					}
					res.Body.Close()
				}
			})
			b.StopTimer()
			close(stop)
			<-done
			if mode == "swap" {
				g.eng.SetGeneration(first)
			}
			other.Close()
			b.ReportMetric(float64(swaps)/b.Elapsed().Seconds(), "swaps/s")
		})
	}
}
