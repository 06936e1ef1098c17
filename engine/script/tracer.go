package script

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/dop251/goja"
)

// Tracer is told about every callback call a generation makes, with the arguments as the
// script received them and the value it settled to: what the inspector shows and what an
// OpenTelemetry span records. It is set once, in Options, so that a gateway with nothing
// listening pays nothing: with no Tracer no argument is serialised.
//
// TraceCall runs on the runtime's goroutine, after the call, and must be quick and safe
// for concurrent use. The JSON it receives is the script's view, unredacted: redaction is
// the receiver's job, and it must redact before the data leaves the process.
type Tracer interface {
	TraceCall(ctx context.Context, c TracedCall)
}

// TimingOnly is implemented by a Tracer that reads only a call's name, timing and outcome
// (an OpenTelemetry span): for it the host serialises no argument and no result, and
// TracedCall.Args and Result are nil. A Tracer that wants them (the inspector) does not
// implement it.
type TimingOnly interface {
	Tracer
	TimingOnly()
}

// tracesValues reports whether t reads arguments and results.
func tracesValues(t Tracer) bool {
	switch t := t.(type) {
	case nil, TimingOnly:
		return false
	case tracers:
		for _, one := range t {
			if tracesValues(one) {
				return true
			}
		}
		return false
	}
	return true
}

// TracedCall is one finished callback call.
type TracedCall struct {
	// Callback is the call's name: "callbacks.jwt", "authorize", "events.signIn".
	Callback string
	// Generation is the content hash of the scripts that ran it (Generation.Hash).
	Generation string
	Start      time.Time
	Duration   time.Duration
	// Args is each argument as JSON.stringify wrote it when the call began, before the
	// script could change it; an argument JSON cannot hold (undefined) is null, one it
	// cannot write (a cycle) is a JSON string saying so.
	Args []json.RawMessage
	// Result is the value the call settled to, as JSON; nil when it threw or returned
	// undefined.
	Result json.RawMessage
	// Err is nil or an *Error (with the file, line, column and source line when known).
	Err error
}

// maxTraceJSON bounds each traced value, so that a tracer holding recent calls holds a
// bounded amount of memory whatever the scripts return.
const maxTraceJSON = 16 << 10

// traceState is what one traced call collects on the runtime's goroutine.
type traceState struct {
	args   []json.RawMessage
	result json.RawMessage
}

// traceJSON writes val as JSON for a tracer, never failing: the trace must not change the
// call's outcome, so a value JSON.stringify refuses is described instead.
func (v *vm) traceJSON(val goja.Value) json.RawMessage {
	if val == nil || goja.IsUndefined(val) {
		return json.RawMessage("null")
	}
	s, err := v.stringify(v.jsonObj, val)
	if err != nil {
		return quoteTrace("[not serialisable: " + err.Error() + "]")
	}
	if isNullish(s) {
		return json.RawMessage("null")
	}
	str := s.String()
	if len(str) > maxTraceJSON {
		return quoteTrace("[" + strconv.Itoa(len(str)) + " bytes of JSON, past the inspector's limit]")
	}
	return json.RawMessage(str)
}

func quoteTrace(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// traceArgs records the arguments of a traced call; the returned slice is what the call
// receives, unchanged.
func (v *vm) traceArgs(tr *traceState, args []goja.Value) []goja.Value {
	tr.args = make([]json.RawMessage, len(args))
	for i, a := range args {
		tr.args[i] = v.traceJSON(a)
	}
	return args
}

// traceDone hands a finished call to the generation's tracer.
func (v *vm) traceDone(j *job, tr *traceState, err error) {
	c := TracedCall{
		Callback:   j.name,
		Generation: v.gen.Hash(),
		Start:      j.start,
		Duration:   time.Since(j.start),
		Args:       tr.args,
		Err:        err,
	}
	if err == nil && tr.result != nil && string(tr.result) != "null" {
		c.Result = tr.result
	}
	v.gen.tracer.TraceCall(j.ctx, c)
}

// serveTraced is serve's callback call with a tracer listening: the same call, with its
// arguments and settled value written down on the way.
func (v *vm) serveTraced(j *job) error {
	var tr traceState
	values := v.gen.traceValues
	err := v.run(j.ctx, j.name, j.start, j.timeout, func() (goja.Value, error) {
		b := v.fns[j.fnName]
		args := j.args(v, j.arg)
		if values {
			v.traceArgs(&tr, args)
		}
		return b.fn(b.this, args...)
	}, func(val goja.Value) error {
		if values {
			tr.result = v.traceJSON(val)
		}
		var err error
		v.out, err = j.result(v, j.name, val)
		return err
	})
	v.traceDone(j, &tr, err)
	return err
}

// JoinTracers is one Tracer telling each of ts in turn; nil when none of ts is set, so that
// a generation with no listener stays untraced.
func JoinTracers(ts ...Tracer) Tracer {
	var set []Tracer
	for _, t := range ts {
		if t != nil {
			set = append(set, t)
		}
	}
	switch len(set) {
	case 0:
		return nil
	case 1:
		return set[0]
	}
	return tracers(set)
}

type tracers []Tracer

func (ts tracers) TraceCall(ctx context.Context, c TracedCall) {
	for _, t := range ts {
		t.TraceCall(ctx, c)
	}
}
