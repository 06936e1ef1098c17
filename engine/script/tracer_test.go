package script

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
)

// recordingTracer keeps every traced call.
type recordingTracer struct {
	mu    sync.Mutex
	calls []TracedCall
}

func (r *recordingTracer) TraceCall(_ context.Context, c TracedCall) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *recordingTracer) take() []TracedCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func TestTracerSeesArgumentsAsReceivedAndResults(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": `
export default {
  providers: [{ type: "credentials", id: "credentials", credentials: {},
    authorize(credentials, req) { credentials.password = "changed"; return { id: "1", name: credentials.username } } }],
  callbacks: {
    jwt({ token, trigger }) { token.touched = trigger ?? "read"; return token },
    session({ session, token }) { session.touched = token.touched; return session },
    redirect({ url }) {
      if (url.includes("boom")) throw new TypeError("no such page")
      return url
    },
  },
}`})
	tr := &recordingTracer{}
	l := load(t, dir, func(o *Options) { o.Tracer = tr })
	ctx := context.Background()

	if _, err := l.gen.Authorize(ctx, "credentials", map[string]any{"username": "alice", "password": "secret"}, map[string]any{"method": "POST"}); err != nil {
		t.Fatal(err)
	}
	calls := tr.take()
	if len(calls) != 1 || calls[0].Callback != NameAuthorize {
		t.Fatalf("authorize traced as %+v", calls)
	}
	c := calls[0]
	if len(c.Args) != 2 || !strings.Contains(string(c.Args[0]), `"password":"secret"`) || !strings.Contains(string(c.Args[1]), `"method":"POST"`) {
		t.Errorf("authorize args %s: want what the script received, before it changed them", c.Args)
	}
	if string(c.Result) != `{"id":"1","name":"alice"}` {
		t.Errorf("authorize result %s", c.Result)
	}
	if c.Generation != l.gen.Hash() || c.Start.IsZero() || c.Duration <= 0 {
		t.Errorf("generation %q start %v duration %v", c.Generation, c.Start, c.Duration)
	}

	// A session read runs jwt and then session on one runtime: two traced calls.
	_, err := l.gen.ReadSession(ctx, ReadArgs{JWT: JWTArgs{Token: map[string]any{"sub": "1"}, Session: Undefined}, Session: Fields{{"expires", "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	calls = tr.take()
	var names []string
	for _, c := range calls {
		names = append(names, c.Callback)
	}
	if strings.Join(names, ",") != "callbacks.jwt,callbacks.session" {
		t.Fatalf("session read traced %v", names)
	}
	var sessArg map[string]any
	if err := json.Unmarshal(calls[1].Args[0], &sessArg); err != nil {
		t.Fatal(err)
	}
	if tok, _ := sessArg["token"].(map[string]any); tok["touched"] != "read" {
		t.Errorf("session received %s, want the token jwt returned", calls[1].Args[0])
	}

	// A throwing callback is traced with its error, which points into the source.
	_, err = l.gen.Redirect(ctx, RedirectArgs{URL: "http://localhost/boom", BaseURL: "http://localhost"})
	if err == nil {
		t.Fatal("redirect did not throw")
	}
	calls = tr.take()
	var se *Error
	if len(calls) != 1 || !errors.As(calls[0].Err, &se) || se.Line == 0 || calls[0].Result != nil {
		t.Fatalf("throwing redirect traced as %+v", calls)
	}
	if !strings.Contains(se.SourceLine, "no such page") {
		t.Errorf("error source line %q", se.SourceLine)
	}
}

func TestJoinTracers(t *testing.T) {
	if JoinTracers(nil, nil) != nil {
		t.Fatal("joining no tracers made one")
	}
	a, b := &recordingTracer{}, &recordingTracer{}
	if JoinTracers(nil, a) != Tracer(a) {
		t.Error("one tracer is not passed through as it is")
	}
	JoinTracers(a, nil, b).TraceCall(context.Background(), TracedCall{Callback: "callbacks.jwt"})
	if len(a.take()) != 1 || len(b.take()) != 1 {
		t.Error("a joined tracer did not tell every tracer")
	}
}

type timingTracer struct{ recordingTracer }

func (*timingTracer) TimingOnly() {}

// A tracer that reads only timings makes the host serialise nothing; joined with one that
// reads values, both get them.
func TestTimingOnlyTracerGetsNoValues(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": `export default {
  providers: [{ type: "credentials", id: "credentials", credentials: {}, authorize: (c) => ({ id: "1" }) }],
}`})
	for _, tc := range []struct {
		name   string
		tracer func(timing *timingTracer, full *recordingTracer) Tracer
		values bool
	}{
		{"timing only", func(tm *timingTracer, _ *recordingTracer) Tracer { return tm }, false},
		{"joined with one that reads values", func(tm *timingTracer, f *recordingTracer) Tracer { return JoinTracers(tm, f) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timing, full := &timingTracer{}, &recordingTracer{}
			l := load(t, dir, func(o *Options) { o.Tracer = tc.tracer(timing, full) })
			if _, err := l.gen.Authorize(context.Background(), "credentials", map[string]any{"password": "p"}, nil); err != nil {
				t.Fatal(err)
			}
			calls := timing.take()
			if len(calls) != 1 || calls[0].Callback != NameAuthorize || calls[0].Duration <= 0 {
				t.Fatalf("timing tracer saw %+v", calls)
			}
			if got := calls[0].Args != nil || calls[0].Result != nil; got != tc.values {
				t.Errorf("values serialised: %v, want %v (args %s, result %s)", got, tc.values, calls[0].Args, calls[0].Result)
			}
		})
	}
}
