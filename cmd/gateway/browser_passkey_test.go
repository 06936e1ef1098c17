package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"
)

// The passkey browser tests run testdata/browser/passkey.mjs in headless Chromium with a
// CDP virtual authenticator against a gateway in front of an app that greets the user by
// the name the gateway forwards. testdata/passkey-signin-scripts offers a password and the
// Passkey provider; in testdata/passkey-scripts passkeys are a second factor: an admin's
// password sign-in needs one too, and /admin needs one used within five minutes.

// passkeyUsers are the accounts of the passkey tests, all with the password "secret":
// in testdata/passkey-scripts ada (an admin) needs a passkey as a second factor and linus
// (an operator) an authenticator app; grace needs none.
var passkeyUsers = []struct{ ID, Username, Name, Role string }{
	{"66b2f0c2e4b0a1b2c3d4e5a1", "ada", "Ada", "admin"},
	{"66b2f0c2e4b0a1b2c3d4e5a2", "grace", "Grace", "user"},
	{"66b2f0c2e4b0a1b2c3d4e5a3", "linus", "Linus", "ops"},
}

const passkeyPassword = "secret"

// passkeySession is what /api/auth/session answers in the passkey tests: the config's
// session callback copies amr and auth_time from the token.
type passkeySession struct {
	User *struct {
		Name     string   `json:"name"`
		AMR      []string `json:"amr"`
		AuthTime float64  `json:"auth_time"`
	} `json:"user"`
}

type passkeyListed struct{ ID, Name, LastUsed string }

type passkeyAdded struct {
	Message  string
	Shown    []passkeyListed
	Reloaded []passkeyListed
}

type heldCredential struct {
	RPID       string `json:"rpId"`
	Resident   bool
	SignCount  int
	UserHandle string
}

type passwordSignIn struct {
	SigninURL     string `json:"signinURL"`
	PasskeyButton bool
	LandedURL     string `json:"landedURL"`
}

type passkeySignIn struct {
	LandedURL string `json:"landedURL"`
	Greeting  string
	Posts     []string
}

type challengeSeen struct {
	URL                                   string `json:"url"`
	Heading                               string
	EnrolPasskey, EnrolTOTP               bool
	PasskeyButton, TOTPForm, RecoveryForm bool
	Session                               passkeySession
}

// refusedSeen is the challenge page a refused code comes back to.
type refusedSeen struct {
	URL     string `json:"url"`
	Error   string
	Session passkeySession
}

type landedSeen struct {
	LandedURL string `json:"landedURL"`
	Greeting  string
	Session   passkeySession
}

// driverCommon is what every scenario's output carries.
type driverCommon struct {
	Navigations []string
	AuthPosts   []struct {
		Path   string
		Status int
		Body   string
	}
	PageErrors  []string
	Screenshots []string
}

