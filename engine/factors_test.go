package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"

	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"
)

// factorScripts signs users in with their store password; signIn asks admins for a second
// factor of the kinds FACTOR_KINDS lists; authorized lets /admin through only after a TOTP
// proved within five minutes, by the token's amr and auth_time.
const factorScripts = `import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";

export default {
  providers: [
    Credentials({
      credentials: { username: { label: "Username" }, password: { label: "Password", type: "password" } },
      async authorize(c) {
        const u = await users.findOne({ username: c.username });
        if (!u || !(await bcrypt.compare(c.password, u.password))) return null;
        return { id: u._id, name: u.name, email: u.email, role: u.role };
      },
    }),
  ],
  factors: { totp: { issuer: "Example" }, passkey: true },
  callbacks: {
    signIn({ user }) {
      return user.role === "admin" ? { secondFactor: ["totp"] } : true;
    },
    jwt({ token, user }) {
      if (user) token.role = user.role;
      return token;
    },
    authorized({ request, token }) {
      if (!request.path.startsWith("/admin")) return !!token;
      const fresh = token && token.amr && token.amr.includes("otp") && Date.now() / 1000 - token.auth_time < 300;
      return fresh ? true : { stepUp: { factors: ["totp"] } };
    },
  },
};
`

// factorGateway is a gateway on a fresh embedded store with the factor users.
func factorGateway(t testing.TB, scripts string, sec guard.Options, now func() time.Time) (*gateway, *bolt.Store) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "callgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	seedFactorUsers(t, st)
	return factorGatewayOn(t, st, scripts, sec, now), st
}

// seedFactorUsers stores jatin (admin: the policy asks a TOTP code) and ada (no second
// factor), both with password "pw".
func seedFactorUsers(t testing.TB, st store.Store) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []store.User{
		{ID: "65a1f0c2e4b0a1b2c3d4e5f6", Username: "jatin", Name: "Jatin", Email: "jatin@example.com", Role: "admin", PasswordHash: string(hash)},
		{ID: "65a1f0c2e4b0a1b2c3d4e5f7", Username: "ada", Name: "Ada", Email: "ada@example.com", Role: "user", PasswordHash: string(hash)},
	} {
		if _, err := st.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
}

// factorGatewayOn is a gateway on st running scripts.
func factorGatewayOn(t testing.TB, st store.Store, scripts string, sec guard.Options, now func() time.Time) *gateway {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(scripts), 0o600); err != nil {
		t.Fatal(err)
	}
	return startGateway(t, gatewayConfig{fixture: dir, users: st, store: st, security: sec, now: now})
}

// totpCode is the code an authenticator app shows for secret at t.
func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// jsonBody decodes a JSON reply.
func jsonBody(t testing.TB, r reply) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("reply %d %q: %v", r.status, r.body, err)
	}
	return m
}

// sessionClaims decodes the browser's session token.
func sessionClaims(t *testing.T, g *gateway, b *browser) map[string]any {
	t.Helper()
	raw := b.get("next-auth.session-token")
	if raw == "" {
		t.Fatal("no session cookie")
	}
	claims, err := g.keys.Decode(raw)
	if err != nil {
		t.Fatalf("decode the session token: %v", err)
	}
	return claims
}

func stringList(v any) []string {
	var out []string
	items, _ := v.([]any)
	for _, it := range items {
		s, _ := it.(string)
		out = append(out, s)
	}
	return out
}

