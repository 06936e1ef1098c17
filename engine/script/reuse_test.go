package script

import (
	"context"
	"errors"
	"testing"
	"time"
)

// reuseConfig's jwt throws (synchronously, or by rejecting) when the token asks, after
// trying to leave state behind in the intrinsics and the global object; otherwise it
// reports what it sees of that state, how many calls its runtime has served (module
// state: the same runtime counts on), and whether an argument kept from an earlier call
// still reads the host's values.
const reuseConfig = `import Credentials from "callgate/providers/credentials";
let served = 0;
let kept = null;
function tamper() {
  try { Array.prototype.includes = () => true; } catch {}
  try { globalThis.leak = "yes"; } catch {}
  try { Object.prototype.isAdmin = true; } catch {}
}
export default {
  providers: [Credentials({ credentials: {}, authorize: () => null })],
  callbacks: {
    async jwt(arg) {
      served++;
      const { token } = arg;
      if (token.keep) { kept = arg; return token; }
      if (token.boom) { tamper(); throw new Error("boom"); }
      if (token.reject) { tamper(); await null; throw new TypeError("rejected"); }
      if (token.spin) { for (;;) {} }
      return {
        served,
        includes: [].includes(1),
        leak: typeof globalThis.leak,
        isAdmin: ({}).isAdmin === true,
        keptUser: kept ? typeof kept.user : "none",
      };
    },
  },
};
`

// TestRuntimeSurvivesThrow: with one runtime in the request lane, a call that throws (or
// rejects) gives its runtime back: the next call runs on the same runtime (its module
// counter goes on, and the pool created none), and sees none of what the throwing call
// tried to change. An interrupted call still costs its runtime.
func TestRuntimeSurvivesThrow(t *testing.T) {
	l := load(t, writeDir(t, map[string]string{"auth.config.js": reuseConfig}), func(o *Options) {
		o.PoolSize, o.SignInPoolSize = 1, 1
		o.Timeouts = Timeouts{Default: time.Second, PerCallback: map[string]time.Duration{"jwt": 200 * time.Millisecond}}
	})
	ctx := context.Background()
	call := func(token map[string]any) (map[string]any, error) {
		j, err := l.gen.JWT(ctx, JWTArgs{Token: token, User: map[string]any{"id": "u1"}, Account: map[string]any{}, Trigger: "update"})
		if err != nil {
			return nil, err
		}
		return j.Map()
	}
	if _, err := call(map[string]any{"keep": true}); err != nil {
		t.Fatal(err)
	}
	for i, tt := range []struct {
		token map[string]any
		name  string
	}{{map[string]any{"boom": true}, "Error"}, {map[string]any{"reject": true}, "TypeError"}} {
		_, err := call(tt.token)
		var se *Error
		if !errors.As(err, &se) || se.Kind != KindThrown || se.Name != tt.name {
			t.Fatalf("%v: got %v, want a thrown %s", tt.token, err, tt.name)
		}
		got, err := call(map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"served": float64(2*i + 3), "includes": false, "leak": "undefined", "isAdmin": false, "keptUser": "undefined"}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("after %s: %s = %v, want %v (all: %v)", tt.name, k, got[k], w, got)
			}
		}
		if st := l.gen.PoolStats(); st.Created != 0 || st.Live != 1 {
			t.Errorf("after %s: %+v, want the one runtime Load made, kept", tt.name, st)
		}
	}

	// An interrupt is not a plain throw: the runtime may carry it, so it goes.
	_, err := call(map[string]any{"spin": true})
	var se *Error
	if !errors.As(err, &se) || se.Kind != KindTimeout {
		t.Fatalf("spin: got %v, want a timeout", err)
	}
	got, err := call(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if got["served"] != 1.0 {
		t.Errorf("after a timeout: served = %v, want 1 (a new runtime)", got["served"])
	}
	if st := l.gen.PoolStats(); st.Created != 1 {
		t.Errorf("after a timeout: Created = %d, want 1", st.Created)
	}
}