// TestBrowserPasskeyRegisterAndSignIn: a user signed in with a password adds a passkey on
// the factors page, signs out, and signs in again with the passkey alone.
func TestBrowserPasskeyRegisterAndSignIn(t *testing.T) {
	env := startPasskeyGateway(t, "passkey-signin-scripts", nil)
	start := env.gw.URL + "/reports/2030?view=full"
	var got struct {
		Password            passwordSignIn
		Added               passkeyAdded
		Credentials         []heldCredential
		SessionAfterSignOut passkeySession
		Passkey             passkeySignIn
		SessionAfterPasskey passkeySession
		AfterUse            []passkeyListed
		driverCommon
	}
	env.run(t, "register-signin", "grace", map[string]string{"START_URL": start}, nil, &got)

	if !got.Password.PasskeyButton {
		t.Errorf("the sign-in page has no #passkey-signin button for the Passkey provider")
	}
	if got.Password.LandedURL != start {
		t.Errorf("password sign-in landed on %q, want %q", got.Password.LandedURL, start)
	}
	if names := listedNames(got.Added.Shown); !slices.Equal(names, []string{"Laptop"}) {
		t.Errorf("factors page after adding: passkeys %q, want [Laptop]", names)
	}
	if len(got.Added.Reloaded) != 1 || got.Added.Reloaded[0].Name != "Laptop" || got.Added.Reloaded[0].ID == "" ||
		got.Added.Reloaded[0].LastUsed != "Never used" {
		t.Errorf("factors page loaded again: got %+v, want one passkey Laptop with an id, never used", got.Added.Reloaded)
	}
	checkHeld(t, got.Credentials, env.gw, "66b2f0c2e4b0a1b2c3d4e5a2")
	if got.SessionAfterSignOut.User != nil {
		t.Errorf("session after signing out: got %+v, want none", got.SessionAfterSignOut.User)
	}
	if got.Passkey.LandedURL != start || got.Passkey.Greeting != "Hello, Grace" {
		t.Errorf("passkey sign-in: landed on %q greeted %q, want %q greeted %q", got.Passkey.LandedURL, got.Passkey.Greeting, start, "Hello, Grace")
	}
	// The passkey alone: the page asked for options and posted the assertion, nothing else
	// (no password form).
	if want := []string{"/api/auth/webauthn/authentication-options", "/api/auth/callback/passkey"}; !slices.Equal(got.Passkey.Posts, want) {
		t.Errorf("passkey sign-in posted %v, want %v", got.Passkey.Posts, want)
	}
	if u := got.SessionAfterPasskey.User; u == nil || u.Name != "Grace" || !slices.Contains(u.AMR, "hwk") || slices.Contains(u.AMR, "pwd") {
		t.Errorf("session after the passkey sign-in: got %+v, want Grace with amr hwk and no pwd", u)
	}
	if len(got.AfterUse) != 1 || !strings.HasPrefix(got.AfterUse[0].LastUsed, "Last used ") {
		t.Errorf("factors page after the passkey sign-in: got %+v, want Laptop with a last-used time", got.AfterUse)
	}
	checkDriverCommon(t, got.driverCommon, 4)
}

// TestBrowserPasskeySecondFactor: an admin's password sign-in stops at the challenge page,
// with no session yet. The first time it enrols a passkey, which completes the sign-in;
// the next time it asks for that passkey.
func TestBrowserPasskeySecondFactor(t *testing.T) {
	env := startPasskeyGateway(t, "passkey-scripts", nil)
	start := env.gw.URL + "/reports/2030?view=full"
	var got struct {
		First               passwordSignIn
		EnrolPage           challengeSeen
		Enrolled            landedSeen
		Credentials         []heldCredential
		SessionAfterSignOut passkeySession
		Second              passwordSignIn
		Challenge           challengeSeen
		Confirmed           landedSeen
		driverCommon
	}
	env.run(t, "second-factor", "ada", map[string]string{"START_URL": start}, nil, &got)

	checkChallengeURL(t, "first password sign-in", got.First.LandedURL, env.gw, start)
	if !got.EnrolPage.EnrolPasskey || got.EnrolPage.PasskeyButton {
		t.Errorf("challenge page for a user without a passkey: #enrol-passkey %v, #passkey-button %v; want enrolment only",
			got.EnrolPage.EnrolPasskey, got.EnrolPage.PasskeyButton)
	}
	if got.EnrolPage.Session.User != nil {
		t.Errorf("session before the second factor: got %+v, want none", got.EnrolPage.Session.User)
	}
	checkLanded(t, "after enrolling", got.Enrolled, start, "Hello, Ada", "pwd", "hwk")
	checkHeld(t, got.Credentials, env.gw, "66b2f0c2e4b0a1b2c3d4e5a1")
	if got.SessionAfterSignOut.User != nil {
		t.Errorf("session after signing out: got %+v, want none", got.SessionAfterSignOut.User)
	}
	checkChallengeURL(t, "second password sign-in", got.Second.LandedURL, env.gw, start)
	if got.Challenge.EnrolPasskey || !got.Challenge.PasskeyButton {
		t.Errorf("challenge page for a user with a passkey: #enrol-passkey %v, #passkey-button %v; want the passkey button only",
			got.Challenge.EnrolPasskey, got.Challenge.PasskeyButton)
	}
	if got.Challenge.Session.User != nil {
		t.Errorf("session before the second factor: got %+v, want none", got.Challenge.Session.User)
	}
	checkLanded(t, "after the passkey challenge", got.Confirmed, start, "Hello, Ada", "pwd", "hwk")
	checkDriverCommon(t, got.driverCommon, 4)
}

