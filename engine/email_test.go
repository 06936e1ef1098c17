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
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"
)

// The e-mail sign-in tests send through Mailpit, a real SMTP server, and read what it
// received from its HTTP API: the link in the message is what the test opens.

// emailScript is an auth config with the Email provider delivering to Mailpit's SMTP port,
// a signIn callback that logs what it is given and refuses one address, and createUser
// and signIn events that log theirs.
func emailScript(m *testkit.Mailpit, extra string) string {
	return fmt.Sprintf(`import Email from "callgate/providers/email";
export default {
  providers: [Email({ from: "Callgate <auth@example.com>", server: "smtp://%s:%d"%s })],
  callbacks: {
    async signIn({ user, account, email }) {
      console.log("signIn", JSON.stringify({ user, account, email }));
      return user.email !== "blocked@example.com";
    },
  },
  events: {
    async createUser({ user }) { console.log("createUser", user.email, user.emailVerified); },
    async updateUser({ user }) { console.log("updateUser", user.email, "verified", user.emailVerified); },
    async signIn(msg) { console.log("signIn event", JSON.stringify(Object.keys(msg)), msg.isNewUser); },
  },
};
`, m.SMTPHost, m.SMTPPort, extra)
}

// emailGateway runs a gateway on a bbolt store (with the user jatin@example.com) and the
// Email provider delivering to a fresh Mailpit.
func emailGateway(t *testing.T, sec guard.Options, now func() time.Time, extra string) (*gateway, *bolt.Store, *testkit.Mailpit) {
	t.Helper()
	m := testkit.StartMailpit(t, testkit.MailpitBinary(t, ".."))
	gw, st := dbGateway(t, emailScript(m, extra), sec, now)
	return gw, st, m
}

// askLink posts the e-mail sign-in form as next-auth/react does (json=true).
func (b *browser) askLink(email, callbackURL string) reply {
	b.t.Helper()
	return b.postForm("/api/auth/signin/email", url.Values{
		"email": {email}, "csrfToken": {b.csrf()}, "callbackUrl": {callbackURL}, "json": {"true"},
	})
}

const verifyRequestAnswer = `{"url":"http://localhost:3000/api/auth/verify-request?provider=email&type=email"}`

var linkPattern = regexp.MustCompile(`http://localhost:3000/api/auth/callback/email\?\S+`)

// mailedLink is the sign-in link of the newest message to addr, with the whole message.
func mailedLink(t *testing.T, m *testkit.Mailpit, addr string) (string, testkit.MailpitMessage) {
	t.Helper()
	for _, s := range m.Messages(t) {
		if len(s.To) == 1 && s.To[0].Address == addr {
			msg := m.Message(t, s.ID)
			link := linkPattern.FindString(msg.Text)
			if link == "" {
				t.Fatalf("no sign-in link in the message text %q", msg.Text)
			}
			return link, msg
		}
	}
	t.Fatalf("no message to %s in Mailpit", addr)
	return "", testkit.MailpitMessage{}
}

// open follows a link of the gateway's (absolute URL) in this browser.
func (b *browser) open(link string) reply {
	b.t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.getPage(u.RequestURI())
}

