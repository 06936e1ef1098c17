package engine_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/internal/testkit/softauthn"
	"github.com/callgate/callgate/store"
)

// passkeyOrigin is the gateway's public origin: WebAuthn needs a domain name for the RP
// ID, so the tests' gateway is http://localhost:3000 (browsers treat localhost as secure).
const passkeyOrigin = "http://localhost:3000"

// passkeyScripts sign users in with their store password; signIn asks admins who signed
// in with a password for a passkey as their second factor. The factor events log a
// marker line for the test to find.
const passkeyScripts = `import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";
/*PASSKEY_IMPORT*/

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
    /*PASSKEY_PROVIDER*/
  ],
  factors: { passkey: true },
  callbacks: {
    signIn({ user, account }) {
      return user.role === "admin" && account.provider === "credentials" ? { secondFactor: ["passkey"] } : true;
    },
  },
  events: {
    enrollFactor({ user, factor }) { console.log("factor-event enroll " + user.id + " " + factor.type + " " + factor.name); },
    removeFactor({ user, factor }) { console.log("factor-event remove " + user.id + " " + factor.type + " " + factor.id); },
  },
};
`

// withPasskeyProvider is passkeyScripts with a Passkey provider: passwordless sign-in.
func withPasskeyProvider(scripts string) string {
	scripts = strings.Replace(scripts, "/*PASSKEY_IMPORT*/", `import Passkey from "callgate/providers/passkey";`, 1)
	return strings.Replace(scripts, "/*PASSKEY_PROVIDER*/", "Passkey(),", 1)
}

const (
	jatinID = "65a1f0c2e4b0a1b2c3d4e5f6"
	adaID   = "65a1f0c2e4b0a1b2c3d4e5f7"
)

// passkeyClient is a browser with the passkey steps of the factor routes.
type passkeyClient struct {
	*browser
	t testing.TB
}

func (g *gateway) passkeyClient(t testing.TB) *passkeyClient {
	return &passkeyClient{browser: g.browser(t), t: t}
}

// pendingSignIn signs jatin in with the password: the policy parks the sign-in.
func (c *passkeyClient) pendingSignIn() *passkeyClient {
	c.t.Helper()
	r := c.signIn("credentials", "jatin", "pw")
	if r.status != http.StatusOK || jsonBody(c.t, r)["url"] != passkeyOrigin+"/api/auth/challenge" {
		c.t.Fatalf("password sign-in of an admin: got %d %s, want {url} of the challenge page", r.status, r.body)
	}
	if c.get("next-auth.session-token") != "" {
		c.t.Fatal("the password alone issued a session")
	}
	return c
}

// options starts a ceremony (registration-options, or authentication-options for a
// purpose) and returns its options JSON, failing unless it is 200.
func (c *passkeyClient) options(route string, form url.Values) []byte {
	c.t.Helper()
	form.Set("csrfToken", c.csrf())
	r := c.postForm("/api/auth/webauthn/"+route, form)
	if r.status != http.StatusOK || !strings.HasPrefix(r.body, `{"publicKey":`) || c.get("callgate.webauthn") == "" {
		c.t.Fatalf("POST /webauthn/%s: got %d %s, want {publicKey} and a ceremony cookie", route, r.status, r.body)
	}
	return []byte(r.body)
}

func (c *passkeyClient) registrationOptions() []byte {
	return c.options("registration-options", url.Values{})
}

func (c *passkeyClient) authenticationOptions(purpose string) []byte {
	return c.options("authentication-options", url.Values{"purpose": {purpose}})
}

func (c *passkeyClient) register(name string, response []byte) reply {
	c.t.Helper()
	return c.postForm("/api/auth/webauthn/register", url.Values{"csrfToken": {c.csrf()}, "name": {name}, "response": {string(response)}})
}