// TestBrowserPasskeyStepUp: an admin signed in with password and passkey minutes ago
// opens /admin, whose authorized() wants a passkey within five minutes; the browser goes
// to the challenge and, after the passkey, back to the URL it asked for.
//
// The session is made old by the clock, not by waiting: the gateway's clock runs ten
// minutes behind while the driver signs in (so the token's auth_time is ten minutes in
// the past), and is set right before the driver opens /admin. authorized() reads the time
// with Date.now(), the real clock, so from then on the gateway and the script agree that
// the sign-in was ten minutes ago, and after the challenge that it was just now.
func TestBrowserPasskeyStepUp(t *testing.T) {
	const behind = 10 * time.Minute
	clock := &movedClock{}
	clock.advance(-behind)
	env := startPasskeyGateway(t, "passkey-scripts", clock.Now)
	start := env.gw.URL + "/reports/2030?view=full"
	stepUp := env.gw.URL + "/admin/users?page=2"
	var got struct {
		Password      passwordSignIn
		SessionBefore passkeySession
		Challenge     challengeSeen
		Confirmed     landedSeen
		driverCommon
	}
	var signedInAt time.Time
	env.run(t, "step-up", "ada", map[string]string{"START_URL": start, "STEP_UP_URL": stepUp}, func(p driverPause) string {
		if p.Pause != "signed-in" {
			t.Errorf("driver paused at %q, want only signed-in", p.Pause)
			return ""
		}
		signedInAt = time.Now()
		clock.advance(behind)
		return ""
	}, &got)

	checkChallengeURL(t, "password sign-in", got.Password.LandedURL, env.gw, start)
	// The clock did what the comment says: the sign-in is dated ten minutes back.
	if u := got.SessionBefore.User; u == nil || !slices.Contains(u.AMR, "hwk") ||
		time.Unix(int64(u.AuthTime), 0).After(signedInAt.Add(-behind+time.Minute)) {
		t.Fatalf("session before /admin: got %+v, want amr hwk and an auth_time about %v before %v", u, behind, signedInAt)
	}
	checkChallengeURL(t, "/admin", got.Challenge.URL, env.gw, stepUp)
	if got.Challenge.Heading != "Confirm it is you" || !got.Challenge.PasskeyButton || got.Challenge.EnrolPasskey {
		t.Errorf("step-up challenge: heading %q, #passkey-button %v, #enrol-passkey %v; want the step-up page with the passkey button only",
			got.Challenge.Heading, got.Challenge.PasskeyButton, got.Challenge.EnrolPasskey)
	}
	if got.Challenge.Session.User == nil {
		t.Errorf("step-up challenge: the session is gone; want it kept while the challenge runs")
	}
	checkLanded(t, "after the step-up", got.Confirmed, stepUp, "Hello, Ada", "hwk")
	if u := got.Confirmed.Session.User; u != nil && time.Unix(int64(u.AuthTime), 0).Before(signedInAt.Add(-time.Minute)) {
		t.Errorf("auth_time after the step-up: %v, want the challenge's time (after %v)", time.Unix(int64(u.AuthTime), 0), signedInAt)
	}
	checkDriverCommon(t, got.driverCommon, 2)
}