func TestEmailSignInEndToEnd(t *testing.T) {
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	gw, st, m := emailGateway(t, guard.Options{}, clk.Now, "")
	b := gw.browser(t)

	r := b.askLink("  Jane@Example.COM ", "http://localhost:3000/dashboard")
	if r.status != http.StatusOK || r.body != verifyRequestAnswer {
		t.Fatalf("POST /signin/email: got %d %s, want 200 %s", r.status, r.body, verifyRequestAnswer)
	}
	// The signIn callback saw the address normalised, as NextAuth's default normaliser
	// leaves it, and the placeholder user of an address without an account.
	signIns := consoleJSON(t, gw.logs.String(), "signIn ")
	if len(signIns) != 1 {
		t.Fatalf("signIn ran %d times on the request, want 1", len(signIns))
	}
	wantArg := map[string]any{
		"user":    map[string]any{"id": "jane@example.com", "email": "jane@example.com", "emailVerified": nil},
		"account": map[string]any{"providerAccountId": "jane@example.com", "userId": "jane@example.com", "type": "email", "provider": "email"},
		"email":   map[string]any{"verificationRequest": true},
	}
	if !reflect.DeepEqual(signIns[0], wantArg) {
		t.Errorf("signIn on the request: got %v, want %v", signIns[0], wantArg)
	}

	link, msg := mailedLink(t, m, "jane@example.com")
	if msg.Subject != "Sign in to localhost:3000" || msg.From.Address != "auth@example.com" || msg.From.Name != "Callgate" {
		t.Errorf("message: subject %q from %q <%s>", msg.Subject, msg.From.Name, msg.From.Address)
	}
	if !strings.Contains(msg.HTML, "Sign in to <strong>localhost:3000</strong>") || !strings.Contains(msg.HTML, `href="`+strings.ReplaceAll(link, "&", "&amp;")+`"`) {
		t.Errorf("HTML part lacks the host or the link:\n%s", msg.HTML)
	}
	u, _ := url.Parse(link)
	q := u.Query()
	token := q.Get("token")
	if q.Get("email") != "jane@example.com" || q.Get("callbackUrl") != "http://localhost:3000/dashboard" || len(token) != 64 {
		t.Fatalf("link %s: want email, callbackUrl and a 64-hex token", link)
	}
	if !strings.HasPrefix(u.RawQuery, "callbackUrl=") || !strings.Contains(u.RawQuery, "&token=") {
		t.Errorf("link query %q: want NextAuth's order callbackUrl, token, email", u.RawQuery)
	}

	// Only the hash is stored: the database file has no trace of the token.
	raw, err := os.ReadFile(st.Path())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), token) {
		t.Fatal("the store file holds the sign-in token in plain text")
	}

	// A fresh browser (the mail client's) opens the link: signed in, user created.
	mail := gw.browser(t)
	r = mail.open(link)
	if r.status != http.StatusFound || r.header.Get("Location") != "http://localhost:3000/dashboard" {
		t.Fatalf("GET link: got %d %s, want 302 to the callback URL", r.status, r.header.Get("Location"))
	}
	sess := sessionBody(t, mail.getPage("/api/auth/session"))
	user, _ := sess["user"].(map[string]any)
	if user["email"] != "jane@example.com" {
		t.Fatalf("session: got %v, want jane@example.com", sess)
	}
	u2, err := st.FindUser(context.Background(), store.UserQuery{Email: "jane@example.com"})
	if err != nil {
		t.Fatalf("the link did not create the user: %v", err)
	}
	if u2.Extra["emailVerified"] != clk.Now().Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("emailVerified: got %v, want the sign-in time", u2.Extra["emailVerified"])
	}
	logs := gw.logs.String()
	for _, want := range []string{
		"createUser jane@example.com " + clk.Now().Format("2006-01-02T15:04:05.000Z"),
		`signIn event [\"user\",\"account\",\"isNewUser\"] true`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	signIns = consoleJSON(t, logs, "signIn ")
	if len(signIns) != 2 {
		t.Fatalf("signIn ran %d times in all, want 2", len(signIns))
	}
	if got, want := signIns[1]["account"], (map[string]any{"providerAccountId": "jane@example.com", "type": "email", "provider": "email"}); !reflect.DeepEqual(got, want) {
		t.Errorf("signIn on the link: account %v, want %v", got, want)
	}
	if got := signIns[1]["email"]; !reflect.DeepEqual(got, map[string]any{"verificationRequest": false}) {
		t.Errorf("signIn on the link: email %v, want {verificationRequest: false}", got)
	}

	// The link works once.
	again := gw.browser(t)
	if r := again.open(link); r.header.Get("Location") != "http://localhost:3000/api/auth/error?error=Verification" {
		t.Errorf("used link: got %d %s, want the Verification error", r.status, r.header.Get("Location"))
	}
	if sess := sessionBody(t, again.getPage("/api/auth/session")); len(sess) != 0 {
		t.Errorf("used link signed in: %v", sess)
	}
}