// enrolTOTP signs jatin in with the password (the policy parks the sign-in), enrols an
// authenticator app on the challenge's enrolment and confirms it with a code at now:
// that completes the sign-in. It returns the secret and the recovery codes.
func enrolTOTP(t *testing.T, g *gateway, b *browser, now time.Time) (string, []string) {
	t.Helper()
	r := b.signIn("credentials", "jatin", "pw")
	if r.status != http.StatusOK || jsonBody(t, r)["url"] != "http://localhost:3000/api/auth/challenge" {
		t.Fatalf("password sign-in of an admin: got %d %s, want {url} of the challenge page", r.status, r.body)
	}
	if b.get("next-auth.session-token") != "" {
		t.Fatal("the password alone issued a session")
	}
	page := b.getPage("/api/auth/challenge")
	if page.status != http.StatusOK || !strings.Contains(page.body, `id="enrol-totp"`) || strings.Contains(page.body, `id="totp-form"`) {
		t.Fatalf("challenge page of a user with no factor: got %d, want the TOTP enrolment and no code form:\n%s", page.status, page.body)
	}
	if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline'; script") {
		t.Errorf("challenge page CSP: got %q, want script-src 'self' only", csp)
	}
	en := b.postForm("/api/auth/totp/enroll", url.Values{"csrfToken": {b.csrf()}})
	body := jsonBody(t, en)
	secret, _ := body["secret"].(string)
	if en.status != http.StatusOK || len(secret) < 16 || !strings.HasPrefix(body["qr"].(string), "data:image/png;base64,") ||
		!strings.Contains(body["uri"].(string), "issuer=Example") {
		t.Fatalf("POST /totp/enroll: got %d %s", en.status, en.body)
	}
	if r := b.postForm("/api/auth/totp/confirm", url.Values{"csrfToken": {b.csrf()}, "code": {"000000"}}); r.status != http.StatusBadRequest {
		t.Fatalf("confirm with a wrong code: got %d %s, want 400", r.status, r.body)
	}
	conf := b.postForm("/api/auth/totp/confirm", url.Values{"csrfToken": {b.csrf()}, "code": {totpCode(t, secret, now)}})
	cb := jsonBody(t, conf)
	codes := stringList(cb["recoveryCodes"])
	if conf.status != http.StatusOK || len(codes) != 10 || cb["url"] != "http://localhost:3000" {
		t.Fatalf("POST /totp/confirm: got %d %s, want 10 recovery codes and the callback URL", conf.status, conf.body)
	}
	return secret, codes
}

