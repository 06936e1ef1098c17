// Package inspect is the live view of the auth lifecycle: for each request the gateway
// handles (an auth route, a proxied request, a forward-auth check) it keeps a flow, the
// callbacks that ran for it in order, with their arguments as the script received them and
// their results, and what the core did with them (the cookies it set, the redirect it
// chose, the claims it encoded, the access it decided). Recent flows live in a bounded
// ring; subscribers follow new events as they happen (server-sent events, handler.go).
//
// Everything stored is redacted first (redact.go): the inspector shows what the script
// saw, never a password, a secret, a raw token or a cookie's value.
//
// The inspector is off unless the operator turns it on. Off, the engine holds a nil
// *Inspector and a request carries no flow: every method here is a no-op on nil, so the
// hooks in the engine cost a nil check.
package inspect

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callgate/callgate/engine/script"
)

// Defaults for Options.
const (
	DefaultFlows         = 200
	DefaultEventsPerFlow = 64
	// subscriberBuffer is how many events a subscriber may fall behind before it is
	// dropped: a slow reader must never hold up a request.
	subscriberBuffer = 512
)

// Options size the ring.
type Options struct {
	// Flows is how many recent flows are kept; 0 means DefaultFlows.
	Flows int
	// EventsPerFlow bounds one flow's events; past it a flow records that events were
	// dropped. 0 means DefaultEventsPerFlow.
	EventsPerFlow int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Inspector holds the recent flows and the subscribers.
type Inspector struct {
	opts Options
	now  func() time.Time
	seq  atomic.Uint64 // event ids, increasing, across all flows
	ids  atomic.Uint64 // flow ids

	mu    sync.Mutex
	ring  []*Flow // oldest first once full; next is where the next flow goes
	next  int
	full  bool
	subs  map[*subscriber]struct{}
	evict int // flows evicted from the ring
	// log is the recent events, for a follower that connects or reconnects.
	log    []Event
	closed bool
}

// New makes an inspector.
func New(opts Options) *Inspector {
	if opts.Flows <= 0 {
		opts.Flows = DefaultFlows
	}
	if opts.EventsPerFlow <= 0 {
		opts.EventsPerFlow = DefaultEventsPerFlow
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Inspector{opts: opts, now: now, ring: make([]*Flow, opts.Flows), subs: map[*subscriber]struct{}{}}
}

// Kind says what started a flow.
type Kind string

const (
	KindAuth        Kind = "auth"         // an /api/auth/* route
	KindProxy       Kind = "proxy"        // a request for an app behind the gateway
	KindForwardAuth Kind = "forward-auth" // a check asked by nginx, Traefik or Caddy
)

// Flow is one request's lifecycle. Its fields are written under the inspector's lock.
type Flow struct {
	in *Inspector

	ID      uint64    `json:"id"`
	Kind    Kind      `json:"kind"`
	Method  string    `json:"method"`
	Route   string    `json:"route"` // "/api/auth/callback/credentials", the path of a proxied request
	Host    string    `json:"host,omitempty"`
	Started time.Time `json:"started"`
	// Status is the HTTP status answered; 0 while the flow runs.
	Status     int     `json:"status,omitempty"`
	DurationMs float64 `json:"durationMs,omitempty"`
	Done       bool    `json:"done"`
	Dropped    int     `json:"droppedEvents,omitempty"`
	Events     []Event `json:"events"`

	// secrets are more keys to redact in this flow: the credentials provider's password
	// fields, whatever they are called; secretValues are what the user typed into them,
	// redacted wherever a script copies them.
	secrets      []string
	secretValues []string
}

// Event is one step of a flow, and what subscribers receive.
type Event struct {
	ID   uint64    `json:"id"`
	Flow uint64    `json:"flow"`
	Time time.Time `json:"time"`
	// Type is "flow" (a flow began: Start holds it), "callback", "core" or "end".
	Type string `json:"type"`

	// Start is the flow as it began (Type "flow" and "end": the flow's header, no events).
	Start *FlowHeader `json:"start,omitempty"`
	// Callback is set for Type "callback".
	Callback *Call `json:"callback,omitempty"`
	// Core is set for Type "core": what the core did.
	Core *Core `json:"core,omitempty"`
}

// FlowHeader is a flow without its events.
type FlowHeader struct {
	ID         uint64    `json:"id"`
	Kind       Kind      `json:"kind"`
	Method     string    `json:"method"`
	Route      string    `json:"route"`
	Host       string    `json:"host,omitempty"`
	Started    time.Time `json:"started"`
	Status     int       `json:"status,omitempty"`
	DurationMs float64   `json:"durationMs,omitempty"`
}

// Call is one callback call, redacted.
type Call struct {
	Name       string            `json:"name"` // "callbacks.jwt", "authorize", "events.signIn"
	Trigger    string            `json:"trigger,omitempty"`
	Generation string            `json:"generation"` // the scripts' content hash, short
	DurationMs float64           `json:"durationMs"`
	Args       []json.RawMessage `json:"args"`
	Result     json.RawMessage   `json:"result,omitempty"`
	Error      *CallError        `json:"error,omitempty"`
}

// CallError is a failed call, pointing into the user's source.
type CallError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Source  string `json:"source,omitempty"`
}

// Core is something the core did, in plain words and a few named values. Values are
// never secrets: cookies are named with their size, tokens by their claim names.
type Core struct {
	// What is "cookie", "redirect", "token", "decision" or "session".
	What string `json:"what"`
	// Summary is one line a person reads.
	Summary string         `json:"summary"`
	Detail  map[string]any `json:"detail,omitempty"`
}

type ctxKey struct{}

// Start begins a flow for a request and returns the context that carries it. On a nil
// inspector it returns ctx unchanged and a nil flow.
func (in *Inspector) Start(ctx context.Context, kind Kind, method, route, host string) (context.Context, *Flow) {
	if in == nil {
		return ctx, nil
	}
	f := &Flow{in: in, ID: in.ids.Add(1), Kind: kind, Method: method, Route: route, Host: host, Started: in.now()}
	in.mu.Lock()
	if old := in.ring[in.next]; old != nil {
		in.evict++
	}
	in.ring[in.next] = f
	in.next++
	if in.next == len(in.ring) {
		in.next, in.full = 0, true
	}
	in.publishLocked(Event{Flow: f.ID, Type: "flow", Start: f.headerLocked()})
	in.mu.Unlock()
	return context.WithValue(ctx, ctxKey{}, f), f
}

// FromContext is the flow a request's context carries, or nil.
func FromContext(ctx context.Context) *Flow {
	f, _ := ctx.Value(ctxKey{}).(*Flow)
	return f
}

// Secret adds keys whose values are redacted wherever they appear in this flow: the
// names of a credentials provider's password fields.
func (f *Flow) Secret(keys ...string) {
	if f == nil {
		return
	}
	f.in.mu.Lock()
	f.secrets = append(f.secrets, keys...)
	f.in.mu.Unlock()
}

// SecretValues adds values the user typed into secret fields (a password): any string of
// this flow holding one is redacted, wherever a script put it.
func (f *Flow) SecretValues(values ...string) {
	if f == nil {
		return
	}
	f.in.mu.Lock()
	for _, v := range values {
		if v != "" {
			f.secretValues = append(f.secretValues, v)
		}
	}
	f.in.mu.Unlock()
}

// Core records what the core did. A nil flow records nothing.
func (f *Flow) Core(what, summary string, detail map[string]any) {
	if f == nil {
		return
	}
	f.add(Event{Type: "core", Core: &Core{What: what, Summary: summary, Detail: detail}})
}

// End closes the flow with the status answered.
func (f *Flow) End(status int) {
	if f == nil {
		return
	}
	in := f.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if f.Done {
		return
	}
	f.Done, f.Status = true, status
	f.DurationMs = ms(in.now().Sub(f.Started))
	in.publishLocked(Event{Flow: f.ID, Type: "end", Start: f.headerLocked()})
}

func (f *Flow) add(e Event) {
	in := f.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(f.Events) >= in.opts.EventsPerFlow {
		f.Dropped++
		return
	}
	e.Flow = f.ID
	e = in.publishLocked(e)
	f.Events = append(f.Events, e)
}

func (f *Flow) headerLocked() *FlowHeader {
	return &FlowHeader{ID: f.ID, Kind: f.Kind, Method: f.Method, Route: f.Route, Host: f.Host, Started: f.Started, Status: f.Status, DurationMs: f.DurationMs}
}

// TraceCall implements script.Tracer: a callback call joins the flow of the request that
// made it, redacted. A call outside any flow (a reload's self-test) is not kept.
func (in *Inspector) TraceCall(ctx context.Context, c script.TracedCall) {
	f := FromContext(ctx)
	if in == nil || f == nil {
		return
	}
	in.mu.Lock()
	secrets, values := f.secrets, f.secretValues
	in.mu.Unlock()
	r := newRedactor(secrets, values...)
	call := &Call{Name: c.Callback, Generation: short(c.Generation), DurationMs: ms(c.Duration)}
	for _, a := range c.Args {
		call.Args = append(call.Args, r.json(a))
	}
	if c.Result != nil {
		call.Result = r.json(c.Result)
	}
	call.Trigger = triggerOf(c.Args)
	if c.Err != nil {
		call.Error = callError(c.Err)
	}
	f.add(Event{Type: "callback", Callback: call})
}

func callError(err error) *CallError {
	var se *script.Error
	if !asScriptError(err, &se) {
		return &CallError{Kind: "internal", Message: err.Error()}
	}
	msg := se.Message
	if se.Name != "" {
		msg = se.Name + ": " + msg
	}
	return &CallError{Kind: se.Kind.String(), Message: msg, File: se.File, Line: se.Line, Column: se.Column, Source: se.SourceLine}
}

// triggerOf reads jwt's trigger from its argument ({token, user, account, trigger, ...}).
func triggerOf(args []json.RawMessage) string {
	if len(args) == 0 {
		return ""
	}
	var a struct {
		Trigger string `json:"trigger"`
	}
	if json.Unmarshal(args[0], &a) != nil {
		return ""
	}
	return a.Trigger
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