func TestEmailSignInExistingUser(t *testing.T) {
	gw, st, m := emailGateway(t, guard.Options{}, nil, "")
	b := gw.browser(t)
	if r := b.askLink("JATIN@example.com", "/"); r.body != verifyRequestAnswer {
		t.Fatalf("POST: got %s", r.body)
	}
	link, _ := mailedLink(t, m, "jatin@example.com")
	b.open(link)
	sess := sessionBody(t, b.getPage("/api/auth/session"))
	if user, _ := sess["user"].(map[string]any); user["email"] != "jatin@example.com" || user["name"] != "Jatin" {
		t.Fatalf("session: got %v, want the stored user Jatin", sess)
	}
	if strings.Contains(gw.logs.String(), "createUser") {
		t.Error("an existing user was created again")
	}
	// The link proved the address: stored on the user, as NextAuth's updateUser does.
	u, err := st.FindUser(t.Context(), store.UserQuery{Email: "jatin@example.com"})
	if err != nil || u.Extra["emailVerified"] == nil || u.Username != "jatin" {
		t.Errorf("jatin after the e-mail sign-in: %+v %v, want emailVerified stored", u, err)
	}
	testkit.WaitFor(t, "events.updateUser", 10*time.Second, func() error {
		if !strings.Contains(gw.logs.String(), "updateUser jatin@example.com verified 20") {
			return errors.New("not logged yet")
		}
		return nil
	})
	if !strings.Contains(gw.logs.String(), `signIn event [\"user\",\"account\",\"isNewUser\"] false`) {
		t.Error("events.signIn: want isNewUser false")
	}
}

func TestEmailLinkExpires(t *testing.T) {
	clk := &clock{now: time.Now().UTC()}
	gw, _, m := emailGateway(t, guard.Options{}, clk.Now, ", maxAge: 600")
	b := gw.browser(t)
	b.askLink("late@example.com", "/")
	link, _ := mailedLink(t, m, "late@example.com")
	clk.add(10*time.Minute + time.Second)
	if r := b.open(link); r.header.Get("Location") != "http://localhost:3000/api/auth/error?error=Verification" {
		t.Fatalf("expired link: got %d %s, want the Verification error", r.status, r.header.Get("Location"))
	}
	if sess := sessionBody(t, b.getPage("/api/auth/session")); len(sess) != 0 {
		t.Errorf("expired link signed in: %v", sess)
	}
}

func TestEmailLinkRefusals(t *testing.T) {
	gw, _, m := emailGateway(t, guard.Options{}, nil, "")
	b := gw.browser(t)
	b.askLink("eve@example.com", "/")
	link, _ := mailedLink(t, m, "eve@example.com")
	u, _ := url.Parse(link)
	q := u.Query()
	tests := []struct {
		name, query, want string
	}{
		{"no token", "email=eve%40example.com", "error=configuration"},
		{"wrong token", "email=eve%40example.com&token=" + strings.Repeat("0", 64), "error=Verification"},
		{"other address", "email=mallory%40example.com&token=" + q.Get("token"), "error=Verification"},
		{"no address", "token=" + q.Get("token"), "error=Verification"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gw.browser(t).getPage("/api/auth/callback/email?" + tt.query)
			if want := "http://localhost:3000/api/auth/error?" + tt.want; r.header.Get("Location") != want {
				t.Errorf("got %d %s, want %s", r.status, r.header.Get("Location"), want)
			}
		})
	}
	// None of them used the token up.
	if r := b.open(link); r.header.Get("Location") != "http://localhost:3000/" {
		t.Errorf("the link after the refusals: got %s", r.header.Get("Location"))
	}
}

func TestEmailSignInRequestRefused(t *testing.T) {
	gw, _, m := emailGateway(t, guard.Options{}, nil, "")
	tests := []struct {
		name, email, want string
	}{
		{"missing", "", "/api/auth/error?error=EmailSignin"},
		{"no domain dot", "jane@localhost", "/api/auth/error?error=EmailSignin"},
		{"two at signs", "a@b@example.com", "/api/auth/error?error=EmailSignin"},
		{"quoted", `"jane"@example.com`, "/api/auth/error?error=EmailSignin"},
		{"line break", "jane\r\nBcc: eve@example.com", "/api/auth/error?error=EmailSignin"},
		{"inner space", "ja ne@example.com", "/api/auth/error?error=EmailSignin"},
		{"signIn refuses", "blocked@example.com", "/api/auth/error?error=AccessDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gw.browser(t).askLink(tt.email, "/")
			var got struct{ URL string }
			_ = json.Unmarshal([]byte(r.body), &got)
			if got.URL != "http://localhost:3000"+tt.want || r.status != http.StatusOK {
				t.Errorf("got %d %s, want {url: %s}", r.status, r.body, tt.want)
			}
		})
	}
	if n := len(m.Messages(t)); n != 0 {
		t.Errorf("Mailpit has %d messages, want none", n)
	}
	// Without CSRF: NextAuth's csrf=true redirect, nothing sent.
	r := gw.browser(t).postForm("/api/auth/signin/email", url.Values{"email": {"jane@example.com"}, "json": {"true"}})
	if !strings.Contains(r.body, "/api/auth/signin?csrf=true") || len(m.Messages(t)) != 0 {
		t.Errorf("no CSRF: got %s", r.body)
	}
}

