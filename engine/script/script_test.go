package script

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"

	"golang.org/x/crypto/bcrypt"

	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"
)

const fixtures = "../../testdata/scripts"

// openStore opens a real bbolt store in a temp dir with alice (password "wonderland").
func openStore(t testing.TB) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	hash, err := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.CreateUser(context.Background(), store.User{
		ID: "65f0c0ffee0000000000a11c", Username: "alice", Name: "Alice", Email: "alice@example.com",
		Role: "admin", PasswordHash: string(hash), Extra: map[string]any{"team": "blue"},
	})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return st
}

// syncBuffer collects a gateway's log while it runs.
type syncBuffer = testkit.SyncBuffer

type loaded struct {
	gen  *Generation
	logs *syncBuffer
}

func load(t testing.TB, dir string, edit func(*Options)) loaded {
	t.Helper()
	logs := &syncBuffer{}
	opts := Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&opts)
	}
	gen, err := Load(context.Background(), opts)
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	t.Cleanup(gen.Close)
	return loaded{gen, logs}
}

// patientBcrypt lifts the ceiling this package's tests put on every deadline
// (testRegexpMatchTimeout, 6 s) to the 30 s of production, for a generation whose calls
// hash or compare bcrypt at cost 10 and match no regular expression: under the race
// detector on a busy 2-core machine one such call can take longer than 6 s, and a test of
// something else must then be slow, not fail.
func patientBcrypt(l loaded) loaded {
	l.gen.maxTimeout = 30 * time.Second
	return l
}

func loadErr(t *testing.T, dir string) *Error {
	t.Helper()
	gen, err := Load(context.Background(), Options{Dir: dir})
	if err == nil {
		gen.Close()
		t.Fatalf("Load(%s) succeeded, want an error", dir)
	}
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("Load(%s) error %T %v, want *Error", dir, err, err)
	}
	return se
}

// lineOf returns the 1-based line of the first line of file containing marker.
func lineOf(t *testing.T, file, marker string) int {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, marker) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", file, marker)
	return 0
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("error %T %v, want *Error", err, err)
	}
	return se
}