func TestSecondFactorTOTP(t *testing.T) {
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	g, st := factorGateway(t, factorScripts, guard.Options{}, clk.Now)
	ctx := context.Background()
	const jatin = "65a1f0c2e4b0a1b2c3d4e5f6"

	b := g.browser(t)
	secret, codes := enrolTOTP(t, g, b, clk.Now())
	claims := sessionClaims(t, g, b)
	if amr := stringList(claims["amr"]); !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) || claims["auth_time"] != float64(clk.Now().Unix()) {
		t.Errorf("token after password + TOTP: amr %v auth_time %v, want [pwd otp mfa] at %d", claims["amr"], claims["auth_time"], clk.Now().Unix())
	}
	stored, err := st.TOTP(ctx, jatin)
	if err != nil || strings.Contains(string(stored.Sealed), secret) {
		t.Fatalf("stored TOTP: %v; the secret must be sealed, not stored as is", err)
	}

	t.Run("the code of the enrolment cannot sign in again", func(t *testing.T) {
		b := g.browser(t)
		b.signIn("credentials", "jatin", "pw")
		r := b.postForm("/api/auth/challenge/totp", url.Values{"csrfToken": {b.csrf()}, "code": {totpCode(t, secret, clk.Now())}})
		if r.status != http.StatusFound || !strings.Contains(r.header.Get("Location"), "error=SecondFactorFailed") || b.get("next-auth.session-token") != "" {
			t.Fatalf("replayed code: got %d %s, want a redirect back to the challenge with SecondFactorFailed and no session", r.status, r.header.Get("Location"))
		}
	})

	clk.add(30 * time.Second)
	t.Run("a new code signs in, once", func(t *testing.T) {
		b := g.browser(t)
		b.signIn("credentials", "jatin", "pw")
		if page := b.getPage("/api/auth/challenge"); !strings.Contains(page.body, `id="totp-form"`) {
			t.Fatalf("challenge page of an enrolled user: no code form:\n%s", page.body)
		}
		pending := b.get("callgate.second-factor")
		code := totpCode(t, secret, clk.Now())
		r := b.postForm("/api/auth/challenge/totp", url.Values{"csrfToken": {b.csrf()}, "code": {code}})
		if r.status != http.StatusFound || r.header.Get("Location") != "http://localhost:3000" || b.get("next-auth.session-token") == "" {
			t.Fatalf("valid code: got %d %s, want a redirect to the callback URL with a session", r.status, r.header.Get("Location"))
		}
		if b.get("callgate.second-factor") != "" {
			t.Error("the pending sign-in cookie was not deleted")
		}
		// The same pending sign-in, presented again with the next code: its marker is used.
		replay := g.browser(t)
		replay.set("callgate.second-factor", pending)
		clk.add(30 * time.Second)
		r = replay.postForm("/api/auth/challenge/totp", url.Values{"csrfToken": {replay.csrf()}, "code": {totpCode(t, secret, clk.Now())}})
		if r.status != http.StatusFound || !strings.Contains(r.header.Get("Location"), "error=SecondFactorExpired") || replay.get("next-auth.session-token") != "" {
			t.Fatalf("a completed pending sign-in replayed: got %d %s, want a redirect with SecondFactorExpired and no session", r.status, r.header.Get("Location"))
		}
	})

	t.Run("a recovery code works once", func(t *testing.T) {
		for i, want := range []bool{true, false} {
			b := g.browser(t)
			b.signIn("credentials", "jatin", "pw")
			r := b.postForm("/api/auth/challenge/recovery", url.Values{"csrfToken": {b.csrf()}, "code": {strings.ToUpper(codes[0])}})
			if got := b.get("next-auth.session-token") != ""; got != want {
				t.Fatalf("recovery code, use %d: signed in %v (%d %s), want %v", i+1, got, r.status, r.header.Get("Location"), want)
			}
		}
		if n, err := st.CountRecoveryCodes(ctx, jatin); err != nil || n != 9 {
			t.Errorf("recovery codes left: got %d %v, want 9", n, err)
		}
	})

	t.Run("a user the policy does not ask signs in with the password", func(t *testing.T) {
		b := g.browser(t)
		if r := b.signIn("credentials", "ada", "pw"); r.status != http.StatusOK || b.get("next-auth.session-token") == "" {
			t.Fatalf("ada: got %d %s, want a session", r.status, r.body)
		}
		if amr := stringList(sessionClaims(t, g, b)["amr"]); !slices.Equal(amr, []string{"pwd"}) {
			t.Errorf("ada's amr: got %v, want [pwd]", amr)
		}
	})

	t.Run("forged and missing pending sign-ins", func(t *testing.T) {
		b := g.browser(t)
		b.set("callgate.second-factor", "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..forged.forged.forged")
		if r := b.getPage("/api/auth/challenge"); r.status != http.StatusFound || !strings.Contains(r.header.Get("Location"), "/api/auth/signin") {
			t.Errorf("challenge page with a forged pending cookie: got %d %s, want a redirect to sign in", r.status, r.header.Get("Location"))
		}
		r := b.postForm("/api/auth/challenge/totp", url.Values{"csrfToken": {b.csrf()}, "code": {totpCode(t, secret, clk.Now())}})
		if r.status != http.StatusFound || b.get("next-auth.session-token") != "" {
			t.Errorf("code with a forged pending cookie: got %d, want a refusal and no session", r.status)
		}
		if r := b.postForm("/api/auth/challenge/totp", url.Values{"code": {"123456"}}); r.status != http.StatusForbidden {
			t.Errorf("code without a CSRF token: got %d, want 403", r.status)
		}
	})
}

// TestSecondFactorAttemptsLimited: wrong codes count against the user like wrong
// passwords, and once past the limit even the right code is refused until the window ends.
func TestSecondFactorAttemptsLimited(t *testing.T) {
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	g, _ := factorGateway(t, factorScripts, guard.Options{MaxFailuresPerUsername: 3, FailureWindow: time.Hour}, clk.Now)
	secret, _ := enrolTOTP(t, g, g.browser(t), clk.Now())
	clk.add(30 * time.Second)
	b := g.browser(t)
	b.signIn("credentials", "jatin", "pw")
	for i := range 3 {
		r := b.postForm("/api/auth/challenge/totp", url.Values{"csrfToken": {b.csrf()}, "code": {"000000"}})
		if r.status != http.StatusFound || !strings.Contains(r.header.Get("Location"), "SecondFactorFailed") {
			t.Fatalf("wrong code %d: got %d %s", i+1, r.status, r.header.Get("Location"))
		}
	}
	r := b.postForm("/api/auth/challenge/totp", url.Values{"csrfToken": {b.csrf()}, "code": {totpCode(t, secret, clk.Now())}})
	if r.status != http.StatusFound || !strings.Contains(r.header.Get("Location"), "SecondFactorLimit") || b.get("next-auth.session-token") != "" {
		t.Fatalf("right code after 3 wrong ones: got %d %s, want SecondFactorLimit and no session", r.status, r.header.Get("Location"))
	}
}