func TestEmailSendLimits(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		gw, _, m := emailGateway(t, guard.Options{EmailSendsPerAddress: 2, EmailSendsPerClient: 0}, nil, "")
		var answers []reply
		for range 3 {
			answers = append(answers, gw.browser(t).askLink("jane@example.com", "/"))
		}
		// Another address still gets its link.
		answers = append(answers, gw.browser(t).askLink("joe@example.com", "/"))
		for i, r := range answers {
			if r.status != http.StatusOK || r.body != verifyRequestAnswer {
				t.Errorf("answer %d: got %d %s, want the verify-request answer", i+1, r.status, r.body)
			}
			if names := fmt.Sprint(r.cookieNames()); names != fmt.Sprint(answers[0].cookieNames()) {
				t.Errorf("answer %d sets cookies %s, the first %s", i+1, names, fmt.Sprint(answers[0].cookieNames()))
			}
		}
		if n := countTo(t, m, "jane@example.com"); n != 2 {
			t.Errorf("Mailpit has %d messages to jane, want 2", n)
		}
		if n := countTo(t, m, "joe@example.com"); n != 1 {
			t.Errorf("Mailpit has %d messages to joe, want 1", n)
		}
		if strings.Count(gw.logs.String(), "code=EMAIL_SEND_LIMITED") != 1 {
			t.Errorf("want one EMAIL_SEND_LIMITED in the log:\n%s", gw.logs.String())
		}
	})
	t.Run("per client", func(t *testing.T) {
		gw, _, m := emailGateway(t, guard.Options{EmailSendsPerAddress: 0, EmailSendsPerClient: 3}, nil, "")
		for i := range 4 {
			if r := gw.browser(t).askLink(fmt.Sprintf("user%d@example.com", i), "/"); r.body != verifyRequestAnswer {
				t.Errorf("request %d: got %s", i+1, r.body)
			}
		}
		if n := len(m.Messages(t)); n != 3 {
			t.Errorf("Mailpit has %d messages, want 3", n)
		}
		if !strings.Contains(gw.logs.String(), "code=EMAIL_SEND_LIMITED") {
			t.Error("the refused send is not logged")
		}
	})
}

func countTo(t *testing.T, m *testkit.Mailpit, addr string) int {
	n := 0
	for _, s := range m.Messages(t) {
		if len(s.To) == 1 && s.To[0].Address == addr {
			n++
		}
	}
	return n
}