// TestBrowserPasskeyManageFactors runs the factors page against the gateway: add a
// passkey, set up an authenticator app, make new recovery codes, remove the app, each
// shown at once and still there when the page is loaded again. Once the sign-in is older
// than factors.recentAuthentication (10 minutes; the gateway's clock is moved on 11),
// removing the passkey first sends the browser through the challenge and back.
func TestBrowserPasskeyManageFactors(t *testing.T) {
	clock := &movedClock{}
	env := startPasskeyGateway(t, "passkey-scripts", clock.Now)
	start := env.gw.URL + "/reports/2030?view=full"
	var got struct {
		Password passwordSignIn
		Added    passkeyAdded
		TOTP     struct {
			RecoveryCodes                   []string
			Status, Message, RecoveryStatus string
			RemoveShown, SetupShown         bool
		}
		Regenerated struct {
			RecoveryCodes   []string
			Status, Message string
		}
		Reloaded struct {
			Passkeys                   []passkeyListed
			TOTPStatus, RecoveryStatus string
		}
		TOTPRemoved struct {
			Status, Message string
			EnrollShown     bool
		}
		Reauthenticate challengeSeen
		PasskeyRemoved struct {
			Passkeys []passkeyListed
			Message  string
		}
		AfterReload []passkeyListed
		driverCommon
	}
	env.run(t, "manage", "grace", map[string]string{"START_URL": start}, func(p driverPause) string {
		switch p.Pause {
		case "totp-code":
			return totpCodeFor(t, p.Secret, p.Step, clock.Now())
		case "stale":
			clock.advance(11 * time.Minute)
		default:
			t.Errorf("driver paused at %q, want totp-code or stale", p.Pause)
		}
		return ""
	}, &got)

	if names := listedNames(got.Added.Shown); !slices.Equal(names, []string{"Laptop"}) || got.Added.Message != "The passkey “Laptop” was added." {
		t.Errorf("after adding a passkey: passkeys %q, message %q; want [Laptop] and it said so", names, got.Added.Message)
	}
	if len(got.TOTP.RecoveryCodes) == 0 || got.TOTP.Status != "An authenticator app is set up." || !got.TOTP.RemoveShown || got.TOTP.SetupShown ||
		got.TOTP.RecoveryStatus != fmt.Sprintf("%d unused recovery codes.", len(got.TOTP.RecoveryCodes)) {
		t.Errorf("after setting up the app: %+v; want recovery codes, counted, the set-up status, the remove button, the set-up form gone", got.TOTP)
	}
	if len(got.Regenerated.RecoveryCodes) != len(got.TOTP.RecoveryCodes) || slices.Equal(got.Regenerated.RecoveryCodes, got.TOTP.RecoveryCodes) ||
		got.Regenerated.Status != fmt.Sprintf("%d unused recovery codes.", len(got.TOTP.RecoveryCodes)) {
		t.Errorf("new recovery codes: %+v after %q; want as many, all new, counted", got.Regenerated, got.TOTP.RecoveryCodes)
	}
	if names := listedNames(got.Reloaded.Passkeys); !slices.Equal(names, []string{"Laptop"}) || got.Reloaded.TOTPStatus != "An authenticator app is set up." ||
		got.Reloaded.RecoveryStatus != got.Regenerated.Status {
		t.Errorf("factors page loaded again: %+v; want Laptop, the app set up, %q", got.Reloaded, got.Regenerated.Status)
	}
	if got.TOTPRemoved.Status != "No authenticator app is set up." || !got.TOTPRemoved.EnrollShown {
		t.Errorf("after removing the app: %+v; want it gone and the set-up button back", got.TOTPRemoved)
	}
	checkChallengeURL(t, "removing a passkey after 11 minutes", got.Reauthenticate.URL, env.gw, env.gw.URL+"/api/auth/factors")
	if !got.Reauthenticate.PasskeyButton || got.Reauthenticate.Session.User == nil {
		t.Errorf("challenge before changing factors: #passkey-button %v, session %+v; want the passkey button, still signed in",
			got.Reauthenticate.PasskeyButton, got.Reauthenticate.Session.User)
	}
	if len(got.PasskeyRemoved.Passkeys) != 0 || got.PasskeyRemoved.Message != "The passkey “Laptop” was removed." || len(got.AfterReload) != 0 {
		t.Errorf("after removing the passkey: %+v, then %+v loaded again; want none, and it said so", got.PasskeyRemoved, got.AfterReload)
	}
	checkDriverCommon(t, got.driverCommon, 5)
}

