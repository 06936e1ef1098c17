package inspect

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/script"
)

func TestFlowRecordsCallsAndCoreInOrder(t *testing.T) {
	in := New(Options{})
	ctx, f := in.Start(context.Background(), KindAuth, "POST", "/api/auth/callback/credentials", "localhost")
	f.Secret("pin")
	in.TraceCall(ctx, script.TracedCall{Callback: "authorize", Generation: "0123456789abcdef0123", Duration: 2 * time.Millisecond,
		Args: []json.RawMessage{json.RawMessage(`{"username":"a","pin":"1234"}`)}, Result: json.RawMessage(`{"id":"1"}`)})
	in.TraceCall(ctx, script.TracedCall{Callback: "callbacks.jwt", Args: []json.RawMessage{json.RawMessage(`{"token":{},"trigger":"signIn"}`)},
		Err: &script.Error{Kind: script.KindThrown, Name: "TypeError", Message: "x is undefined", File: "auth.config.js", Line: 7, Column: 3, SourceLine: "  return x.y"}})
	f.Core("cookie", "cookie set", map[string]any{"name": "next-auth.session-token"})
	f.End(200)
	// A call outside any flow (a reload's self-test) is not kept.
	in.TraceCall(context.Background(), script.TracedCall{Callback: "callbacks.session"})

	flows := in.Snapshot()
	if len(flows) != 1 {
		t.Fatalf("%d flows, want 1", len(flows))
	}
	got := flows[0]
	if !got.Done || got.Status != 200 || len(got.Events) != 3 {
		t.Fatalf("flow %+v", got)
	}
	a := got.Events[0].Callback
	if a.Name != "authorize" || a.Generation != "0123456789ab" || a.DurationMs != 2 || string(a.Args[0]) != `{"username":"a","pin":"[redacted]"}` {
		t.Errorf("authorize event %+v args %s", a, a.Args)
	}
	j := got.Events[1].Callback
	if j.Trigger != "signIn" || j.Error == nil || j.Error.File != "auth.config.js" || j.Error.Line != 7 || j.Error.Source != "  return x.y" || j.Error.Message != "TypeError: x is undefined" {
		t.Errorf("jwt event %+v error %+v", j, j.Error)
	}
	if got.Events[2].Core == nil || got.Events[2].Core.What != "cookie" {
		t.Errorf("core event %+v", got.Events[2])
	}
}

func TestRingIsBounded(t *testing.T) {
	in := New(Options{Flows: 3, EventsPerFlow: 2})
	var last *Flow
	for i := 0; i < 10; i++ {
		_, last = in.Start(context.Background(), KindProxy, "GET", "/", "")
		for j := 0; j < 5; j++ {
			last.Core("decision", "allowed", nil)
		}
		last.End(200)
	}
	flows := in.Snapshot()
	if len(flows) != 3 || flows[0].ID != 8 || flows[2].ID != 10 {
		t.Fatalf("kept flows %v, want the newest three, oldest first", ids(flows))
	}
	if len(flows[2].Events) != 2 || flows[2].Dropped != 3 {
		t.Errorf("a flow kept %d events and dropped %d, want 2 and 3", len(flows[2].Events), flows[2].Dropped)
	}
	if n := len(in.log); n > in.logCap() {
		t.Errorf("the event log holds %d events, past its bound %d", n, in.logCap())
	}
}

func ids(fs []Flow) []uint64 {
	var out []uint64
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func TestNilInspectorAndFlowAreNoOps(t *testing.T) {
	var in *Inspector
	ctx, f := in.Start(context.Background(), KindAuth, "GET", "/", "")
	if f != nil || FromContext(ctx) != nil {
		t.Fatal("a nil inspector made a flow")
	}
	f.Core("cookie", "x", nil)
	f.Secret("x")
	f.End(200)
	in.TraceCall(ctx, script.TracedCall{})
	in.Close()
}

func TestSubscribersGetBacklogThenLiveAndSlowOnesAreDropped(t *testing.T) {
	in := New(Options{EventsPerFlow: 4 * subscriberBuffer})
	_, f := in.Start(context.Background(), KindAuth, "GET", "/api/auth/session", "")
	f.Core("token", "encoded", nil)
	sub := in.Subscribe(0)
	if len(sub.Backlog) != 2 || sub.Backlog[0].Type != "flow" || sub.Backlog[1].Type != "core" {
		t.Fatalf("backlog %+v", sub.Backlog)
	}
	since := in.Subscribe(sub.Backlog[0].ID)
	if len(since.Backlog) != 1 {
		t.Errorf("backlog after id %d: %d events, want 1", sub.Backlog[0].ID, len(since.Backlog))
	}
	f.End(200)
	if e := <-sub.Events(); e.Type != "end" || e.Start.Status != 200 {
		t.Errorf("live event %+v", e)
	}
	// since never reads: once its buffer is full it is dropped, and publishing goes on.
	for i := 0; i < subscriberBuffer+10; i++ {
		f.Core("cookie", "x", nil)
	}
	if !since.Lagged() {
		t.Error("a subscriber that stopped reading was not dropped")
	}
	n := 0
	for range since.Events() {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("the dropped subscriber's channel held %d events, want its buffer, %d", n, subscriberBuffer)
	}
	in.Close()
	if _, ok := <-sub.Events(); ok {
		for range sub.Events() {
		}
	}
	if _, ok := <-in.Subscribe(0).Events(); ok {
		t.Error("a subscription after Close is open")
	}
}

func TestCallErrorOfAnyError(t *testing.T) {
	if e := callError(errors.New("boom")); e.Kind != "internal" || !strings.Contains(e.Message, "boom") {
		t.Errorf("%+v", e)
	}
}