// A script's own sendVerificationRequest replaces the SMTP default and gets NextAuth's
// argument.
func TestEmailSendVerificationRequestScript(t *testing.T) {
	gw, _, m := emailGateway(t, guard.Options{}, nil, `, async sendVerificationRequest({ identifier, url, expires, provider, token, theme }) {
      if (identifier === "fail@example.com") throw new Error("mail API down");
      console.log("SVR", JSON.stringify({ identifier, url, expiresIsDate: expires instanceof Date,
        inADay: Math.round((expires - Date.now()) / 3600000), provider: provider.id, type: provider.type, from: provider.from, token, theme }));
    }`)
	b := gw.browser(t)
	if r := b.askLink("Script@Example.com", "/after"); r.body != verifyRequestAnswer {
		t.Fatalf("POST: got %s", r.body)
	}
	if n := len(m.Messages(t)); n != 0 {
		t.Errorf("the default sender ran too: Mailpit has %d messages", n)
	}
	lines := consoleJSON(t, gw.logs.String(), "SVR ")
	if len(lines) != 1 {
		t.Fatalf("sendVerificationRequest ran %d times, want 1", len(lines))
	}
	raw, _ := json.Marshal(lines[0])
	var got struct {
		Identifier, URL, Provider, Type, From, Token string
		ExpiresIsDate                                bool
		InADay                                       int
		Theme                                        map[string]any
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Identifier != "script@example.com" || !got.ExpiresIsDate || got.InADay != 24 || got.Provider != "email" ||
		got.Type != "email" || got.From != "Callgate <auth@example.com>" || len(got.Token) != 64 ||
		!strings.Contains(got.URL, "token="+got.Token) || got.Theme["colorScheme"] != "auto" {
		t.Errorf("sendVerificationRequest got %+v", got)
	}
	b.open(got.URL)
	if sess := sessionBody(t, b.getPage("/api/auth/session")); sess["user"] == nil {
		t.Errorf("the script's link did not sign in: %v", sess)
	}
	// A throw is NextAuth's EmailSignin error, logged.
	if r := gw.browser(t).askLink("fail@example.com", "/"); !strings.Contains(r.body, "error=EmailSignin") {
		t.Errorf("throwing sendVerificationRequest: got %s", r.body)
	}
	if !strings.Contains(gw.logs.String(), "mail API down") {
		t.Error("the throw is not logged")
	}
}

var logMessage = regexp.MustCompile(`msg=("(?:[^"\\]|\\.)*")`)

// consoleJSON is the JSON objects the script logged after prefix (console.log(prefix,
// JSON.stringify(…))), in order.
func consoleJSON(t *testing.T, logs, prefix string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range logMessage.FindAllStringSubmatch(logs, -1) {
		msg, err := strconv.Unquote(m[1])
		if err != nil {
			t.Fatalf("log message %s: %v", m[1], err)
		}
		rest, ok := strings.CutPrefix(msg, prefix)
		if !ok || !strings.HasPrefix(rest, "{") {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(rest), &v); err != nil {
			t.Fatalf("log message %q: %v", msg, err)
		}
		out = append(out, v)
	}
	return out
}

// The built-in sign-in page has NextAuth's e-mail form; posting it as a browser does (no
// json) lands on the built-in "Check your email" page.
func TestEmailSignInPage(t *testing.T) {
	gw, _, m := emailGateway(t, guard.Options{}, nil, "")
	b := gw.browser(t)
	page := b.getPage("/api/auth/signin")
	for _, want := range []string{
		`<form action="http://localhost:3000/api/auth/signin/email" method="POST">`,
		`<input id="input-email-for-email-provider" autofocus type="email" name="email"`,
	} {
		if !strings.Contains(page.body, want) {
			t.Fatalf("sign-in page lacks %s:\n%s", want, page.body)
		}
	}
	csrf := between(page.body, `name="csrfToken" value="`, `"`)
	r := b.postForm("/api/auth/signin/email", url.Values{"csrfToken": {csrf}, "email": {"page@example.com"}})
	if loc := r.header.Get("Location"); r.status != http.StatusFound || loc != "http://localhost:3000/api/auth/verify-request?provider=email&type=email" {
		t.Fatalf("form post: got %d %s", r.status, loc)
	}
	if v := b.getPage("/api/auth/verify-request?provider=email&type=email"); v.status != http.StatusOK || !strings.Contains(v.body, "Check your email") {
		t.Errorf("verify-request page: got %d", v.status)
	}
	if n := countTo(t, m, "page@example.com"); n != 1 {
		t.Errorf("Mailpit has %d messages, want 1", n)
	}
}

// With credentials in the server URL, the sender authenticates (Mailpit refuses mail
// without them), and wrong ones give NextAuth's EmailSignin error, logged.
func TestEmailSMTPAuth(t *testing.T) {
	pwfile := filepath.Join(t.TempDir(), "smtp-passwords")
	if err := os.WriteFile(pwfile, []byte("mailer:s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := testkit.StartMailpit(t, testkit.MailpitBinary(t, ".."), "--smtp-auth-file", pwfile, "--smtp-auth-allow-insecure")
	for _, tt := range []struct {
		name, userinfo string
		sent           bool
	}{
		{"right password", "mailer:s3cret@", true},
		{"wrong password", "mailer:nope@", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := fmt.Sprintf(`import Email from "callgate/providers/email";
export default { providers: [Email({ from: "auth@example.com", server: "smtp://%s%s:%d" })] };
`, tt.userinfo, m.SMTPHost, m.SMTPPort)
			gw, _ := dbGateway(t, src, guard.Options{}, nil)
			addr := strings.ReplaceAll(tt.name, " ", "-") + "@example.com"
			r := gw.browser(t).askLink(addr, "/")
			if got := r.body == verifyRequestAnswer; got != tt.sent {
				t.Fatalf("got %s, want sent=%v", r.body, tt.sent)
			}
			if !tt.sent && (!strings.Contains(r.body, "error=EmailSignin") || !strings.Contains(gw.logs.String(), "code=SIGNIN_EMAIL_ERROR")) {
				t.Errorf("failed send: got %s, want EmailSignin and a logged SIGNIN_EMAIL_ERROR", r.body)
			}
			if n := countTo(t, m, addr); n != map[bool]int{true: 1}[tt.sent] {
				t.Errorf("Mailpit has %d messages to %s", n, addr)
			}
		})
	}
}

// Without a store there is nowhere to keep the links: NextAuth's Configuration error, logged,
// and nothing sent.
func TestEmailSignInNeedsStore(t *testing.T) {
	m := testkit.StartMailpit(t, testkit.MailpitBinary(t, ".."))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(emailScript(m, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, gatewayConfig{fixture: dir})
	r := gw.browser(t).askLink("jane@example.com", "/")
	if !strings.Contains(r.body, "error=Configuration") || !strings.Contains(gw.logs.String(), "needs a store") {
		t.Errorf("no store: got %s", r.body)
	}
	if r := gw.browser(t).getPage("/api/auth/callback/email?token=x&email=jane%40example.com"); !strings.Contains(r.header.Get("Location"), "error=Configuration") {
		t.Errorf("callback without a store: got %s", r.header.Get("Location"))
	}
	if n := len(m.Messages(t)); n != 0 {
		t.Errorf("Mailpit has %d messages", n)
	}
}

// Two gateways on one Redis key prefix share the sending counters and the links: three
// requests for one address, alternating between the replicas, with a limit of two send two
// messages; a link asked for on one replica signs in on the other, once.
func TestEmailAcrossReplicasOnRedis(t *testing.T) {
	stores := redisReplicaStores(t, 2, "callgate-test-email", "the two-replica e-mail test")
	m := testkit.StartMailpit(t, testkit.MailpitBinary(t, ".."))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(emailScript(m, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	sec := guard.Options{EmailSendsPerAddress: 2}
	replicas := []*gateway{
		startGateway(t, gatewayConfig{fixture: dir, store: stores[0], security: sec}),
		startGateway(t, gatewayConfig{fixture: dir, store: stores[1], security: sec}),
	}
	for i := range 3 {
		if r := replicas[i%2].browser(t).askLink("ada@example.com", "/"); r.body != verifyRequestAnswer {
			t.Fatalf("request %d: got %d %s", i+1, r.status, r.body)
		}
	}
	if n := countTo(t, m, "ada@example.com"); n != 2 {
		t.Errorf("Mailpit has %d messages to ada, want 2 (the limit across both replicas)", n)
	}
	if !strings.Contains(replicas[0].logs.String(), "code=EMAIL_SEND_LIMITED") {
		t.Error("the third request (on replica 0) was not limited")
	}
	link, _ := mailedLink(t, m, "ada@example.com") // the newest: asked on replica 1
	b := replicas[0].browser(t)
	if r := b.open(link); r.header.Get("Location") != "http://localhost:3000/" {
		t.Fatalf("link on the other replica: got %d %s", r.status, r.header.Get("Location"))
	}
	if sess := sessionBody(t, b.getPage("/api/auth/session")); sess["user"] == nil {
		t.Errorf("no session after the link: %v", sess)
	}
	if r := replicas[1].browser(t).open(link); r.header.Get("Location") != "http://localhost:3000/api/auth/error?error=Verification" {
		t.Errorf("the link again, on its own replica: got %s, want the Verification error", r.header.Get("Location"))
	}
	if _, err := stores[1].FindUser(context.Background(), store.UserQuery{Email: "ada@example.com"}); err != nil {
		t.Errorf("the user is not in the shared store: %v", err)
	}
}