// TestBrowserTOTPSecondFactor: an operator's password sign-in needs an authenticator app.
// The first time the challenge page enrols one (secret shown as text and QR code; the
// test computes the codes from it), shows recovery codes and continues to the app. Later
// sign-ins refuse a wrong code and accept the next one; a recovery code works once.
func TestBrowserTOTPSecondFactor(t *testing.T) {
	env := startPasskeyGateway(t, "passkey-scripts", nil)
	start := env.gw.URL + "/reports/2030?view=full"
	var got struct {
		First               passwordSignIn
		EnrolPage           challengeSeen
		Secret, QR          string
		RecoveryCodes       []string
		Enrolled            landedSeen
		SessionAfterSignOut passkeySession
		Challenge           challengeSeen
		WrongCode           refusedSeen
		Confirmed           landedSeen
		Recovered           landedSeen
		Reused              refusedSeen
		driverCommon
	}
	env.run(t, "totp", "linus", map[string]string{"START_URL": start}, func(p driverPause) string {
		if p.Pause != "totp-code" {
			t.Errorf("driver paused at %q, want totp-code", p.Pause)
			return ""
		}
		return totpCodeFor(t, p.Secret, p.Step, time.Now())
	}, &got)

	checkChallengeURL(t, "first password sign-in", got.First.LandedURL, env.gw, start)
	if !got.EnrolPage.EnrolTOTP || got.EnrolPage.EnrolPasskey || got.EnrolPage.TOTPForm {
		t.Errorf("challenge page for a user without an authenticator app: #enrol-totp %v, #enrol-passkey %v, #totp-form %v; want TOTP enrolment only",
			got.EnrolPage.EnrolTOTP, got.EnrolPage.EnrolPasskey, got.EnrolPage.TOTPForm)
	}
	if got.EnrolPage.Session.User != nil {
		t.Errorf("session before the second factor: got %+v, want none", got.EnrolPage.Session.User)
	}
	if got.QR != "data:image/png;base64," {
		t.Errorf("QR code image: src starts %q, want a PNG data URL", got.QR)
	}
	if len(got.RecoveryCodes) == 0 || !regexp.MustCompile(`^[a-z2-7]{5}-[a-z2-7]{5}$`).MatchString(got.RecoveryCodes[0]) {
		t.Errorf("recovery codes shown: %q, want some, each xxxxx-xxxxx", got.RecoveryCodes)
	}
	checkLanded(t, "after enrolling", got.Enrolled, start, "Hello, Linus", "pwd", "otp")
	if got.SessionAfterSignOut.User != nil {
		t.Errorf("session after signing out: got %+v, want none", got.SessionAfterSignOut.User)
	}
	if !got.Challenge.TOTPForm || !got.Challenge.RecoveryForm || got.Challenge.EnrolTOTP || got.Challenge.PasskeyButton {
		t.Errorf("challenge page for a user with an authenticator app: #totp-form %v, #recovery-form %v, #enrol-totp %v, #passkey-button %v; want the code and recovery forms only",
			got.Challenge.TOTPForm, got.Challenge.RecoveryForm, got.Challenge.EnrolTOTP, got.Challenge.PasskeyButton)
	}
	checkRefused(t, "a wrong code", got.WrongCode, env.gw)
	checkLanded(t, "after the next code", got.Confirmed, start, "Hello, Linus", "pwd", "otp")
	checkLanded(t, "after a recovery code", got.Recovered, start, "Hello, Linus", "pwd", "otp")
	checkRefused(t, "the same recovery code again", got.Reused, env.gw)
	checkDriverCommon(t, got.driverCommon, 4)
}

