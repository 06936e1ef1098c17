package script

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// allHooksConfig defines every callback and event the host calls, each named from the
// exported constants, so the loader's verdict on the names is the constants' verdict.
func allHooksConfig() string {
	var cbs, evs []string
	for _, c := range Callbacks() {
		cbs = append(cbs, fmt.Sprintf("%q: () => null", c.Key()))
	}
	for _, e := range Events() {
		evs = append(evs, fmt.Sprintf("%q: () => {}", e.Key()))
	}
	return `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ credentials: {}, authorize: () => null })],
  callbacks: {` + strings.Join(cbs, ", ") + `},
  events: {` + strings.Join(evs, ", ") + `},
};
`
}

// TestHookNames checks every exported callback and event constant against the config
// loader: it accepts the name without an "unknown ... ignored" warning, the generation
// reports it defined, the raw name API agrees on its lane, and no name the loader knows
// lacks a constant.
func TestHookNames(t *testing.T) {
	l := load(t, writeDir(t, map[string]string{"auth.config.js": allHooksConfig()}), nil)
	if strings.Contains(l.logs.String(), "ignored") {
		t.Fatalf("the loader ignored a name the constants give:\n%s", l.logs.String())
	}
	type hookCase struct {
		hook    Hook
		section string
		key     string
		known   map[string]bool
		lane    lane
	}
	var tests []hookCase
	for _, c := range Callbacks() {
		tests = append(tests, hookCase{c, "callbacks", c.Key(), knownCallbacks, callbackInfo[c].lane})
	}
	for _, e := range Events() {
		tests = append(tests, hookCase{e, "events", e.Key(), knownEvents, eventInfo[e].lane})
	}
	for _, tt := range tests {
		t.Run(tt.hook.String(), func(t *testing.T) {
			if !tt.known[tt.key] {
				t.Errorf("%s.%s is not a name the config loader knows", tt.section, tt.key)
			}
			if want := tt.section + "." + tt.key; tt.hook.String() != want {
				t.Errorf("String() = %q, want %q", tt.hook.String(), want)
			}
			if !l.gen.Defines(tt.hook) || !l.gen.Has(tt.hook.String()) {
				t.Errorf("Defines(%s) = %v, Has = %v, want both true", tt.hook, l.gen.Defines(tt.hook), l.gen.Has(tt.hook.String()))
			}
			if got := laneOf(tt.hook.String(), nil); got != tt.lane {
				t.Errorf("laneOf(%s) = %s, the typed call uses %s", tt.hook, got, tt.lane)
			}
		})
	}
	if len(Callbacks()) != len(knownCallbacks) || len(Events()) != len(knownEvents) {
		t.Errorf("%d callback and %d event constants, the loader knows %d and %d", len(Callbacks()), len(Events()), len(knownCallbacks), len(knownEvents))
	}
	if Callback(99).String() != "Callback(99)" || Event(99).String() != "Event(99)" || Callback(99).Key() != "" ||
		Event(99).Key() != "" || l.gen.Defines(Callback(99)) || l.gen.Defines(Event(99)) || l.gen.Defines(nil) {
		t.Error("an out-of-range constant must name itself and be undefined")
	}
}

// countingObserver counts the calls the host made.
type countingObserver struct{ calls []string }

func (o *countingObserver) ObserveCall(name string, _ time.Duration, _ error) {
	o.calls = append(o.calls, name)
}
func (o *countingObserver) ObservePoolWait(time.Duration) {}

// TestFacadeUndefined: a script that defines no callback nor event. Defines says so, so the
// engine applies NextAuth's defaults (engine tests check the defaults themselves), and a
// typed call made anyway fails with ErrNotDefined without running anything, as the string
// API did.
func TestFacadeUndefined(t *testing.T) {
	obs := &countingObserver{}
	l := load(t, writeDir(t, map[string]string{"auth.config.js": `import Credentials from "callgate/providers/credentials";
export default { providers: [Credentials({ credentials: {}, authorize: () => null })] };
`}), func(o *Options) { o.Observer = obs })
	ctx := context.Background()
	for _, c := range Callbacks() {
		if l.gen.Defines(c) {
			t.Errorf("Defines(%s) = true", c)
		}
	}
	for _, e := range Events() {
		if l.gen.Defines(e) {
			t.Errorf("Defines(%s) = true", e)
		}
	}
	calls := map[string]func() error{
		"jwt":        func() error { _, err := l.gen.JWT(ctx, JWTArgs{Token: map[string]any{}}); return err },
		"session":    func() error { _, err := l.gen.Session(ctx, SessionArgs{Session: map[string]any{}}); return err },
		"signIn":     func() error { _, err := l.gen.SignIn(ctx, SignInArgs{}); return err },
		"redirect":   func() error { _, err := l.gen.Redirect(ctx, RedirectArgs{URL: "/", BaseURL: "http://x"}); return err },
		"authorized": func() error { _, err := l.gen.Authorized(ctx, Shared{}); return err },
		"event":      func() error { return l.gen.Emit(ctx, EventSignIn, nil) },
		"raw":        func() error { _, err := l.gen.Call(ctx, "callbacks.jwt", nil); return err },
	}
	for name, call := range calls {
		err := call()
		var se *Error
		if !errors.Is(err, ErrNotDefined) || !errors.As(err, &se) || se.Kind != KindInternal || !strings.Contains(se.Message, "does not define") {
			t.Errorf("%s: got %v, want a KindInternal ErrNotDefined", name, err)
		}
	}
	if len(obs.calls) != 0 {
		t.Errorf("undefined callbacks were run: %v", obs.calls)
	}
}

