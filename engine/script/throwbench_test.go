package script

import (
	"context"
	"testing"
)

// BenchmarkThrowingCall is a jwt callback that throws on every call, as one an attacker can
// make throw would: through the string API, so the same benchmark runs on older trees.
func BenchmarkThrowingCall(b *testing.B) {
	l := load(b, writeDir(b, map[string]string{"auth.config.js": `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ credentials: {}, authorize: () => null })],
  callbacks: { jwt: ({ token }) => { if (!token.ok) throw new Error("bad token"); return token; } },
};
`}), nil)
	arg := map[string]any{"token": map[string]any{"sub": "u1"}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.gen.Call(context.Background(), "callbacks.jwt", arg); err == nil {
				b.Fatal("want the throw")
			}
		}
	})
}