// totpCodeFor is the RFC 6238 code of secret at now ("current"), one step later ("next",
// which the gateway's ±1 step window accepts after the current one), or a code that no
// step of that window has ("wrong").
func totpCodeFor(t *testing.T, secret, step string, now time.Time) string {
	t.Helper()
	code := func(at time.Time) string {
		c, err := totp.GenerateCode(secret, at)
		if err != nil {
			t.Fatalf("TOTP code of the shown secret %q: %v", secret, err)
		}
		return c
	}
	switch step {
	case "current":
		return code(now)
	case "next":
		return code(now.Add(30 * time.Second))
	case "wrong":
		valid := map[string]bool{}
		for _, d := range []time.Duration{-60, -30, 0, 30, 60} {
			valid[code(now.Add(d*time.Second))] = true
		}
		for n := 0; ; n++ {
			if c := fmt.Sprintf("%06d", n); !valid[c] {
				return c
			}
		}
	}
	t.Fatalf("driver asked for a TOTP code at step %q", step)
	return ""
}

// checkRefused checks a refused code came back to the challenge page with the error
// SecondFactorFailed shown, and no session.
func checkRefused(t *testing.T, what string, got refusedSeen, gw *testGateway) {
	t.Helper()
	u, err := url.Parse(got.URL)
	if err != nil || u.Scheme+"://"+u.Host != gw.URL || u.Path != "/api/auth/challenge" || u.Query().Get("error") != "SecondFactorFailed" {
		t.Errorf("%s: came back to %q, want the challenge page with error=SecondFactorFailed", what, got.URL)
	}
	if want := "That code or key was not accepted. Try again."; got.Error != want {
		t.Errorf("%s: the page says %q, want %q", what, got.Error, want)
	}
	if got.Session.User != nil {
		t.Errorf("%s: got a session %+v, want none", what, got.Session.User)
	}
}

// passkeyEnv is a gateway for the passkey tests and the app behind it.
type passkeyEnv struct {
	gw                 *testGateway
	chromium, node, pk string
}