// argsConfig returns each callback's argument keys (and the values of a few), so the typed
// calls can be compared with the string API given the maps the engine used to build.
const argsConfig = `import Credentials from "callgate/providers/credentials";
const describe = (arg) => ({ keys: Object.keys(arg), has: Object.keys(arg).map((k) => k in arg),
  undef: Object.keys(arg).filter((k) => arg[k] === undefined), trigger: arg.trigger ?? null,
  isNewUser: arg.isNewUser ?? null });
export default {
  providers: [Credentials({ credentials: {}, authorize: () => null })],
  callbacks: {
    jwt: (arg) => ({ ...describe(arg), sub: arg.token.sub ?? null }),
    session: (arg) => describe(arg),
    signIn: (arg) => describe(arg),
    redirect: ({ url, baseUrl }) => baseUrl + "|" + url,
  },
};
`

// TestFacadeArgs checks that each typed call passes exactly the object NextAuth v4 passes
// in each flow: the same keys, and the same values, as the maps the engine built for the
// string API.
func TestFacadeArgs(t *testing.T) {
	l := load(t, writeDir(t, map[string]string{"auth.config.js": argsConfig}), nil)
	ctx := context.Background()
	tok := map[string]any{"sub": "u1"}
	user := map[string]any{"id": "u1"}
	account := map[string]any{"provider": "credentials"}
	profile := map[string]any{"login": "u1"}
	jwt := []struct {
		name  string
		typed JWTArgs
		raw   map[string]any
	}{
		{"read", JWTArgs{Token: tok, Session: Undefined}, map[string]any{"token": tok, "session": Undefined}},
		{"update", JWTArgs{Token: tok, Trigger: "update", Session: map[string]any{"x": 1.0}}, map[string]any{"token": tok, "trigger": "update", "session": map[string]any{"x": 1.0}}},
		{"refresh", JWTArgs{Token: tok, Account: account, Trigger: "refresh"}, map[string]any{"token": tok, "account": account, "trigger": "refresh"}},
		{"credentials", JWTArgs{Token: tok, User: user, Account: account, Trigger: "signIn"}, map[string]any{"token": tok, "user": user, "account": account, "isNewUser": false, "trigger": "signIn"}},
		{"oauth", JWTArgs{Token: tok, User: user, Account: account, Profile: profile, IsNewUser: true, Trigger: "signUp"}, map[string]any{"token": tok, "user": user, "account": account, "profile": profile, "isNewUser": true, "trigger": "signUp"}},
	}
	for _, tt := range jwt {
		gotJSON, err := l.gen.JWT(ctx, tt.typed)
		if err != nil {
			t.Fatalf("jwt %s: %v", tt.name, err)
		}
		got := mustMap(t, gotJSON)
		want, err := l.gen.Call(ctx, "callbacks.jwt", tt.raw)
		if err != nil {
			t.Fatal(err)
		}
		checkOrder(t, "jwt "+tt.name, got)
		if !reflect.DeepEqual(sortedKeys(got), sortedKeys(want)) {
			t.Errorf("jwt %s: typed call saw %v, the string API %v", tt.name, got, want)
		}
	}
	session := map[string]any{"user": map[string]any{}, "expires": "2030-01-01T00:00:00.000Z"}
	sessions := []struct {
		name  string
		typed SessionArgs
		raw   map[string]any
	}{
		{"jwt", SessionArgs{Session: session, Token: tok}, map[string]any{"session": session, "token": tok}},
		{"database", SessionArgs{Session: session, User: user}, map[string]any{"session": session, "user": user, "newSession": Undefined}},
	}
	for _, tt := range sessions {
		gotJSON, err := l.gen.Session(ctx, tt.typed)
		if err != nil {
			t.Fatalf("session %s: %v", tt.name, err)
		}
		got := mustMap(t, gotJSON)
		want, _ := l.gen.Call(ctx, "callbacks.session", tt.raw)
		checkOrder(t, "session "+tt.name, got)
		if !reflect.DeepEqual(sortedKeys(got), sortedKeys(want)) {
			t.Errorf("session %s: typed call saw %v, the string API %v", tt.name, got, want)
		}
	}
	signIns := []struct {
		name  string
		typed SignInArgs
		raw   map[string]any
	}{
		{"credentials", SignInArgs{User: user, Account: account, Credentials: map[string]any{"username": "u"}}, map[string]any{"user": user, "account": account, "credentials": map[string]any{"username": "u"}}},
		{"oauth", SignInArgs{User: user, Account: account, Profile: profile}, map[string]any{"user": user, "account": account, "profile": profile}},
	}
	for _, tt := range signIns {
		got, err := l.gen.SignIn(ctx, tt.typed)
		if err != nil {
			t.Fatalf("signIn %s: %v", tt.name, err)
		}
		want, _ := l.gen.Call(ctx, "callbacks.signIn", tt.raw)
		checkOrder(t, "signIn "+tt.name, got.(map[string]any))
		if !reflect.DeepEqual(sortedKeys(got), sortedKeys(want)) {
			t.Errorf("signIn %s: typed call saw %v, the string API %v", tt.name, got, want)
		}
	}
	if got, err := l.gen.Redirect(ctx, RedirectArgs{URL: "/a", BaseURL: "http://gw"}); err != nil || got != "http://gw|/a" {
		t.Errorf("redirect: got %q, %v", got, err)
	}
}

