package script

import (
	"errors"
	"fmt"
)

// The host calls the auth config's functions through typed methods (JWT, Session, SignIn,
// Redirect, Authorized, Emit, Authorize, Profile) and asks whether they exist with Defines,
// so that a misspelt name is a compile error rather than a callback read as "not defined"
// and silently replaced by NextAuth's default. Each callback's argument object, lane and
// result check sit together in its own file (cb_*.go).

// Callback names one of NextAuth's `callbacks` that the host calls.
type Callback uint8

// The callbacks, in the order a sign-in meets them.
const (
	CallbackSignIn Callback = iota
	CallbackRedirect
	CallbackJWT
	CallbackSession
	// CallbackAuthorized is the proxy's access decision (NextAuth v5 middleware's
	// `authorized`), not a NextAuth v4 callback.
	CallbackAuthorized
	callbackCount
)

// Event names one of NextAuth's `events` that the host fires.
type Event uint8

// The events, in the order a sign-in meets them.
const (
	EventSignIn Event = iota
	EventSignOut
	EventCreateUser
	EventUpdateUser
	EventLinkAccount
	EventSession
	// EventEnrollFactor and EventRemoveFactor are callgate's: a user added or removed a
	// second factor or passkey ({user, factor: {type, id, name}}).
	EventEnrollFactor
	EventRemoveFactor
	eventCount
)

// NameAuthorize and NameProfile are the names the providers' own functions are reported
// under (Error.Callback, Observer.ObserveCall, Timeouts.PerCallback).
const (
	NameAuthorize = "authorize"
	NameProfile   = "profile"
)

// callbackInfo is what the host knows of each callback: its key in the auth config, the
// name errors, metrics and deadlines use, and the lane it runs on (jwt's lane also depends
// on its trigger: cb_jwt.go).
var callbackInfo = [callbackCount]struct {
	key, name string
	lane      lane
}{
	CallbackSignIn:     {"signIn", "callbacks.signIn", laneSignIn},
	CallbackRedirect:   {"redirect", "callbacks.redirect", laneRequest},
	CallbackJWT:        {"jwt", "callbacks.jwt", laneRequest},
	CallbackSession:    {"session", "callbacks.session", laneRequest},
	CallbackAuthorized: {"authorized", "callbacks.authorized", laneRequest},
}

// eventInfo is callbackInfo's counterpart for events. Every event but session belongs to
// a sign-in or sign-out; events.session fires on every session read.
// order is the argument's keys in the order NextAuth builds it.
var eventInfo = [eventCount]struct {
	key, name string
	lane      lane
	order     []string
}{
	EventSignIn:       {"signIn", "events.signIn", laneSignIn, []string{"user", "account", "profile", "isNewUser"}},
	EventSignOut:      {"signOut", "events.signOut", laneSignIn, []string{"session", "token"}},
	EventCreateUser:   {"createUser", "events.createUser", laneSignIn, []string{"user"}},
	EventUpdateUser:   {"updateUser", "events.updateUser", laneSignIn, []string{"user"}},
	EventLinkAccount:  {"linkAccount", "events.linkAccount", laneSignIn, []string{"user", "account", "profile"}},
	EventSession:      {"session", "events.session", laneRequest, []string{"session", "token"}},
	EventEnrollFactor: {"enrollFactor", "events.enrollFactor", laneSignIn, []string{"user", "factor"}},
	EventRemoveFactor: {"removeFactor", "events.removeFactor", laneSignIn, []string{"user", "factor"}},
}

// Key is the callback's key in the auth config's `callbacks` object ("jwt"); empty for a
// value that names no callback.
func (c Callback) Key() string {
	if c >= callbackCount {
		return ""
	}
	return callbackInfo[c].key
}

// String is the callback's full name ("callbacks.jwt"), as errors, metrics and logs show it.
func (c Callback) String() string {
	if c >= callbackCount {
		return fmt.Sprintf("Callback(%d)", c)
	}
	return callbackInfo[c].name
}

// Key is the event's key in the auth config's `events` object ("signIn"); empty for a
// value that names no event.
func (e Event) Key() string {
	if e >= eventCount {
		return ""
	}
	return eventInfo[e].key
}

// String is the event's full name ("events.signIn"), as errors, metrics and logs show it.
func (e Event) String() string {
	if e >= eventCount {
		return fmt.Sprintf("Event(%d)", e)
	}
	return eventInfo[e].name
}

// Callbacks lists every callback, in lifecycle order.
func Callbacks() []Callback {
	out := make([]Callback, callbackCount)
	for i := range out {
		out[i] = Callback(i)
	}
	return out
}

// Events lists every event, in lifecycle order.
func Events() []Event {
	out := make([]Event, eventCount)
	for i := range out {
		out[i] = Event(i)
	}
	return out
}

// Hook is a Callback or an Event: what Defines asks about.
type Hook interface {
	slot() int
	String() string
}

func (c Callback) slot() int { return int(c) }
func (e Event) slot() int    { return int(callbackCount) + int(e) }

// hookSlots sizes Generation.defines: one slot per callback, then one per event.
const hookSlots = int(callbackCount) + int(eventCount)

// Defines reports whether the script defines a callback or an event handler. The engine
// applies NextAuth's default for a callback the script leaves out, and fires no event.
func (g *Generation) Defines(h Hook) bool {
	if h == nil {
		return false
	}
	i := h.slot()
	return i >= 0 && i < hookSlots && g.defines[i]
}

// ErrNotDefined is what a typed call of a callback or event the script does not define
// fails with (wrapped in an *Error of KindInternal): the engine asks Defines first and
// applies NextAuth's default instead.
var ErrNotDefined = errors.New("not defined by the script")

func notDefined(name string) *Error {
	return &Error{Callback: name, Kind: KindInternal, Message: "the script does not define " + name, Err: ErrNotDefined}
}

// fillDefines sets g.defines from the callables of the first runtime.
func (g *Generation) fillDefines(fns map[string]boundFn) {
	for c := range callbackCount {
		_, g.defines[c.slot()] = fns[c.String()]
	}
	for e := range eventCount {
		_, g.defines[e.slot()] = fns[e.String()]
	}
}