func (c *passkeyClient) prove(response []byte, extra ...string) reply {
	c.t.Helper()
	form := url.Values{"csrfToken": {c.csrf()}, "response": {string(response)}, "json": {"true"}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return c.postForm("/api/auth/challenge/passkey", form)
}

func (c *passkeyClient) manage(action string, form url.Values) reply {
	c.t.Helper()
	form.Set("csrfToken", c.csrf())
	return c.postForm("/api/auth/factors/"+action, form)
}

// passkeyState is what the store holds of a user's passkeys, to compare before and after.
type passkeyState struct {
	count     int
	signCount uint32
	lastUsed  time.Time
	name      string
}

func storedPasskeys(t *testing.T, st store.Store, userID string) passkeyState {
	t.Helper()
	keys, err := st.ListPasskeys(context.Background(), userID)
	if err != nil {
		t.Fatalf("list passkeys: %v", err)
	}
	s := passkeyState{count: len(keys)}
	if len(keys) > 0 {
		s.signCount, s.lastUsed, s.name = keys[0].SignCount, keys[0].LastUsedAt, keys[0].Name
	}
	return s
}

// TestPasskeys runs the passkey routes through the HTTP engine on the embedded store: a
// passkey enrolled as the second factor of a password sign-in, then proved by it in a new
// browser, passwordless sign-in, every kind of forged or misplaced answer refused with
// nothing stored, and removal and renaming, which need a recent authentication.
func TestPasskeys(t *testing.T) {
	clk := &clock{now: time.Now().Truncate(time.Second)}
	g, st := factorGateway(t, passkeyScripts, guard.Options{}, clk.Now)
	ctx := context.Background()
	key := softauthn.New(t, passkeyOrigin)
	credID := softauthn.B64.EncodeToString(key.CredentialID())

	// Enrolment on the challenge: the admin has no passkey, so registering one completes
	// the sign-in (trust on first use of the password just proved).
	owner := g.passkeyClient(t).pendingSignIn()
	if page := owner.getPage("/api/auth/challenge"); page.status != http.StatusOK || !strings.Contains(page.body, `id="enrol-passkey"`) || strings.Contains(page.body, `id="passkey-button"`) {
		t.Fatalf("challenge page of an admin with no passkey: got %d, want the passkey enrolment:\n%s", page.status, page.body)
	}
	reg := owner.register("Laptop", key.Create(t, owner.registrationOptions()).Response(t))
	body := jsonBody(t, reg)
	pk, _ := body["passkey"].(map[string]any)
	if reg.status != http.StatusOK || pk["id"] != credID || pk["name"] != "Laptop" || body["url"] != passkeyOrigin {
		t.Fatalf("POST /webauthn/register: got %d %s, want the passkey {id, name} and the callback URL", reg.status, reg.body)
	}
	if owner.get("callgate.webauthn") != "" || owner.get("callgate.second-factor") != "" {
		t.Error("the ceremony or pending sign-in cookie outlived the registration")
	}
	claims := sessionClaims(t, g, owner.browser)
	if amr := stringList(claims["amr"]); !slices.Equal(amr, []string{"pwd", "hwk", "mfa"}) || claims["auth_time"] != float64(clk.Now().Unix()) {
		t.Errorf("token after password + passkey enrolment: amr %v auth_time %v, want [pwd hwk mfa] now", claims["amr"], claims["auth_time"])
	}
	// Emit runs before the answer is written: the line is in the log by now.
	if logs := g.logs.String(); !strings.Contains(logs, "factor-event enroll "+jatinID+" passkey Laptop") {
		t.Errorf("events.enrollFactor did not run:\n%s", logs)
	}
	enrolled, err := st.Passkey(ctx, key.CredentialID())
	if err != nil || enrolled.UserID != jatinID || enrolled.Name != "Laptop" || !enrolled.LastUsedAt.IsZero() || !enrolled.CreatedAt.Equal(clk.Now()) {
		t.Fatalf("stored passkey after enrolment: %+v %v", enrolled, err)
	}

	// The second factor in a new browser: password, then the passkey. The subtests below
	// build on the counter this leaves stored.
	{
		clk.add(time.Minute)
		c := g.passkeyClient(t).pendingSignIn()
		if page := c.getPage("/api/auth/challenge"); page.status != http.StatusOK || !strings.Contains(page.body, `id="passkey-button"`) ||
			strings.Contains(page.body, `id="enrol-passkey"`) || strings.Contains(page.body, `id="totp-form"`) {
			t.Fatalf("challenge page of a user with a passkey: got %d, want its passkey button alone:\n%s", page.status, page.body)
		}
		r := c.prove(key.Get(t, c.authenticationOptions("challenge")).Response(t))
		if r.status != http.StatusOK || jsonBody(t, r)["url"] != passkeyOrigin || c.get("next-auth.session-token") == "" {
			t.Fatalf("POST /challenge/passkey: got %d %s, want {url} of the callback and a session", r.status, r.body)
		}
		claims := sessionClaims(t, g, c.browser)
		if amr := stringList(claims["amr"]); !slices.Equal(amr, []string{"pwd", "hwk", "mfa"}) || claims["auth_time"] != float64(clk.Now().Unix()) {
			t.Errorf("token after password + passkey: amr %v auth_time %v, want [pwd hwk mfa] now", claims["amr"], claims["auth_time"])
		}
		used, err := st.Passkey(ctx, key.CredentialID())
		if err != nil || !used.LastUsedAt.Equal(clk.Now()) || !used.LastUsedAt.After(enrolled.CreatedAt) || used.SignCount != key.Counter {
			t.Errorf("stored passkey after use: last used %v, counter %d (%v); want %v and %d", used.LastUsedAt, used.SignCount, err, clk.Now(), key.Counter)
		}
	}

	t.Run("passwordless", func(t *testing.T) {
		clk.add(time.Minute)
		pg := factorGatewayOn(t, st, withPasskeyProvider(passkeyScripts), guard.Options{}, clk.Now)
		c := pg.passkeyClient(t)
		as := key.Get(t, c.authenticationOptions("signin"))
		if !slices.Equal(as.UserHandle, []byte(jatinID)) {
			t.Fatalf("the discoverable credential's user handle: %q, want jatin's id", as.UserHandle)
		}
		r := c.postForm("/api/auth/callback/passkey", url.Values{"csrfToken": {c.csrf()}, "response": {string(as.Response(t))}, "json": {"true"}})
		if r.status != http.StatusOK || jsonBody(t, r)["url"] != passkeyOrigin || c.get("next-auth.session-token") == "" {
			t.Fatalf("POST /callback/passkey: got %d %s, want {url} and a session", r.status, r.body)
		}
		claims := sessionClaims(t, pg, c.browser)
		// A user-verified passkey is the key and the PIN or biometric that unlocked it.
		if amr := stringList(claims["amr"]); !slices.Equal(amr, []string{"hwk", "mfa"}) || claims["sub"] != jatinID {
			t.Errorf("token after a passwordless sign-in: sub %v amr %v, want jatin with [hwk mfa]", claims["sub"], claims["amr"])
		}
		if s := storedPasskeys(t, st, jatinID); s.signCount != key.Counter || !s.lastUsed.Equal(clk.Now()) {
			t.Errorf("stored passkey after the passwordless sign-in: %+v, want counter %d used now", s, key.Counter)
		}
	})

	t.Run("passwordless without user verification is refused", func(t *testing.T) {
		clk.add(time.Minute)
		pg := factorGatewayOn(t, st, withPasskeyProvider(passkeyScripts), guard.Options{}, clk.Now)
		c := pg.passkeyClient(t)
		before := storedPasskeys(t, st, jatinID)
		as := key.Get(t, c.authenticationOptions("signin"))
		as.Flags &^= softauthn.FlagUV // touched, but no PIN or biometric
		r := c.postForm("/api/auth/callback/passkey", url.Values{"csrfToken": {c.csrf()}, "response": {string(as.Response(t))}, "json": {"true"}})
		if r.status != http.StatusUnauthorized || c.get("next-auth.session-token") != "" {
			t.Fatalf("passwordless sign-in with UP and no UV: got %d %s, want 401 and no session", r.status, r.body)
		}
		if after := storedPasskeys(t, st, jatinID); after != before {
			t.Errorf("the refused sign-in changed the stored passkey: %+v, was %+v", after, before)
		}
	})

	// Ada signs in with her password (the policy asks her nothing) and registers a passkey
	// of her own, so that a ceremony of another user's exists to misplace.
	ada := g.passkeyClient(t)
	if r := ada.signIn("credentials", "ada", "pw"); r.status != http.StatusOK || ada.get("next-auth.session-token") == "" {
		t.Fatalf("ada's sign-in: got %d %s", r.status, r.body)
	}
	adaKey := softauthn.New(t, passkeyOrigin)
	if r := ada.register("Phone", adaKey.Create(t, ada.registrationOptions()).Response(t)); r.status != http.StatusOK {
		t.Fatalf("ada's registration: got %d %s", r.status, r.body)
	}

	t.Run("bad input", func(t *testing.T) {
		type attempt struct {
			c        *passkeyClient
			post     func() reply
			noCookie bool // c must not end up with a session cookie (false: c had one before)
		}
		// challenge is a pending sign-in with an assertion of its own ceremony, which edit
		// may change.
		challenge := func(t *testing.T, edit func(softauthn.Assertion) softauthn.Assertion) attempt {
			c := g.passkeyClient(t).pendingSignIn()
			response := edit(key.Get(t, c.authenticationOptions("challenge"))).Response(t)
			return attempt{c: c, post: func() reply { return c.prove(response) }, noCookie: true}
		}
		refusedChallenge := func(t *testing.T, r reply) {
			t.Helper()
			u, _ := url.Parse(stringOf(jsonBody(t, r)["url"]))
			if r.status != http.StatusUnauthorized || u == nil || u.Path != "/api/auth/challenge" || u.Query().Get("error") != "SecondFactorFailed" {
				t.Errorf("got %d %s, want 401 {url} of the challenge with error=SecondFactorFailed", r.status, r.body)
			}
		}
		refusedJSON := func(status int, code string) func(*testing.T, reply) {
			return func(t *testing.T, r reply) {
				t.Helper()
				if got := jsonBody(t, r)["error"]; r.status != status || got != code {
					t.Errorf("got %d %s, want %d {error: %q}", r.status, r.body, status, code)
				}
			}
		}
		cases := []struct {
			name   string
			setup  func(t *testing.T) attempt
			want   func(*testing.T, reply)
			reason string // what the gateway log gives as the reason, when it says one
		}{
			{
				name: "signature by another key",
				setup: func(t *testing.T) attempt {
					return challenge(t, func(as softauthn.Assertion) softauthn.Assertion { return as.SignedBy(softauthn.NewKey(t)) })
				},
				want: refusedChallenge, reason: "signature",
			},
			{
				name: "wrong origin",
				setup: func(t *testing.T) attempt {
					return challenge(t, func(as softauthn.Assertion) softauthn.Assertion { return as.WithOrigin("http://evil.localhost:3000") })
				},
				want: refusedChallenge, reason: "origin",
			},
			{
				name: "wrong RP ID hash",
				setup: func(t *testing.T) attempt {
					return challenge(t, func(as softauthn.Assertion) softauthn.Assertion { return as.WithRPID("evil.test") })
				},
				want: refusedChallenge, reason: "RP Hash",
			},
			{
				name: "counter not above the stored one",
				setup: func(t *testing.T) attempt {
					stored := storedPasskeys(t, st, jatinID).signCount
					if stored == 0 {
						// Both counters zero is an authenticator that keeps none (WebAuthn
						// §6.1.1), which the store accepts: a regression needs one stored.
						t.Fatal("no signature counter stored yet")
					}
					return challenge(t, func(as softauthn.Assertion) softauthn.Assertion { return as.WithCounter(stored) })
				},
				want: refusedChallenge, reason: "counter did not increase",
			},
			{
				name: "no user presence",
				setup: func(t *testing.T) attempt {
					return challenge(t, func(as softauthn.Assertion) softauthn.Assertion { return as.WithoutUserPresence() })
				},
				want: refusedChallenge, reason: "User presence",
			},
			{
				name: "malformed JSON",
				setup: func(t *testing.T) attempt {
					c := g.passkeyClient(t).pendingSignIn()
					c.authenticationOptions("challenge")
					return attempt{c: c, post: func() reply { return c.prove([]byte(`{"id":`)) }, noCookie: true}
				},
				want: refusedChallenge, reason: "malformed",
			},
			{
				name: "replayed assertion",
				setup: func(t *testing.T) attempt {
					first := g.passkeyClient(t).pendingSignIn()
					options := first.authenticationOptions("challenge")
					ceremony := first.get("callgate.webauthn")
					response := key.Get(t, options).Response(t)
					if r := first.prove(response); r.status != http.StatusOK {
						t.Fatalf("the first post of the assertion: got %d %s, want it accepted", r.status, r.body)
					}
					// The same ceremony cookie and answer, in the same browser (its CSRF
					// token) at the same step again.
					c := g.passkeyClient(t)
					c.set("next-auth.csrf-token", first.get("next-auth.csrf-token"))
					c.pendingSignIn()
					c.set("callgate.webauthn", ceremony)
					return attempt{c: c, post: func() reply { return c.prove(response) }, noCookie: true}
				},
				want: refusedChallenge, reason: "the WebAuthn ceremony was used or has expired",
			},
			{
				name: "a ceremony cookie carried to another browser",
				setup: func(t *testing.T) attempt {
					x := g.passkeyClient(t).pendingSignIn()
					options := x.authenticationOptions("challenge")
					response := key.Get(t, options).Response(t)
					y := g.passkeyClient(t).pendingSignIn()
					y.set("callgate.webauthn", x.get("callgate.webauthn"))
					return attempt{c: y, post: func() reply { return y.prove(response) }, noCookie: true}
				},
				want: refusedChallenge, reason: "the WebAuthn ceremony was started by another browser",
			},
			{
				name: "assertion posted with another browser's ceremony",
				setup: func(t *testing.T) attempt {
					x := g.passkeyClient(t).pendingSignIn()
					response := key.Get(t, x.authenticationOptions("challenge")).Response(t)
					y := g.passkeyClient(t).pendingSignIn()
					y.authenticationOptions("challenge")
					return attempt{c: y, post: func() reply { return y.prove(response) }, noCookie: true}
				},
				want: refusedChallenge, reason: "challenge",
			},
			{
				name: "assertion posted from a browser with no ceremony",
				setup: func(t *testing.T) attempt {
					x := g.passkeyClient(t).pendingSignIn()
					response := key.Get(t, x.authenticationOptions("challenge")).Response(t)
					y := g.passkeyClient(t).pendingSignIn()
					return attempt{c: y, post: func() reply { return y.prove(response) }, noCookie: true}
				},
				want: refusedChallenge, reason: "no WebAuthn ceremony",
			},
			{
				name: "ceremony cookie of another user's session",
				setup: func(t *testing.T) attempt {
					options := ada.authenticationOptions("challenge")
					response := key.Get(t, options).Response(t)
					c := g.passkeyClient(t).pendingSignIn()
					c.set("callgate.webauthn", ada.get("callgate.webauthn"))
					return attempt{c: c, post: func() reply { return c.prove(response) }, noCookie: true}
				},
				want: refusedChallenge, reason: "the WebAuthn ceremony belongs to another purpose or user",
			},
			{
				name: "registration response posted to an authentication ceremony",
				setup: func(t *testing.T) attempt {
					c := g.passkeyClient(t).pendingSignIn()
					response := softauthn.New(t, passkeyOrigin).Create(t, c.authenticationOptions("challenge")).Response(t)
					return attempt{c: c, post: func() reply { return c.prove(response) }, noCookie: true}
				},
				want: refusedChallenge, reason: "malformed",
			},
			{
				name: "registration finished with an authentication ceremony",
				setup: func(t *testing.T) attempt {
					response := softauthn.New(t, passkeyOrigin).Create(t, owner.authenticationOptions("challenge")).Response(t)
					return attempt{c: owner, post: func() reply { return owner.register("Other", response) }}
				},
				want: refusedJSON(http.StatusBadRequest, "ceremony"),
			},
			{
				name: "malformed CBOR in the attestation",
				setup: func(t *testing.T) attempt {
					at := softauthn.New(t, passkeyOrigin).Create(t, owner.registrationOptions())
					at.AttestationObject = []byte{0xa3, 0x63, 'f', 'm', 't', 0x64, 'n', 'o'} // a map cut short
					response := at.Response(t)
					return attempt{c: owner, post: func() reply { return owner.register("Broken", response) }}
				},
				want: refusedJSON(http.StatusBadRequest, "registration"),
			},
			{
				name: "no CSRF token",
				setup: func(t *testing.T) attempt {
					c := g.passkeyClient(t).pendingSignIn()
					response := key.Get(t, c.authenticationOptions("challenge")).Response(t)
					return attempt{c: c, post: func() reply {
						return c.postForm("/api/auth/challenge/passkey", url.Values{"response": {string(response)}, "json": {"true"}})
					}, noCookie: true}
				},
				want: refusedJSON(http.StatusForbidden, "csrf"),
			},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				a := tc.setup(t)
				before := storedPasskeys(t, st, jatinID)
				beforeAda := storedPasskeys(t, st, adaID)
				session := a.c.get("next-auth.session-token")
				logged := len(g.logs.String())
				r := a.post()
				tc.want(t, r)
				if after := storedPasskeys(t, st, jatinID); after != before {
					t.Errorf("the store changed: %+v, was %+v", after, before)
				}
				if after := storedPasskeys(t, st, adaID); after != beforeAda {
					t.Errorf("ada's passkeys changed: %+v, was %+v", after, beforeAda)
				}
				if got := a.c.get("next-auth.session-token"); got != session || (a.noCookie && got != "") || r.cookie("next-auth.session-token") != "" {
					t.Errorf("the refusal set a session cookie: %q", r.cookie("next-auth.session-token"))
				}
				if tc.reason != "" {
					if logs := g.logs.String()[logged:]; !strings.Contains(logs, tc.reason) {
						t.Errorf("the gateway log does not give the reason %q:\n%s", tc.reason, logs)
					}
				}
			})
		}
	})

	t.Run("removal and rename need a recent authentication", func(t *testing.T) {
		before := storedPasskeys(t, st, jatinID)
		clk.add(11 * time.Minute) // past factors.recentAuthentication (10 minutes by default)
		r := owner.manage("remove", url.Values{"type": {"passkey"}, "id": {credID}})
		body := jsonBody(t, r)
		u, _ := url.Parse(stringOf(body["url"]))
		if r.status != http.StatusForbidden || body["error"] != "reauthenticate" || u == nil || u.Path != "/api/auth/challenge" ||
			u.Query().Get("callbackUrl") != passkeyOrigin+"/api/auth/factors" {
			t.Fatalf("remove with an old authentication: got %d %s, want 403 reauthenticate with the challenge URL back to the factors page", r.status, r.body)
		}
		if r := owner.manage("rename", url.Values{"id": {credID}, "name": {"Work laptop"}}); r.status != http.StatusForbidden || jsonBody(t, r)["error"] != "reauthenticate" {
			t.Fatalf("rename with an old authentication: got %d %s, want 403 reauthenticate", r.status, r.body)
		}
		if after := storedPasskeys(t, st, jatinID); after != before {
			t.Fatalf("the refused removal or rename changed the store: %+v, was %+v", after, before)
		}

		// The challenge the answer points at: a step-up with the passkey records a new
		// authentication, and the removal then goes through.
		back := passkeyOrigin + "/api/auth/factors"
		step := owner.prove(key.Get(t, owner.authenticationOptions("challenge")).Response(t), "callbackUrl", back)
		if step.status != http.StatusOK || jsonBody(t, step)["url"] != back {
			t.Fatalf("step-up with the passkey: got %d %s, want {url} back to the factors page", step.status, step.body)
		}
		if claims := sessionClaims(t, g, owner.browser); !slices.Equal(stringList(claims["amr"]), []string{"hwk"}) || claims["auth_time"] != float64(clk.Now().Unix()) {
			t.Errorf("token after the step-up: amr %v auth_time %v, want [hwk] now", claims["amr"], claims["auth_time"])
		}
		if r := owner.manage("remove", url.Values{"type": {"passkey"}, "id": {softauthn.B64.EncodeToString([]byte("not a passkey of mine"))}}); r.status != http.StatusNotFound || jsonBody(t, r)["error"] != "not_found" {
			t.Errorf("remove an unknown passkey: got %d %s, want 404 not_found", r.status, r.body)
		}
		adaCred := softauthn.B64.EncodeToString(adaKey.CredentialID())
		if r := owner.manage("remove", url.Values{"type": {"passkey"}, "id": {adaCred}}); r.status != http.StatusNotFound {
			t.Errorf("remove another user's passkey: got %d %s, want 404", r.status, r.body)
		}
		if s := storedPasskeys(t, st, adaID); s.count != 1 {
			t.Errorf("ada's passkeys after jatin tried to remove hers: %d, want 1", s.count)
		}
		renames := []struct {
			id, name string
			status   int
			code     string // the error, or "" for the renamed passkey
		}{
			{credID, "  Work laptop ", http.StatusOK, ""},
			{credID, "Tab\there", http.StatusBadRequest, "name"},
			{credID, strings.Repeat("n", 65), http.StatusBadRequest, "name"},
			{"not base64url!", "Work laptop", http.StatusBadRequest, "id"},
			{adaCred, "Mine now", http.StatusNotFound, "not_found"},
		}
		for _, rn := range renames {
			r := owner.manage("rename", url.Values{"id": {rn.id}, "name": {rn.name}})
			body := jsonBody(t, r)
			if rn.code == "" {
				pk, _ := body["passkey"].(map[string]any)
				if r.status != rn.status || pk["id"] != rn.id || pk["name"] != "Work laptop" {
					t.Errorf("rename to %q: got %d %s, want the passkey named \"Work laptop\"", rn.name, r.status, r.body)
				}
			} else if r.status != rn.status || body["error"] != rn.code {
				t.Errorf("rename %q to %q: got %d %s, want %d {error: %q}", rn.id, rn.name, r.status, r.body, rn.status, rn.code)
			}
		}
		if s := storedPasskeys(t, st, jatinID); s.name != "Work laptop" {
			t.Errorf("stored name after the renames: %q, want \"Work laptop\"", s.name)
		}
		if s := storedPasskeys(t, st, adaID); s.name != "Phone" {
			t.Errorf("ada's passkey after jatin tried to rename it: %q, want \"Phone\"", s.name)
		}
		r = owner.manage("remove", url.Values{"type": {"passkey"}, "id": {credID}})
		if r.status != http.StatusOK || jsonBody(t, r)["ok"] != true {
			t.Fatalf("remove after the step-up: got %d %s, want {ok: true}", r.status, r.body)
		}
		if s := storedPasskeys(t, st, jatinID); s.count != 0 {
			t.Errorf("passkeys after the removal: %d, want 0", s.count)
		}
		if logs := g.logs.String(); !strings.Contains(logs, "factor-event remove "+jatinID+" passkey "+credID) {
			t.Errorf("events.removeFactor did not run:\n%s", logs)
		}
	})
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}