// BenchmarkCallJWT and BenchmarkCallSession call through the string API.
func BenchmarkCallJWT(b *testing.B) {
	l := load(b, "../../scripts", nil)
	arg := map[string]any{"token": map[string]any{"name": "Alice", "email": "alice@example.com", "sub": "65f0c0ffee0000000000a11c",
		"id": "65f0c0ffee0000000000a11c", "role": "admin", "iat": 1.7e9, "exp": 1.7e9 + 2592000, "jti": "0b7f4a36-2c1b-4a57-9a43-8f8a1d2b0c11"}, "session": Undefined}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.gen.Call(context.Background(), "callbacks.jwt", arg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCallSession(b *testing.B) {
	l := load(b, "../../scripts", nil)
	arg := map[string]any{
		"session": map[string]any{"user": map[string]any{"name": "Alice", "email": "alice@example.com"}, "expires": "2030-01-01T00:00:00.000Z"},
		"token":   map[string]any{"name": "Alice", "email": "alice@example.com", "sub": "65f0", "id": "65f0", "role": "admin", "iat": 1.7e9, "exp": 1.8e9, "jti": "x"},
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.gen.Call(context.Background(), "callbacks.session", arg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkJWT and BenchmarkSession are BenchmarkCallJWT and BenchmarkCallSession through
// the typed calls, with the same arguments, so the two can be compared in one run.
func BenchmarkJWT(b *testing.B) {
	l := load(b, "../../scripts", nil)
	arg := JWTArgs{Token: map[string]any{"name": "Alice", "email": "alice@example.com", "sub": "65f0c0ffee0000000000a11c",
		"id": "65f0c0ffee0000000000a11c", "role": "admin", "iat": 1.7e9, "exp": 1.7e9 + 2592000, "jti": "0b7f4a36-2c1b-4a57-9a43-8f8a1d2b0c11"}, Session: Undefined}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.gen.JWT(context.Background(), arg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSession(b *testing.B) {
	l := load(b, "../../scripts", nil)
	arg := SessionArgs{
		Session: map[string]any{"user": map[string]any{"name": "Alice", "email": "alice@example.com"}, "expires": "2030-01-01T00:00:00.000Z"},
		Token:   map[string]any{"name": "Alice", "email": "alice@example.com", "sub": "65f0", "id": "65f0", "role": "admin", "iat": 1.7e9, "exp": 1.8e9, "jti": "x"},
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.gen.Session(context.Background(), arg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// mustMap decodes a typed call's JSON result.
func mustMap(t testing.TB, j JSON) map[string]any {
	t.Helper()
	m, err := j.Map()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// nextAuthOrder is the key order of each callback argument as NextAuth v4 builds it.
var nextAuthOrder = map[string]string{
	"jwt read": "token,session", "jwt update": "token,trigger,session", "jwt refresh": "token,account,trigger",
	"jwt credentials": "token,user,account,isNewUser,trigger", "jwt oauth": "token,user,account,profile,isNewUser,trigger",
	"session jwt": "session,token", "session database": "session,user,newSession",
	"signIn credentials": "user,account,credentials", "signIn oauth": "user,account,profile",
}

// checkOrder: a typed call's argument shows its keys in NextAuth's order (the string API's
// maps have none: their keys are sorted).
func checkOrder(t *testing.T, name string, described map[string]any) {
	t.Helper()
	keys, _ := described["keys"].([]any)
	var got []string
	for _, k := range keys {
		got = append(got, k.(string))
	}
	if want := nextAuthOrder[name]; strings.Join(got, ",") != want {
		t.Errorf("%s: the script saw keys %v, want NextAuth's order %s", name, got, want)
	}
}

// sortedKeys is a described argument with its keys sorted.
func sortedKeys(described any) any {
	m, ok := described.(map[string]any)
	if !ok {
		return described
	}
	out := maps.Clone(m)
	if keys, ok := m["keys"].([]any); ok {
		keys = slices.Clone(keys)
		slices.SortFunc(keys, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
		out["keys"] = keys
	}
	return out
}