// TestSecondFactorPolicyWithoutFactors: a signIn that asks for a second factor the
// config does not turn on refuses the sign-in rather than issuing a session with less.
func TestSecondFactorPolicyWithoutFactors(t *testing.T) {
	scripts := strings.Replace(factorScripts, `factors: { totp: { issuer: "Example" }, passkey: true },`, "", 1)
	g, _ := factorGateway(t, scripts, guard.Options{}, time.Now)
	b := g.browser(t)
	r := b.signIn("credentials", "jatin", "pw")
	if b.get("next-auth.session-token") != "" || !strings.Contains(r.body, "error=Configuration") {
		t.Fatalf("secondFactor with factors off: got %d %s, want error=Configuration and no session", r.status, r.body)
	}
	// Without factors, tokens are NextAuth's: no amr, no auth_time.
	b = g.browser(t)
	b.signIn("credentials", "ada", "pw")
	if claims := sessionClaims(t, g, b); claims["amr"] != nil || claims["auth_time"] != nil {
		t.Errorf("token with factors off: got amr %v auth_time %v, want neither", claims["amr"], claims["auth_time"])
	}
}

// TestStepUpThroughTheProxy: a route whose authorized() wants a TOTP proved within five
// minutes sends an older session to the challenge (browsers) or answers RFC 9470's 401
// (API clients); the code proved there records a new authentication on the session, and
// the same request then passes.
func TestStepUpThroughTheProxy(t *testing.T) {
	// The script judges freshness by Date.now(), the real clock: the gateway's clock starts
	// ten minutes back, so the session's auth_time is that old by the script's.
	clk := &clock{now: time.Now().Add(-10 * time.Minute).Truncate(time.Second)}
	g, _ := factorGateway(t, factorScripts, guard.Options{}, clk.Now)
	front := proxyFront(t, g, userUpstream(t).URL)
	b := g.browser(t)
	secret, _ := enrolTOTP(t, g, b, clk.Now())

	get := func(accept string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/admin/users", nil)
		req.Header.Set("Cookie", "next-auth.session-token="+b.get("next-auth.session-token"))
		req.Header.Set("Accept", accept)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	res := get("text/html")
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || loc.Path != "/api/auth/challenge" ||
		!strings.HasSuffix(loc.Query().Get("callbackUrl"), "/admin/users") || loc.Query().Get("factors") != "totp" {
		t.Fatalf("browser with a ten-minute-old authentication: got %d %s, want a redirect to the challenge and back", res.StatusCode, loc)
	}
	if res := get("application/json"); res.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(res.Header.Get("WWW-Authenticate"), `error="insufficient_user_authentication"`) {
		t.Fatalf("API client with an old authentication: got %d %q, want 401 insufficient_user_authentication", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	if page := b.getPage("/api/auth/challenge?" + loc.RawQuery); page.status != http.StatusOK || !strings.Contains(page.body, `id="totp-form"`) {
		t.Fatalf("step-up challenge page: got %d, want the code form:\n%s", page.status, page.body)
	}

	clk.now = time.Now().Truncate(time.Second)
	back := "http://localhost:3000/admin/users"
	r := b.postForm("/api/auth/challenge/totp", url.Values{"csrfToken": {b.csrf()}, "code": {totpCode(t, secret, clk.Now())}, "callbackUrl": {back}, "factors": {"totp"}})
	if r.status != http.StatusFound || r.header.Get("Location") != back {
		t.Fatalf("step-up code: got %d %s, want a redirect back to %s", r.status, r.header.Get("Location"), back)
	}
	claims := sessionClaims(t, g, b)
	if amr := stringList(claims["amr"]); !slices.Equal(amr, []string{"otp"}) || claims["auth_time"] != float64(clk.Now().Unix()) {
		t.Errorf("token after the step-up: amr %v auth_time %v, want [otp] now", claims["amr"], claims["auth_time"])
	}
	if res := get("text/html"); res.StatusCode != http.StatusOK {
		t.Fatalf("the same request after the step-up: got %d, want 200", res.StatusCode)
	}
}

// TestStepUpDatabaseSession: a step-up of a database session replaces the stored session
// (a new id: a copy of the old cookie gains nothing) with one recording the new
// authentication.
func TestStepUpDatabaseSession(t *testing.T) {
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	scripts := strings.Replace(factorScripts, "  callbacks: {", `  session: { strategy: "database" },
  callbacks: {`, 1)
	g, st := factorGateway(t, scripts, guard.Options{}, clk.Now)
	ctx := context.Background()
	b := g.browser(t)
	secret, _ := enrolTOTP(t, g, b, clk.Now())
	first := b.get("next-auth.session-token")
	sess, _, err := st.GetSessionAndUser(ctx, store.SessionID(first))
	if err != nil || !slices.Equal(sess.AMR, []string{"pwd", "otp", "mfa"}) || !sess.AuthTime.Equal(clk.Now()) {
		t.Fatalf("stored session after password + TOTP: %+v %v, want amr [pwd otp mfa] at the sign-in", sess, err)
	}
	clk.add(time.Hour)
	r := b.postForm("/api/auth/challenge/totp", url.Values{"csrfToken": {b.csrf()}, "code": {totpCode(t, secret, clk.Now())}, "callbackUrl": {"/app"}})
	second := b.get("next-auth.session-token")
	if r.status != http.StatusFound || r.header.Get("Location") != "http://localhost:3000/app" || second == "" || second == first {
		t.Fatalf("step-up: got %d %s and cookie %q, want a redirect to /app with a new session", r.status, r.header.Get("Location"), second)
	}
	if _, _, err := st.GetSessionAndUser(ctx, store.SessionID(first)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the session the step-up replaced: got %v, want ErrNotFound", err)
	}
	sess, _, err = st.GetSessionAndUser(ctx, store.SessionID(second))
	if err != nil || !slices.Equal(sess.AMR, []string{"otp"}) || !sess.AuthTime.Equal(clk.Now()) || sess.UserID != "65a1f0c2e4b0a1b2c3d4e5f6" {
		t.Errorf("stored session after the step-up: %+v %v, want jatin's with amr [otp] now", sess, err)
	}
}

// TestFactorsAcrossReplicas: two gateways on one Redis share the enrolments, the used
// TOTP steps and the failed-attempt counters.
func TestFactorsAcrossReplicas(t *testing.T) {
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	stores := redisReplicaStores(t, 2, "callgate-test-factors", "the factor replica test")
	seedFactorUsers(t, stores[0])
	sec := guard.Options{MaxFailuresPerUsername: 2, FailureWindow: time.Hour}
	a := factorGatewayOn(t, stores[0], factorScripts, sec, clk.Now)
	b := factorGatewayOn(t, stores[1], factorScripts, sec, clk.Now)
	secret, _ := enrolTOTP(t, a, a.browser(t), clk.Now())

	// The code A accepted at the enrolment is used on B too.
	onB := b.browser(t)
	onB.signIn("credentials", "jatin", "pw")
	if r := onB.postForm("/api/auth/challenge/totp", url.Values{"csrfToken": {onB.csrf()}, "code": {totpCode(t, secret, clk.Now())}}); !strings.Contains(r.header.Get("Location"), "SecondFactorFailed") {
		t.Fatalf("the enrolment's code on replica B: got %d %s, want it refused as used", r.status, r.header.Get("Location"))
	}
	// One more failure on A reaches the limit of two, counted across both replicas.
	onA := a.browser(t)
	onA.signIn("credentials", "jatin", "pw")
	onA.postForm("/api/auth/challenge/totp", url.Values{"csrfToken": {onA.csrf()}, "code": {"000000"}})
	clk.add(30 * time.Second)
	r := onB.postForm("/api/auth/challenge/totp", url.Values{"csrfToken": {onB.csrf()}, "code": {totpCode(t, secret, clk.Now())}})
	if !strings.Contains(r.header.Get("Location"), "SecondFactorLimit") || onB.get("next-auth.session-token") != "" {
		t.Fatalf("a valid code on B after two failures across A and B: got %d %s, want SecondFactorLimit", r.status, r.header.Get("Location"))
	}
}

// TestFactorScriptRevalidated: the pages' script is revalidated on every use, so a new
// gateway's script takes effect at once; an unchanged one is a 304.
func TestFactorScriptRevalidated(t *testing.T) {
	g, _ := factorGateway(t, factorScripts, guard.Options{}, time.Now)
	b := g.browser(t)
	r := b.getPage("/api/auth/assets/factor.js")
	etag := r.header.Get("ETag")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") || r.header.Get("Cache-Control") != "no-cache" ||
		len(etag) < 10 || !strings.Contains(r.body, "credentials") || len(r.setCookies) != 0 {
		t.Fatalf("GET factor.js: got %d %v, %d bytes, cookies %v", r.status, r.header, len(r.body), r.setCookies)
	}
	req, _ := http.NewRequest(http.MethodGet, g.srv.URL+"/api/auth/assets/factor.js", nil)
	req.Header.Set("If-None-Match", etag)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("GET factor.js with its ETag: got %d, want 304", res.StatusCode)
	}
}

// TestFactorPagesOverridden: pages.challenge and pages.factors send the browser to the
// app's own pages, with the query the built-in page would have read.
func TestFactorPagesOverridden(t *testing.T) {
	scripts := strings.Replace(factorScripts, "  callbacks: {", `  pages: { challenge: "/account/verify", factors: "https://app.example.com/security" },
  callbacks: {`, 1)
	g, _ := factorGateway(t, scripts, guard.Options{}, time.Now)
	b := g.browser(t)
	for _, tt := range []struct{ path, want string }{
		{"/api/auth/challenge?callbackUrl=%2Fadmin&factors=totp", "/account/verify?callbackUrl=%2Fadmin&factors=totp"},
		{"/api/auth/challenge", "/account/verify"},
		{"/api/auth/factors", "https://app.example.com/security"},
	} {
		if r := b.getPage(tt.path); r.status != http.StatusFound || r.header.Get("Location") != tt.want {
			t.Errorf("GET %s: got %d %q, want a redirect to %s", tt.path, r.status, r.header.Get("Location"), tt.want)
		}
	}
}

// TestCoreClaimsNotForgeable: amr and auth_time are the core's. A jwt callback that adds
// them at sign-in, or copies them from an update() the client sent, cannot put them on a
// token that does not hold them.
func TestCoreClaimsNotForgeable(t *testing.T) {
	scripts := strings.Replace(factorScripts, `factors: { totp: { issuer: "Example" }, passkey: true },`, "", 1)
	scripts = strings.Replace(scripts, `    jwt({ token, user }) {
      if (user) token.role = user.role;
      return token;
    },`, `    jwt({ token, user, trigger, session }) {
      if (user) return { ...token, role: user.role, amr: ["hwk", "mfa"], auth_time: 9999999999 };
      if (trigger === "update") return { ...token, ...session };
      return token;
    },`, 1)
	g, _ := factorGateway(t, scripts, guard.Options{}, time.Now)
	b := g.browser(t)
	if r := b.signIn("credentials", "ada", "pw"); r.status != http.StatusOK {
		t.Fatalf("sign in: got %d %s", r.status, r.body)
	}
	if claims := sessionClaims(t, g, b); claims["amr"] != nil || claims["auth_time"] != nil || claims["role"] != "user" {
		t.Fatalf("token after a jwt callback that sets amr at sign-in: %v, want no amr or auth_time (and the role it may set)", claims)
	}
	body := `{"csrfToken":"` + b.csrf() + `","data":{"amr":["hwk","mfa"],"auth_time":9999999999,"theme":"dark"}}`
	if r := b.do(http.MethodPost, "/api/auth/session", body, "application/json"); r.status != http.StatusOK {
		t.Fatalf("update(): got %d %s", r.status, r.body)
	}
	claims := sessionClaims(t, g, b)
	if claims["amr"] != nil || claims["auth_time"] != nil || claims["theme"] != "dark" {
		t.Fatalf("token after an update() carrying amr: %v, want no amr or auth_time (and the update's other data)", claims)
	}
}

// TestEnrolmentNeedsNoFactorAtAll: trust on first use is for a user with no factor of any
// kind. One with a passkey, asked for a TOTP code by the policy, cannot enrol an
// authenticator app of an attacker's during the pending sign-in; and a password sign-in,
// however recent, cannot remove the factors of a user who has one.
func TestEnrolmentNeedsNoFactorAtAll(t *testing.T) {
	g, st := factorGateway(t, factorScripts, guard.Options{}, time.Now)
	ctx := context.Background()
	for _, id := range []string{"65a1f0c2e4b0a1b2c3d4e5f6", "65a1f0c2e4b0a1b2c3d4e5f7"} {
		if err := st.CreatePasskey(ctx, store.Passkey{ID: []byte("key-of-" + id), UserID: id, Name: "YubiKey", PublicKey: []byte{1, 2, 3}}); err != nil {
			t.Fatal(err)
		}
	}
	b := g.browser(t)
	b.signIn("credentials", "jatin", "pw")
	if page := b.getPage("/api/auth/challenge"); strings.Contains(page.body, `id="enrol-totp"`) {
		t.Errorf("the challenge page offers enrolment to a user who has a passkey:\n%s", page.body)
	}
	if r := b.postForm("/api/auth/totp/enroll", url.Values{"csrfToken": {b.csrf()}}); r.status != http.StatusForbidden {
		t.Fatalf("TOTP enrolment during the pending sign-in of a user with a passkey: got %d %s, want 403", r.status, r.body)
	}
	if _, err := st.TOTP(ctx, "65a1f0c2e4b0a1b2c3d4e5f6"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a TOTP enrolment was stored: %v", err)
	}

	// ada's policy asks nothing: her password signs her in, just now, but proved no factor.
	ada := g.browser(t)
	ada.signIn("credentials", "ada", "pw")
	r := ada.postForm("/api/auth/factors/remove", url.Values{"csrfToken": {ada.csrf()}, "type": {"passkey"}, "id": {"a2V5LW9mLTY1YTFmMGMyZTRiMGExYjJjM2Q0ZTVmNw"}})
	if r.status != http.StatusForbidden || jsonBody(t, r)["error"] != "reauthenticate" {
		t.Fatalf("removing a passkey after a password-only sign-in: got %d %s, want 403 reauthenticate", r.status, r.body)
	}
	if keys, _ := st.ListPasskeys(ctx, "65a1f0c2e4b0a1b2c3d4e5f7"); len(keys) != 1 {
		t.Errorf("ada's passkeys after the refused removal: %d, want 1", len(keys))
	}
}

// TestLinkedByEmailAsksThePolicyAgain: an OAuth sign-in that account linking by e-mail
// attaches to an existing store user is put to the signIn policy again with that user,
// whom signIn did not see the first time: a provider account cannot stand in for the
// second factor the user's role needs.
func TestLinkedByEmailAsksThePolicyAgain(t *testing.T) {
	iss := startTestIssuer(t, time.Now, time.Hour)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "callgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateUser(context.Background(), store.User{Username: "grace", Name: "Grace", Email: "grace@example.com", Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := fmt.Sprintf(`import OIDC from "callgate/providers/oidc";
export default {
  providers: [OIDC({ id: "test", issuer: %q, clientId: %q, clientSecret: %q, allowDangerousEmailAccountLinking: true })],
  factors: { totp: true },
  callbacks: {
    signIn({ user }) {
      console.log("signIn sees role " + user.role);
      return user.role === "admin" ? { secondFactor: ["totp"] } : true;
    },
  },
};
`, iss.issuer(), iss.clientID, iss.clientSecret)
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gatewayConfig{fixture: dir, url: gatewayOrigin, store: st, users: st})
	b := g.browser(t)
	r := b.getPage(authorize(t, b, "test"))
	if loc := r.header.Get("Location"); r.status != http.StatusFound || loc != gatewayOrigin+"/api/auth/challenge" || b.get("next-auth.session-token") != "" {
		t.Fatalf("OAuth sign-in linked by e-mail to an admin: got %d %q and session cookie %v, want the challenge and no session", r.status, loc, b.get("next-auth.session-token") != "")
	}
	if logs := g.logs.String(); !strings.Contains(logs, "signIn sees role undefined") || !strings.Contains(logs, "signIn sees role admin") {
		t.Errorf("signIn did not see first the profile user, then the linked admin; log:\n%s", logs)
	}
}