// startPasskeyGateway starts the app and a gateway in front of it with the scripts in
// testdata/<scripts> and the passkey tests' users; now is the gateway's clock (nil: the
// real one).
func startPasskeyGateway(t *testing.T, scripts string, now func() time.Time) *passkeyEnv {
	t.Helper()
	chromium, node, pkg := requireBrowserPackages(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><title>Reports</title><h1 id="greeting">Hello, %s</h1><p>You asked for %s</p>`,
			html.EscapeString(r.Header.Get("X-Callgate-Name")), html.EscapeString(r.URL.RequestURI()))
	}))
	t.Cleanup(app.Close)

	hash, err := bcrypt.GenerateFromPassword([]byte(passkeyPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]string
	for _, u := range passkeyUsers {
		docs = append(docs, map[string]string{
			"_id": u.ID, "username": u.Username, "name": u.Name, "email": u.Username + "@example.com",
			"role": u.Role, "password": string(hash),
		})
	}
	b, err := json.Marshal(docs)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(users, b, 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, gatewayOptions{
		ScriptsDir: filepath.Join("testdata", scripts),
		UsersFile:  users,
		Args:       []string{"--upstream", app.URL},
		Now:        now,
		Host:       "localhost", // the RP ID; an IP address cannot be one
	})
	return &passkeyEnv{gw: gw, chromium: chromium, node: node, pk: pkg}
}

// driverPause is a line the driver prints when it wants the test to act: TOTP codes
// (for Secret at Step: current, next, or a wrong one) or a change of the clock.
type driverPause struct {
	Pause        string
	Secret, Step string
}

// run runs passkey.mjs with scenario as username; onPause is called for each pause the
// driver asks for, and its answer is the line the driver reads to go on. The driver's
// result is decoded into out.
func (e *passkeyEnv) run(t *testing.T, scenario, username string, vars map[string]string, onPause func(driverPause) string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.node, "passkey.mjs")
	cmd.Dir = e.pk
	cmd.Env = append(os.Environ(), "CHROMIUM="+e.chromium, "SCENARIO="+scenario, "ORIGIN="+e.gw.URL,
		"USERNAME="+username, "PASSWORD="+passkeyPassword, "OUT_DIR="+screenshotDir(t), "PROFILE_DIR="+t.TempDir())
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node passkey.mjs: %v", err)
	}
	var printed []string
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		line := lines.Text()
		printed = append(printed, line)
		var p driverPause
		if json.Unmarshal([]byte(line), &p) != nil || p.Pause == "" {
			continue
		}
		answer := ""
		if onPause == nil {
			t.Errorf("driver paused at %q; this scenario expects no pause", p.Pause)
		} else {
			answer = onPause(p)
		}
		if _, err := io.WriteString(stdin, answer+"\n"); err != nil {
			t.Errorf("answer the driver's pause %q: %v", p.Pause, err)
		}
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node passkey.mjs (%s): %v\nstdout: %s\nstderr: %s", scenario, err, strings.Join(printed, "\n"), stderr.String())
	}
	if len(printed) == 0 {
		t.Fatalf("node passkey.mjs (%s) printed nothing; stderr: %s", scenario, stderr.String())
	}
	last := printed[len(printed)-1]
	if err := json.Unmarshal([]byte(last), out); err != nil {
		t.Fatalf("node passkey.mjs (%s) printed %q: %v", scenario, last, err)
	}
}

func listedNames(list []passkeyListed) []string {
	var names []string
	for _, p := range list {
		names = append(names, p.Name)
	}
	return names
}

// checkHeld checks the virtual authenticator holds one discoverable credential for the
// gateway's RP ID (its host), whose user handle is the user's ID.
func checkHeld(t *testing.T, held []heldCredential, gw *testGateway, userID string) {
	t.Helper()
	u, err := url.Parse(gw.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[0].RPID != u.Hostname() || !held[0].Resident || held[0].UserHandle != userID {
		t.Errorf("authenticator holds %+v, want one resident credential for RP ID %s and user handle %s", held, u.Hostname(), userID)
	}
}

// checkChallengeURL checks that landed is the challenge page. A callbackUrl in its query
// must be back; a parked sign-in may keep it in its own state instead (where the browser
// goes next is checked when it gets there).
func checkChallengeURL(t *testing.T, what, landed string, gw *testGateway, back string) {
	t.Helper()
	u, err := url.Parse(landed)
	if err != nil || u.Scheme+"://"+u.Host != gw.URL || u.Path != "/api/auth/challenge" ||
		(u.Query().Has("callbackUrl") && u.Query().Get("callbackUrl") != back) {
		t.Errorf("%s: landed on %q, want %s/api/auth/challenge, with callbackUrl=%s if any", what, landed, gw.URL, url.QueryEscape(back))
	}
}

// checkLanded checks the browser is back on want, greeted, with a session whose amr
// holds every one of amr.
func checkLanded(t *testing.T, what string, got landedSeen, want, greeting string, amr ...string) {
	t.Helper()
	if got.LandedURL != want || got.Greeting != greeting {
		t.Errorf("%s: landed on %q greeted %q, want %q greeted %q", what, got.LandedURL, got.Greeting, want, greeting)
	}
	u := got.Session.User
	if u == nil {
		t.Errorf("%s: no session", what)
		return
	}
	for _, m := range amr {
		if !slices.Contains(u.AMR, m) {
			t.Errorf("%s: session amr %q, want it to include %q", what, u.AMR, m)
		}
	}
}

// checkDriverCommon checks the page raised no error and the screenshots were written.
func checkDriverCommon(t *testing.T, got driverCommon, screenshots int) {
	t.Helper()
	if len(got.PageErrors) > 0 {
		t.Errorf("errors in the page: %v", got.PageErrors)
	}
	if len(got.Screenshots) != screenshots {
		t.Errorf("screenshots: got %d (%v), want %d", len(got.Screenshots), got.Screenshots, screenshots)
	}
	for _, shot := range got.Screenshots {
		if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
			t.Errorf("screenshot %s: %v (want a PNG file)", shot, err)
		}
	}
}