func TestShippedExample(t *testing.T) {
	st := openStore(t)
	// authorize compares a bcrypt hash: 30 s, so a busy machine slows the test instead of
	// failing it.
	l := patientBcrypt(load(t, "../../scripts", func(o *Options) { o.Users = st; o.Timeouts.Default = 30 * time.Second }))
	ctx := context.Background()

	cfg := l.gen.Config()
	want := []Provider{{ID: "credentials", Name: "credentials", Type: "credentials", Credentials: []CredentialField{
		{Name: "username", Label: "Username", Type: "text"},
		{Name: "password", Label: "Password", Type: "password"},
	}}}
	if !reflect.DeepEqual(cfg.Providers, want) {
		t.Errorf("providers: got %+v, want %+v", cfg.Providers, want)
	}
	if cfg.Session.Strategy != "jwt" || cfg.Session.MaxAge != 30*24*time.Hour || cfg.Session.UpdateAge != 24*time.Hour || cfg.Session.AbsoluteMaxAge != 0 || cfg.JWT.MaxAge != 30*24*time.Hour {
		t.Errorf("defaults: got %+v / %+v", cfg.Session, cfg.JWT)
	}
	for name, want := range map[string]bool{
		"callbacks.jwt": true, "callbacks.session": true, "callbacks.signIn": false,
		"callbacks.redirect": false, "events.signIn": false,
	} {
		if got := l.gen.Has(name); got != want {
			t.Errorf("Has(%q): got %v, want %v", name, got, want)
		}
	}
	if len(l.gen.Hash()) != 64 {
		t.Errorf("Hash: got %q, want 64 hex digits", l.gen.Hash())
	}

	tests := []struct {
		name, username, password string
		want                     map[string]any
	}{
		{"right password", "alice", "wonderland", map[string]any{"id": "65f0c0ffee0000000000a11c", "name": "Alice", "email": "alice@example.com", "role": "admin"}},
		{"wrong password", "alice", "nope", nil},
		{"unknown user", "bob", "wonderland", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := l.gen.Authorize(ctx, "credentials", map[string]any{"username": tc.username, "password": tc.password, "csrfToken": "x"}, map[string]any{"method": "POST"})
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	tok, err := l.gen.Call(ctx, "callbacks.jwt", map[string]any{
		"token": map[string]any{"name": "Alice", "sub": "65f0"}, "user": map[string]any{"id": "65f0", "role": "admin"},
		"account": map[string]any{"provider": "credentials"}, "isNewUser": false, "trigger": "signIn",
	})
	if err != nil {
		t.Fatalf("jwt: %v", err)
	}
	if want := map[string]any{"name": "Alice", "sub": "65f0", "id": "65f0", "role": "admin"}; !reflect.DeepEqual(tok, want) {
		t.Errorf("jwt: got %v, want %v", tok, want)
	}
	sess, err := l.gen.Call(ctx, "callbacks.session", map[string]any{
		"session": map[string]any{"user": map[string]any{"name": "Alice"}, "expires": "2030-01-01T00:00:00.000Z"},
		"token":   tok,
	})
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	if want := map[string]any{"user": map[string]any{"name": "Alice", "id": "65f0", "role": "admin"}, "expires": "2030-01-01T00:00:00.000Z"}; !reflect.DeepEqual(sess, want) {
		t.Errorf("session: got %v, want %v", sess, want)
	}
	if _, err := l.gen.Call(ctx, "callbacks.signIn", map[string]any{}); err == nil {
		t.Error("Call of an undefined callback succeeded, want an error")
	}
}

func TestStoreFailureRejects(t *testing.T) {
	st := openStore(t)
	l := load(t, "../../scripts", func(o *Options) { o.Users = st })
	st.Close()
	_, err := l.gen.Authorize(context.Background(), "credentials", map[string]any{"username": "alice", "password": "wonderland"}, nil)
	if err == nil {
		t.Fatal("Authorize with a closed store: got no error, want the store failure")
	}
	if se := asError(t, err); se.Kind != KindThrown || !strings.Contains(se.Message, "users.findOne") {
		t.Errorf("got %v, want a thrown users.findOne error", err)
	}
}

func TestTypeScriptAndLocalImports(t *testing.T) {
	ctx := context.Background()
	ts := load(t, filepath.Join(fixtures, "typescript"), nil)
	got, err := ts.gen.Authorize(ctx, "credentials", map[string]any{"username": "alice"}, nil)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	if want := map[string]any{"id": "u-alice", "name": "alice", "role": "admin"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if p := ts.gen.Config().Providers[0].Credentials; len(p) != 1 || p[0].Placeholder != "jsmith" {
		t.Errorf("credentials fields: got %+v", p)
	}
	_, err = ts.gen.Authorize(ctx, "credentials", map[string]any{"username": "boom"}, nil)
	se := asError(t, err)
	wantLine := lineOf(t, filepath.Join(fixtures, "typescript/auth.config.ts"), "return missing.id")
	if se.File != "auth.config.ts" || se.Line != wantLine || se.Name != "TypeError" || se.Public {
		t.Errorf("TS TypeError: got %s:%d (name %s, public %v), want auth.config.ts:%d TypeError not public", se.File, se.Line, se.Name, se.Public, wantLine)
	}
	if !strings.Contains(se.SourceLine, "return missing.id") {
		t.Errorf("SourceLine: got %q", se.SourceLine)
	}

	li := load(t, filepath.Join(fixtures, "local-import"), nil)
	got, err = li.gen.Authorize(ctx, "credentials", map[string]any{"username": "bob"}, nil)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	if got["name"] != "BOB!" {
		t.Errorf("local import: got %v, want name BOB!", got)
	}
}

func TestThrowPositionsInTypeScript(t *testing.T) {
	l := load(t, filepath.Join(fixtures, "ts-error"), nil)
	_, err := l.gen.Authorize(context.Background(), "credentials", map[string]any{"username": "zoe"}, nil)
	se := asError(t, err)
	file := filepath.Join(fixtures, "ts-error/auth.config.ts")
	line := lineOf(t, file, "throw new Error")
	src, _ := os.ReadFile(file)
	col := strings.Index(strings.Split(string(src), "\n")[line-1], "new Error") + 1
	if se.File != "auth.config.ts" || se.Line != line || se.Column != col {
		t.Errorf("position: got %s:%d:%d, want auth.config.ts:%d:%d", se.File, se.Line, se.Column, line, col)
	}
	if !se.Public || se.Message != "no entry for zoe" {
		t.Errorf("got public=%v message %q, want public \"no entry for zoe\"", se.Public, se.Message)
	}
}

func TestLoadErrors(t *testing.T) {
	escapeLink := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "x.js"), []byte("export const x = 1;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "x.js"), filepath.Join(escapeLink, "x.js")); err != nil {
		t.Fatal(err)
	}
	src := "import Credentials from \"callgate/providers/credentials\";\nimport { x } from \"./x.js\";\nexport default { providers: [Credentials({ authorize: () => ({ id: String(x) }) })] };\n"
	if err := os.WriteFile(filepath.Join(escapeLink, "auth.config.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, dir, file string
		line            int
		msg             string
	}{
		{"parent import", filepath.Join(fixtures, "escape-parent/scripts"), "auth.config.js", 2, "outside the scripts directory"},
		{"symlink import", escapeLink, "auth.config.js", 2, "outside the scripts directory"},
		{"bare import", filepath.Join(fixtures, "bare-import"), "auth.config.js", 2, `import "lodash" is not allowed`},
		{"absolute import", filepath.Join(fixtures, "absolute-import"), "auth.config.js", 2, `import "/etc/hostname.js" is not allowed`},
		{"syntax error", filepath.Join(fixtures, "syntax-error"), "auth.config.js", 7, "Unexpected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			se := loadErr(t, tc.dir)
			if se.File != tc.file || se.Line != tc.line || se.Column < 1 || !strings.Contains(se.Message, tc.msg) {
				t.Errorf("got %s:%d:%d %q, want %s:%d:* containing %q", se.File, se.Line, se.Column, se.Message, tc.file, tc.line, tc.msg)
			}
			if se.SourceLine == "" {
				t.Errorf("SourceLine is empty")
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	const head = "import Credentials from \"callgate/providers/credentials\";\nconst ok = Credentials({ authorize: () => null });\n"
	tests := []struct{ name, body, want string }{
		{"not an object", "export default 42;", "default export must be an object, got number"},
		{"no providers", "export default {};", "providers must be an array"},
		{"empty providers", "export default { providers: [] };", "providers must not be empty"},
		{"missing authorize", "export default { providers: [Credentials({})] };", "providers[0].authorize must be a function"},
		{"provider not object", "export default { providers: [ok, 'x'] };", "providers[1] must be a provider object"},
		{"duplicate ids", "export default { providers: [ok, ok] };", `providers[1].id "credentials" is already used`},
		{"oauth without client id", "export default { providers: [{ type: 'oauth', id: 'gh' }] };", `providers[0].clientId is required`},
		{"unknown type", "export default { providers: [{ type: 'saml', id: 's' }] };", `providers[0].type must be "credentials", "email", "passkey", "oauth" or "oidc", got "saml"`},
		{"credential field", "export default { providers: [Credentials({ authorize() {}, credentials: { u: 'x' } })] };", "providers[0].credentials.u must be an object"},
		{"callback not function", "export default { providers: [ok], callbacks: { jwt: true } };", "callbacks.jwt must be a function"},
		{"event not function", "export default { providers: [ok], events: { signIn: 'x' } };", "events.signIn must be a function"},
		{"page not string", "export default { providers: [ok], pages: { signIn: 3 } };", "pages.signIn must be a string"},
		{"page relative", "export default { providers: [ok], pages: { signIn: 'login' } };", "pages.signIn must be a path starting with /"},
		{"strategy", "export default { providers: [ok], session: { strategy: 'cookie' } };", `session.strategy must be "jwt" or "database"`},
		{"maxAge negative", "export default { providers: [ok], session: { maxAge: -1 } };", "session.maxAge must be a positive number"},
		{"updateAge string", "export default { providers: [ok], session: { updateAge: '1d' } };", "session.updateAge must be a number of seconds"},
		{"absoluteMaxAge zero", "export default { providers: [ok], session: { absoluteMaxAge: 0 } };", "session.absoluteMaxAge must be a positive number"},
		{"absoluteMaxAge string", "export default { providers: [ok], session: { absoluteMaxAge: '12h' } };", "session.absoluteMaxAge must be a number of seconds"},
		{"jwt maxAge", "export default { providers: [ok], jwt: { maxAge: 0 } };", "jwt.maxAge must be a positive number"},
		{"secure cookies", "export default { providers: [ok], useSecureCookies: 'yes' };", "useSecureCookies must be a boolean"},
		{"no default", "export const x = 1;", "must `export default` the auth config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(head+tc.body+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			se := loadErr(t, dir)
			if !strings.Contains(se.Message, tc.want) || se.File != "auth.config.js" {
				t.Errorf("got %q in %q, want a message containing %q in auth.config.js", se.Message, se.File, tc.want)
			}
			if strings.Contains(tc.body, "export default") && se.Line != 3 {
				t.Errorf("line: got %d, want 3 (the default export)", se.Line)
			}
		})
	}
}

func TestBehavioursConfig(t *testing.T) {
	l := load(t, filepath.Join(fixtures, "behaviours"), nil)
	cfg := l.gen.Config()
	if cfg.Pages.SignIn != "/login" || cfg.Pages.Error != "https://example.com/auth/error" {
		t.Errorf("pages: got %+v", cfg.Pages)
	}
	if cfg.Session.MaxAge != time.Hour || cfg.Session.UpdateAge != time.Minute || cfg.JWT.MaxAge != 2*time.Hour {
		t.Errorf("ages: got %+v %+v", cfg.Session, cfg.JWT)
	}
	if cfg.Theme.ColorScheme != "dark" || cfg.Theme.BrandColor != "#123456" {
		t.Errorf("theme: got %+v", cfg.Theme)
	}
	if !strings.Contains(l.logs.String(), "somethingElse") {
		t.Errorf("unknown key was not logged: %s", l.logs.String())
	}
}

func TestAuthorizeResults(t *testing.T) {
	st := openStore(t)
	l := load(t, filepath.Join(fixtures, "behaviours"), func(o *Options) {
		o.Users = st
		o.Env = map[string]string{"ALLOWED": "yes"}
	})
	file := filepath.Join(fixtures, "behaviours/auth.config.js")
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	h := string(hash)[4:] // after "$2a$"

	tests := []struct {
		name  string
		creds map[string]any
		want  map[string]any
		// for errors
		kind   ErrorKind
		public bool
		msg    string
		marker string // the source line the error must point at
	}{
		{name: "null", creds: map[string]any{"mode": "null"}},
		{name: "false", creds: map[string]any{"mode": "false"}},
		{name: "undefined", creds: map[string]any{"mode": "undefined"}},
		{name: "true is invalid", creds: map[string]any{"mode": "true"}, kind: KindInvalidResult, msg: "got boolean"},
		{name: "array is invalid", creds: map[string]any{"mode": "array"}, kind: KindInvalidResult, msg: "got array"},
		{name: "throw Error", creds: map[string]any{"mode": "throw"}, kind: KindThrown, public: true, msg: "Custom message", marker: `throw new Error("Custom message")`},
		{name: "throw string", creds: map[string]any{"mode": "throw-string"}, kind: KindThrown, public: true, msg: "Plain string", marker: `throw "Plain string"`},
		{name: "TypeError", creds: map[string]any{"mode": "typeerror"}, kind: KindThrown, msg: "Cannot read property 'field'", marker: "c.missing.field"},
		{name: "async store", creds: map[string]any{"mode": "async", "username": "alice"}, want: map[string]any{"id": "65f0c0ffee0000000000a11c", "name": "Alice", "role": "admin", "extra": "blue"}},
		{name: "async store miss", creds: map[string]any{"mode": "async", "username": "nobody"}},
		{name: "bcrypt 2a", creds: map[string]any{"mode": "bcrypt", "password": "pw", "hash": "$2a$" + h}, want: map[string]any{"id": "bcrypt", "ok": true, "sync": true}},
		{name: "bcrypt 2b", creds: map[string]any{"mode": "bcrypt", "password": "pw", "hash": "$2b$" + h}, want: map[string]any{"id": "bcrypt", "ok": true, "sync": true}},
		{name: "bcrypt 2y", creds: map[string]any{"mode": "bcrypt", "password": "pw", "hash": "$2y$" + h}, want: map[string]any{"id": "bcrypt", "ok": true, "sync": true}},
		{name: "bcrypt wrong", creds: map[string]any{"mode": "bcrypt", "password": "px", "hash": "$2b$" + h}, want: map[string]any{"id": "bcrypt", "ok": false, "sync": false}},
		{name: "bcrypt malformed", creds: map[string]any{"mode": "bcrypt", "password": "pw", "hash": "garbage"}, want: map[string]any{"id": "bcrypt", "ok": false, "sync": false}},
		{name: "bcrypt hash", creds: map[string]any{"mode": "bcrypt-hash", "password": "pw"}, want: map[string]any{
			"id": "hash", "h1ok": true, "h2ok": true, "wrong": false, "rounds": []any{4.0, 5.0, 6.0}, "viaCallback": true}},
		{name: "env", creds: map[string]any{"mode": "env"}, want: map[string]any{"id": "env", "keys": []any{"ALLOWED"}, "value": "yes"}},
		{name: "globals", creds: map[string]any{"mode": "globals"}, want: map[string]any{
			"id": "globals", "require": "undefined", "fs": "undefined", "bridge": "undefined", "fetch": "function",
			"uuid": 36.0, "b64": "aOlsbG8=", "unb64": "héllo", "frozenEnv": true}},
		{name: "unknown query key", creds: map[string]any{"mode": "find-bad"}, kind: KindThrown, msg: `unknown query field "nickname"`},
		{name: "find by id", creds: map[string]any{"mode": "find-id", "id": "65f0c0ffee0000000000a11c"}, want: map[string]any{
			"id": "65f0c0ffee0000000000a11c", "keys": []any{"_id", "username", "name", "email", "role", "password", "team"}}},
		{name: "unhandled rejection", creds: map[string]any{"mode": "unhandled"}, kind: KindThrown, msg: "unhandled promise rejection: nobody listens"},
		{name: "never settles", creds: map[string]any{"mode": "pending"}, kind: KindInternal, msg: "never settles"},
		{name: "deep recursion", creds: map[string]any{"mode": "recurse"}, kind: KindInternal, msg: "maximum call stack size exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := l.gen.Authorize(context.Background(), "credentials", tc.creds, map[string]any{"method": "POST"})
			if tc.kind == 0 {
				if err != nil {
					t.Fatalf("Authorize: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) && !(got == nil && tc.want == nil) {
					t.Errorf("got %#v, want %#v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %v and no error, want %v error", got, tc.kind)
			}
			se := asError(t, err)
			if se.Kind != tc.kind || se.Public != tc.public || !strings.Contains(se.Message, tc.msg) || se.Callback != "authorize" {
				t.Errorf("got %s kind=%v public=%v message %q, want kind=%v public=%v containing %q", se.Callback, se.Kind, se.Public, se.Message, tc.kind, tc.public, tc.msg)
			}
			if tc.marker != "" {
				if want := lineOf(t, file, tc.marker); se.File != "auth.config.js" || se.Line != want || !strings.Contains(se.SourceLine, tc.marker) {
					t.Errorf("position: got %s:%d %q, want auth.config.js:%d", se.File, se.Line, se.SourceLine, want)
				}
			}
		})
	}
}

func TestCallbacks(t *testing.T) {
	l := load(t, filepath.Join(fixtures, "behaviours"), func(o *Options) {
		o.Timeouts = Timeouts{Default: 2 * time.Second, PerCallback: map[string]time.Duration{"session": 200 * time.Millisecond}}
	})
	ctx := context.Background()
	tests := []struct {
		name string
		cb   string
		arg  map[string]any
		want any
		kind ErrorKind
		msg  string
	}{
		{"jwt string", "callbacks.jwt", map[string]any{"token": map[string]any{"mode": "string"}}, nil, KindInvalidResult, "callbacks.jwt must return an object, null or undefined, got string"},
		{"jwt null ends session", "callbacks.jwt", map[string]any{"token": map[string]any{"mode": "null"}}, nil, 0, ""},
		{"jwt keys with undefined session", "callbacks.jwt", map[string]any{"token": map[string]any{"mode": "keys"}, "session": Undefined},
			map[string]any{"keys": []any{"session", "token"}, "hasSession": true, "sessionType": "undefined"}, 0, ""},
		{"jwt JSON shape", "callbacks.jwt", map[string]any{"token": map[string]any{"mode": "shape", "n": 1}},
			map[string]any{"mode": "shape", "n": 1.0, "when": "1970-01-01T00:00:00.000Z", "nested": map[string]any{"n": nil}}, 0, ""},
		{"session async", "callbacks.session", map[string]any{"session": map[string]any{"expires": "x"}, "token": map[string]any{"sub": "42"}},
			map[string]any{"expires": "x", "sub": "42"}, 0, ""},
		{"redirect", "callbacks.redirect", map[string]any{"url": "/dash", "baseUrl": "http://localhost:3000"}, "http://localhost:3000/dash", 0, ""},
		{"redirect number", "callbacks.redirect", map[string]any{"url": "number", "baseUrl": "x"}, nil, KindInvalidResult, "must return a string, got number"},
		{"signIn false", "callbacks.signIn", map[string]any{"user": map[string]any{"id": "deny"}}, false, 0, ""},
		{"signIn string", "callbacks.signIn", map[string]any{"user": map[string]any{"id": "redirect"}}, "/blocked", 0, ""},
		{"signIn true", "callbacks.signIn", map[string]any{"user": map[string]any{"id": "ok"}}, true, 0, ""},
		{"signIn throws", "callbacks.signIn", map[string]any{"user": map[string]any{"id": "throw"}}, nil, KindThrown, "Nope here"},
		{"missing callback", "callbacks.authorized", map[string]any{}, nil, KindInternal, "does not define"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := l.gen.Call(ctx, tc.cb, tc.arg)
			if tc.kind == 0 {
				if err != nil {
					t.Fatalf("Call: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got %#v, want %#v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %#v and no error, want %v", got, tc.kind)
			}
			if se := asError(t, err); se.Kind != tc.kind || !strings.Contains(se.Message, tc.msg) {
				t.Errorf("got kind %v message %q, want %v containing %q", se.Kind, se.Message, tc.kind, tc.msg)
			}
		})
	}

	if err := l.gen.Event(ctx, "events.signIn", map[string]any{"user": map[string]any{"id": "ok"}}); err != nil {
		t.Errorf("event: %v", err)
	}
	err := l.gen.Event(ctx, "events.signIn", map[string]any{"user": map[string]any{"id": "throw"}})
	if se := asError(t, err); se.Kind != KindThrown || se.Public || se.Name != "TypeError" {
		t.Errorf("event TypeError: got %+v, want a non-public TypeError", se)
	}
}

func TestTimeoutThenRecovers(t *testing.T) {
	l := load(t, filepath.Join(fixtures, "behaviours"), func(o *Options) {
		o.PoolSize = 1
		o.Timeouts = Timeouts{Default: 2 * time.Second, PerCallback: map[string]time.Duration{"session": 100 * time.Millisecond}}
	})
	ctx := context.Background()
	start := time.Now()
	_, err := l.gen.Call(ctx, "callbacks.session", map[string]any{"session": map[string]any{"loop": true}, "token": map[string]any{}})
	elapsed := time.Since(start)
	if se := asError(t, err); se.Kind != KindTimeout {
		t.Fatalf("got %v, want a timeout", err)
	}
	if elapsed > time.Second {
		t.Errorf("timeout took %v, want about 100ms", elapsed)
	}
	got, err := l.gen.Call(ctx, "callbacks.session", map[string]any{"session": map[string]any{"ok": true}, "token": map[string]any{"sub": "1"}})
	if err != nil {
		t.Fatalf("call after timeout: %v", err)
	}
	if want := map[string]any{"ok": true, "sub": "1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// A session callback that recurses forever is an error, and the next call works.
	_, err = l.gen.Call(ctx, "callbacks.session", map[string]any{"session": map[string]any{"recurse": true}, "token": map[string]any{}})
	if se := asError(t, err); se.Kind != KindInternal {
		t.Errorf("recursion: got %v, want KindInternal", err)
	}
	if _, err := l.gen.Call(ctx, "callbacks.session", map[string]any{"session": map[string]any{}, "token": map[string]any{}}); err != nil {
		t.Errorf("call after recursion: %v", err)
	}
	// A slow async Go operation (bcrypt at cost 14) is cut off at the deadline too.
	slow := load(t, filepath.Join(fixtures, "behaviours"), func(o *Options) {
		o.Timeouts = Timeouts{Default: 50 * time.Millisecond}
	})
	start = time.Now()
	_, err = slow.gen.Authorize(ctx, "credentials", map[string]any{"mode": "sleep", "password": "x"}, nil)
	if se := asError(t, err); se.Kind != KindTimeout || time.Since(start) > 500*time.Millisecond {
		t.Errorf("slow bcrypt: got %v after %v, want a timeout after about 50ms", err, time.Since(start))
	}
}

func TestArgumentsAreFresh(t *testing.T) {
	l := load(t, filepath.Join(fixtures, "behaviours"), func(o *Options) { o.PoolSize = 1 })
	ctx := context.Background()
	token := map[string]any{"mode": "mutate", "list": []any{"a"}, "gone": "here"}
	arg := map[string]any{"token": token}
	for i := range 3 {
		got, err := l.gen.Call(ctx, "callbacks.jwt", arg)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		want := map[string]any{"mode": "mutate", "list": []any{"a", "more"}, "seen": 1.0}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("call %d: got %v, want %v", i, got, want)
		}
	}
	if want := map[string]any{"mode": "mutate", "list": []any{"a"}, "gone": "here"}; !reflect.DeepEqual(token, want) {
		t.Errorf("Go argument changed: got %v, want %v", token, want)
	}
	if _, ok := arg["extra"]; ok {
		t.Errorf("Go argument map gained a key: %v", arg)
	}
}

// TestThrowLeavesNoTrace: a call that throws after trying to change the global object
// leaves nothing the next call sees (the runtime now survives the throw: reuse_test.go).
func TestThrowLeavesNoTrace(t *testing.T) {
	l := load(t, filepath.Join(fixtures, "behaviours"), func(o *Options) { o.PoolSize = 1 })
	ctx := context.Background()
	if _, err := l.gen.Authorize(ctx, "credentials", map[string]any{"mode": "mutate-global"}, nil); err == nil {
		t.Fatal("mutate-global: want an error")
	}
	got, err := l.gen.Authorize(ctx, "credentials", map[string]any{"mode": "poisoned"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got["poisoned"] != false {
		t.Errorf("a call that threw left its change behind: got %v", got)
	}
	// Clean calls reuse the runtime (module state persists, as in Node).
	var last float64
	for range 3 {
		got, err := l.gen.Authorize(ctx, "credentials", map[string]any{"mode": "counter"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		last = got["calls"].(float64)
	}
	if last != 3 {
		t.Errorf("counter after 3 clean calls: got %v, want 3", last)
	}
}

func TestConsoleCapped(t *testing.T) {
	l := load(t, filepath.Join(fixtures, "behaviours"), nil)
	if _, err := l.gen.Authorize(context.Background(), "credentials", map[string]any{"mode": "log"}, nil); err != nil {
		t.Fatal(err)
	}
	out := l.logs.String()
	if !strings.Contains(out, `msg="line 0 {\"mode\":\"log\"}"`) || !strings.Contains(out, "callback=authorize") || !strings.Contains(out, "generation="+l.gen.Hash()[:12]) {
		t.Errorf("console line missing or untagged:\n%.500s", out)
	}
	if n := strings.Count(out, "console output truncated"); n != 1 {
		t.Errorf("truncation lines: got %d, want 1", n)
	}
	lines := strings.Count(out, "source=console")
	if max := consoleCap / consoleLineCost; lines < 10 || lines > max {
		t.Errorf("console lines logged: got %d, want between 10 and %d", lines, max)
	}
}

// TestJWTCodecOptionsPointToSignedTokens: jwt.encode and jwt.decode are not run (the gateway
// owns token crypto), and the warning says where the signed token they are usually written
// for is configured; other jwt options get the plain warning.
func TestJWTCodecOptionsPointToSignedTokens(t *testing.T) {
	dir := t.TempDir()
	src := `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ authorize: () => null })],
  jwt: { maxAge: 60, encode: async () => "x", decode: async () => null, secret: "s" },
};
`
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	l := load(t, dir, nil)
	logs := l.logs.String()
	for _, name := range []string{"jwt.encode", "jwt.decode"} {
		line := logLineWith(logs, "name="+name)
		if !strings.Contains(line, "session.token.format: jws") {
			t.Errorf("warning for %s: got %q, want it to name session.token.format: jws", name, line)
		}
	}
	if line := logLineWith(logs, "name=jwt.secret"); !strings.Contains(line, "jwt option ignored") || strings.Contains(line, "session.token") {
		t.Errorf("warning for jwt.secret: got %q, want the plain warning", line)
	}
	if l.gen.Config().JWT.MaxAge != time.Minute {
		t.Errorf("jwt.maxAge: got %v, want 1m (still read)", l.gen.Config().JWT.MaxAge)
	}
}

func logLineWith(logs, s string) string {
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}