// BenchmarkPasskeySignIn is the server side of one second-factor passkey authentication:
// POST /api/auth/challenge/passkey through the engine's handler (no network), which opens
// the pending sign-in and the ceremony cookies, consumes the ceremony's single-use
// marker, lists the user's passkeys, verifies the assertion (client data, RP ID hash,
// flags, ES256 signature), records the counter, consumes the pending sign-in's marker
// and issues the session. Each iteration needs a sign-in waiting for its second factor
// and a ceremony of its own, and the browser's signing is the client's cost: those run
// with the timer stopped. The store is the embedded one, which syncs every write to
// disk: most of the time is those writes.
func BenchmarkPasskeySignIn(b *testing.B) {
	clk := &clock{now: time.Now().Truncate(time.Second)}
	g, _ := factorGateway(b, passkeyScripts, guard.Options{}, clk.Now)
	key := softauthn.New(b, passkeyOrigin)
	owner := g.passkeyClient(b).pendingSignIn()
	if r := owner.register("Laptop", key.Create(b, owner.registrationOptions()).Response(b)); r.status != http.StatusOK {
		b.Fatalf("register: %d %s", r.status, r.body)
	}
	h := g.eng.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		c := g.passkeyClient(b).pendingSignIn()
		response := key.Get(b, c.authenticationOptions("challenge")).Response(b)
		form := url.Values{"csrfToken": {c.csrf()}, "response": {string(response)}, "json": {"true"}}
		req := httptest.NewRequest(http.MethodPost, "/api/auth/challenge/passkey", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", c.cookieHeader())
		rec := httptest.NewRecorder()
		b.StartTimer()
		h.ServeHTTP(rec, req)
		b.StopTimer()
		if rec.Code != http.StatusOK || !strings.Contains(strings.Join(rec.Header().Values("Set-Cookie"), "\n"), "next-auth.session-token=ey") {
			b.Fatalf("got %d %s, want a session", rec.Code, rec.Body.String())
		}
		b.StartTimer()
	}
}
