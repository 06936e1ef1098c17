package engine

import (
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

// TestFactorPagesContract renders the challenge, factors and sign-in pages in each state
// and checks that the elements factor.js and the browser tests find by id are there, and
// those of the other states are not; that what a request or the store supplies is escaped;
// and that no page carries inline script, which the pages' Content-Security-Policy
// (script-src 'self') would block.
func TestFactorPagesContract(t *testing.T) {
	page := func(f *factorView, errCode string) pageData {
		return pageData{
			Title: "Sign In", ColorScheme: "auto", Base: "http://gw.example/api/auth", Origin: "http://gw.example",
			CSRFToken: "csrf-1", CallbackURL: "http://gw.example/reports?a=1&b=2", Error: errCode, Factor: f,
		}
	}
	script := `<script src="http://gw.example/api/auth/assets/factor.js" data-base="http://gw.example/api/auth" data-csrf-token="csrf-1" data-callback-url="http://gw.example/reports?a=1&amp;b=2"></script>`
	signin := page(nil, "")
	signin.Providers = []providerView{
		{ID: "credentials", Name: "credentials", Type: "credentials", Action: "http://gw.example/api/auth/callback/credentials",
			Fields: []fieldView{{Name: "username", Label: "Username", Type: "text", InputID: "input-username-for-credentials-provider"}}},
		{ID: "passkey", Name: "Passkey", Type: "passkey", Action: "http://gw.example/api/auth/callback/passkey"},
	}
	signinWithout := page(nil, "")
	signinWithout.Providers = signin.Providers[:1]

	tests := []struct {
		name, template string
		data           pageData
		want, absent   []string
	}{
		{
			name: "challenge with every factor", template: "challenge.html",
			data: page(&factorView{Passkey: true, TOTP: true, Recovery: true}, "SecondFactorFailed"),
			want: []string{
				`<h1>Two-step sign-in</h1>`,
				`<div class="error" id="factor-error" role="alert"><p>That code or key was not accepted. Try again.</p></div>`,
				`<button type="button" id="passkey-button">`,
				`<form id="totp-form" action="http://gw.example/api/auth/challenge/totp" method="POST">`,
				`<input name="code" id="input-code"`,
				`<form id="recovery-form" action="http://gw.example/api/auth/challenge/recovery" method="POST">`,
				`<input name="code" id="input-recovery"`,
				`<input type="hidden" name="csrfToken" value="csrf-1">`,
				`<input type="hidden" name="callbackUrl" value="http://gw.example/reports?a=1&amp;b=2">`,
				script,
			},
			absent: []string{`id="enrol-passkey"`, `id="enrol-totp"`, `id="totp-setup"`},
		},
		{
			name: "challenge with a passkey only", template: "challenge.html",
			data:   page(&factorView{Passkey: true}, ""),
			want:   []string{`id="passkey-button"`, `<div class="error" id="factor-error" role="alert" hidden></div>`},
			absent: []string{`id="totp-form"`, `id="recovery-form"`, `id="enrol-passkey"`},
		},
		{
			name: "step-up", template: "challenge.html",
			data:   page(&factorView{Passkey: true, StepUp: true}, "SecondFactorLimit"),
			want:   []string{`<h1>Confirm it is you</h1>`, `<p>Too many attempts. Try again later.</p>`, `id="passkey-button"`, `<a href="http://gw.example">`, `<a href="http://gw.example/api/auth/factors">Sign-in methods</a>`},
			absent: []string{`Sign in as someone else`},
		},
		{
			name: "an error the engine words itself", template: "challenge.html",
			data: page(&factorView{TOTP: true}, "<b>no</b>"),
			want: []string{`<p>&lt;b&gt;no&lt;/b&gt;</p>`, `id="totp-form"`},
		},
		{
			name: "enrolment", template: "challenge.html",
			data: page(&factorView{Passkey: true, TOTP: true, Enrol: true}, "SecondFactorExpired"),
			want: []string{
				`<h1>Set up a second factor</h1>`, `<p>The sign-in took too long. Sign in again.</p>`,
				`<input id="passkey-name"`, `<button type="button" id="enrol-passkey">`, `<button type="button" id="enrol-totp">`,
				`<section id="totp-setup" hidden>`, `<img id="totp-qr"`, `<code id="totp-secret">`, `<input id="totp-code"`,
				`<button type="button" id="totp-confirm">`, `<ol id="recovery-codes"`, `<a id="continue"`, script,
			},
			absent: []string{`id="passkey-button"`, `id="totp-form"`, `id="recovery-form"`},
		},
		{
			name: "enrolment of a passkey only", template: "challenge.html",
			data:   page(&factorView{Passkey: true, Enrol: true}, ""),
			want:   []string{`id="enrol-passkey"`},
			absent: []string{`id="enrol-totp"`, `id="totp-setup"`},
		},
		{
			name: "factors", template: "factors.html",
			data: page(&factorView{
				Passkey: true, TOTP: true,
				Passkeys: []passkeyView{
					{ID: "cred-1", Name: `<img src=x onerror=alert(1)>`, CreatedAt: "2026-12-01T10:00:00Z"},
					{ID: "cred-2", Name: "YubiKey", CreatedAt: "2026-12-01T11:00:00Z", LastUsedAt: "2026-12-02T09:30:00Z"},
				},
				TOTPEnrolled: true, RecoveryRemaining: 1,
			}, ""),
			want: []string{
				`<ul id="passkeys" class="passkeys">`,
				`<li class="passkey" data-id="cred-1"><span class="passkey-name">&lt;img src=x onerror=alert(1)&gt;</span>`,
				`<span class="passkey-meta muted"><span class="passkey-last-used">Never used</span> · added <time datetime="2026-12-01T10:00:00Z">2026-12-01T10:00:00Z</time></span>`,
				`<li class="passkey" data-id="cred-2"><span class="passkey-name">YubiKey</span>`,
				`<span class="passkey-last-used">Last used <time datetime="2026-12-02T09:30:00Z">2026-12-02T09:30:00Z</time></span>`, `class="passkey-remove secondary"`,
				`<input id="passkey-name"`, `<button type="button" id="passkey-add">`,
				`<p id="totp-status">An authenticator app is set up.</p>`,
				`<button type="button" id="totp-enroll" hidden>`, `<button type="button" id="totp-remove" class="secondary">`,
				`<section id="totp-setup" hidden>`, `<p id="recovery-status">1 unused recovery code.</p>`,
				`<button type="button" id="recovery-regenerate"`, `<ol id="recovery-codes"`,
				`<div id="message" class="notice" role="status" hidden></div>`, script,
			},
			absent: []string{`<p id="passkeys-empty" class="muted">`},
		},
		{
			name: "factors of a user with none", template: "factors.html",
			data: page(&factorView{Passkey: true, TOTP: true}, ""),
			want: []string{
				`<p id="passkeys-empty" class="muted">No passkeys yet.</p>`, `<p id="totp-status">No authenticator app is set up.</p>`,
				`<button type="button" id="totp-enroll">`, `<button type="button" id="totp-remove" class="secondary" hidden>`,
				`<p id="recovery-status">0 unused recovery codes.</p>`,
			},
			absent: []string{`<li class="passkey"`},
		},
		{
			name: "factors with passkeys only", template: "factors.html",
			data:   page(&factorView{Passkey: true}, "SecondFactorNotEnrolled"),
			want:   []string{`<div id="message" class="error" role="status"><p>SecondFactorNotEnrolled</p></div>`, `id="passkey-add"`},
			absent: []string{`id="totp-status"`, `id="totp-enroll"`, `id="totp-setup"`, `id="recovery-regenerate"`},
		},
		{
			name: "factors with TOTP turned off but enrolled", template: "factors.html",
			data:   page(&factorView{TOTPEnrolled: true, RecoveryRemaining: 3}, ""),
			want:   []string{`<p id="totp-status">An authenticator app is set up.</p>`, `id="totp-remove" class="secondary">`, `3 unused recovery codes.`},
			absent: []string{`id="totp-enroll"`, `id="passkeys"`, `id="passkey-add"`},
		},
		{
			name: "sign-in with a passkey provider", template: "signin.html", data: signin,
			want: []string{
				`<button type="button" id="passkey-signin" data-action="http://gw.example/api/auth/callback/passkey">Sign in with Passkey</button>`,
				`<div class="error" id="factor-error" role="alert" hidden></div>`, script,
				`<form action="http://gw.example/api/auth/callback/credentials" method="POST">`,
			},
		},
		{
			name: "sign-in without one", template: "signin.html", data: signinWithout,
			want:   []string{`<form action="http://gw.example/api/auth/callback/credentials" method="POST">`},
			absent: []string{`passkey-signin`, `<script`},
		},
	}
	pg := &pages{log: slog.New(slog.DiscardHandler)}
	inlineHandler := regexp.MustCompile(`<[a-z][^>]*\son[a-z]+\s*=`)
	scriptTag := regexp.MustCompile(`<script[^>]*>`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := string(pg.render(tt.template, tt.data))
			if strings.Contains(out, "could not be rendered") {
				t.Fatalf("%s did not render", tt.template)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("page lacks %s\npage:\n%s", w, out)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(out, a) {
					t.Errorf("page has %s, want it absent", a)
				}
			}
			if m := inlineHandler.FindString(out); m != "" {
				t.Errorf("page has an inline event handler: %s", m)
			}
			for _, tag := range scriptTag.FindAllString(out, -1) {
				if !strings.Contains(tag, ` src="`) || !strings.Contains(out, tag+"</script>") {
					t.Errorf("page has inline script: %s", tag)
				}
			}
			if strings.Contains(out, "javascript:") {
				t.Errorf("page has a javascript: URL")
			}
			for _, id := range regexp.MustCompile(` id="([^"]+)"`).FindAllStringSubmatch(out, -1) {
				if n := strings.Count(out, ` id="`+id[1]+`"`); n != 1 {
					t.Errorf("id %q appears %d times", id[1], n)
				}
			}
		})
	}
}
