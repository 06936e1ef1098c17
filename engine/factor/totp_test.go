package factor

import (
	"bytes"
	"encoding/base32"
	"errors"
	"image/png"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// rfc6238Secret is the SHA1 key of RFC 6238's appendix B, in the base32 form Verify takes.
var rfc6238Secret = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))

func totpClock(at time.Time) func() time.Time { return func() time.Time { return at } }

// otpCode is the 6-digit SHA1 code of secret at instant at, as pquerna/otp's totp package
// computes it from a time (Verify works from the step number).
func otpCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatalf("otp generate code: %v", err)
	}
	return code
}

// TestVerifyRFC6238 checks Verify against the SHA1 rows of RFC 6238's appendix B, cut to 6
// digits (the last six of the RFC's eight), at the RFC's instants; the steps are the RFC's
// T column.
func TestVerifyRFC6238(t *testing.T) {
	for _, tc := range []struct {
		unix     int64
		code     string
		wantStep int64
	}{
		{59, "287082", 0x1},
		{1111111109, "081804", 0x23523EC},
		{1111111111, "050471", 0x23523ED},
		{1234567890, "005924", 0x273EF07},
		{2000000000, "279037", 0x3F940AA},
		{20000000000, "353130", 0x27BC86AA},
	} {
		v := TOTP{Issuer: "callgate", Now: totpClock(time.Unix(tc.unix, 0))}
		step, ok := v.Verify(rfc6238Secret, tc.code)
		if !ok || step != tc.wantStep {
			t.Errorf("T=%d code %s: got step %d ok %v, want step %d ok true", tc.unix, tc.code, step, ok, tc.wantStep)
		}
		if got := otpCode(t, rfc6238Secret, time.Unix(tc.unix, 0)); got != tc.code {
			t.Errorf("T=%d: otp computes %s, the RFC says %s", tc.unix, got, tc.code)
		}
	}
}

// TestVerifyWindow checks the ±1 step window from both ends of a step: a code of the
// steps just before and after is accepted with its own step, two steps away it is refused.
func TestVerifyWindow(t *testing.T) {
	const step = 59_000_000 // 2026-02-05, well inside the 32-bit range of steps
	start := time.Unix(step*30, 0)
	for _, clock := range []struct {
		name string
		now  time.Time
	}{
		{"first second of the step", start},
		{"last second of the step", start.Add(29 * time.Second)},
		{"last nanosecond of the step", start.Add(30*time.Second - 1)},
	} {
		v := TOTP{Issuer: "callgate", Now: totpClock(clock.now)}
		for _, tc := range []struct {
			offset int64
			wantOK bool
		}{
			{-2, false}, {-1, true}, {0, true}, {1, true}, {2, false},
		} {
			codeStep := int64(step) + tc.offset
			code := otpCode(t, rfc6238Secret, time.Unix(codeStep*30+7, 0))
			got, ok := v.Verify(rfc6238Secret, code)
			switch {
			case ok != tc.wantOK:
				t.Errorf("%s, code of step %+d: got ok %v, want %v", clock.name, tc.offset, ok, tc.wantOK)
			case ok && got != codeStep:
				t.Errorf("%s, code of step %+d: got step %d, want %d", clock.name, tc.offset, got, codeStep)
			}
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	now := time.Unix(1111111111, 0)
	v := TOTP{Issuer: "callgate", Now: totpClock(now)}
	valid := otpCode(t, rfc6238Secret, now)
	window := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		window[otpCode(t, rfc6238Secret, now.Add(d))] = true
	}
	wrong := valid[:5] + string('0'+(valid[5]-'0'+1)%10)
	if window[wrong] {
		t.Fatalf("fixture: %s is a code of the window", wrong)
	}
	shortSecret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("fifteen bytes!!"))
	for _, tc := range []struct {
		name, secret, code string
	}{
		{"wrong code", rfc6238Secret, wrong},
		{"empty code", rfc6238Secret, ""},
		{"only spaces", rfc6238Secret, "      "},
		{"five digits", rfc6238Secret, valid[:5]},
		{"seven digits", rfc6238Secret, valid + "0"},
		{"eight-digit RFC value", rfc6238Secret, "14050471"},
		{"letter", rfc6238Secret, valid[:5] + "a"},
		{"sign", rfc6238Secret, "+" + valid[1:]},
		{"dash inside", rfc6238Secret, valid[:3] + "-" + valid[3:]},
		{"NUL inside", rfc6238Secret, valid[:3] + "\x00" + valid[3:]},
		{"full-width digit", rfc6238Secret, valid[:5] + "\uff10"},
		{"Arabic-Indic digits", rfc6238Secret, "\u0660\u0661\u0662\u0663\u0664\u0665"},
		{"invalid UTF-8", rfc6238Secret, valid[:5] + "\xff"},
		{"long", rfc6238Secret, strings.Repeat(valid, 1000)},
		{"empty secret", "", valid},
		{"secret of 15 bytes", shortSecret, otpCode(t, shortSecret, now)},
		{"secret not base32", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", valid},
		{"secret with base32 digits 0 and 1", strings.Repeat("01", 16), valid},
	} {
		if step, ok := v.Verify(tc.secret, tc.code); ok {
			t.Errorf("%s (%q): got ok with step %d, want refused", tc.name, tc.code, step)
		}
	}
}

func TestVerifyAcceptsFormsOfTheSameCode(t *testing.T) {
	now := time.Unix(1111111111, 0)
	v := TOTP{Issuer: "callgate", Now: totpClock(now)}
	valid := otpCode(t, rfc6238Secret, now)
	for _, tc := range []struct{ name, secret, code string }{
		{"as computed", rfc6238Secret, valid},
		{"grouped as apps show it", rfc6238Secret, valid[:3] + " " + valid[3:]},
		{"surrounded by white space", rfc6238Secret, "\t " + valid + "\n"},
		{"lower-case secret", strings.ToLower(rfc6238Secret), valid},
		{"padded secret", base32.StdEncoding.EncodeToString([]byte("12345678901234567890")), valid},
	} {
		if step, ok := v.Verify(tc.secret, tc.code); !ok || step != 0x23523ED {
			t.Errorf("%s: got step %d ok %v, want step %d ok true", tc.name, step, ok, 0x23523ED)
		}
	}
}

// TestVerifyBeforeTheEpoch: a clock before 1970 has no steps below zero; step 0 stays in
// the window of the second before the epoch, and nothing panics.
func TestVerifyBeforeTheEpoch(t *testing.T) {
	v := TOTP{Issuer: "callgate", Now: totpClock(time.Unix(-1, 0))}
	if step, ok := v.Verify(rfc6238Secret, otpCode(t, rfc6238Secret, time.Unix(0, 0))); !ok || step != 0 {
		t.Errorf("code of step 0 at T=-1: got step %d ok %v, want step 0 ok true", step, ok)
	}
	// Steps round down: T=-31 is step -2, so step 0 is two steps away.
	for _, unix := range []int64{-31, -3600} {
		v.Now = totpClock(time.Unix(unix, 0))
		if step, ok := v.Verify(rfc6238Secret, otpCode(t, rfc6238Secret, time.Unix(0, 0))); ok {
			t.Errorf("code of step 0 at T=%d: got ok with step %d, want refused", unix, step)
		}
	}
}

// FuzzVerify: on any secret and code, Verify does not panic, and accepts only a code that
// is, once spaces are dropped, the one otp computes for a step of the window it returns.
// The seeds run with every plain `go test`.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1234567890, 0)
	f.Add(rfc6238Secret, "005924")
	f.Add(rfc6238Secret, " 005 924 ")
	f.Add(rfc6238Secret, "00592")
	f.Add(rfc6238Secret, "0059245")
	f.Add(rfc6238Secret, "")
	f.Add(rfc6238Secret, "\xff\xfe\x00")
	f.Add("", "005924")
	f.Add("====", "005924")
	f.Add(strings.ToLower(rfc6238Secret)+"=", "005924")
	f.Add("\u00e9"+rfc6238Secret, "005924")
	v := TOTP{Issuer: "callgate", Now: totpClock(now)}
	current := now.Unix() / 30
	f.Fuzz(func(t *testing.T, secret, code string) {
		step, ok := v.Verify(secret, code)
		if !ok {
			return
		}
		if step < current-1 || step > current+1 {
			t.Fatalf("accepted with step %d, outside the window %d±1", step, current)
		}
		canonical, _ := canonicalTOTPSecret(secret)
		if want := otpCode(t, canonical, time.Unix(step*30, 0)); strings.Join(strings.Fields(code), "") != want {
			t.Fatalf("accepted %q for step %d, whose code is %s", code, step, want)
		}
	})
}

func TestEnrol(t *testing.T) {
	now := time.Date(2026, 12, 2, 3, 4, 5, 0, time.UTC)
	tp := TOTP{Issuer: "Example Corp", Now: totpClock(now)}
	const account = "jane+2fa@example.com"
	e, err := tp.Enrol(account)
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}

	if strings.Contains(e.Secret, "=") {
		t.Errorf("secret %q is padded, want base32 without padding", e.Secret)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil || len(raw) != 20 {
		t.Errorf("secret %q: decodes to %d bytes (%v), want 20", e.Secret, len(raw), err)
	}
	if step, ok := tp.Verify(e.Secret, otpCode(t, e.Secret, now)); !ok || step != now.Unix()/30 {
		t.Errorf("verify otp's code of the enrolled secret: got step %d ok %v, want step %d ok true", step, ok, now.Unix()/30)
	}

	u, err := url.Parse(e.URI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" {
		t.Fatalf("URI %q: want otpauth://totp/… (parse error %v)", e.URI, err)
	}
	key, err := otp.NewKeyFromURL(e.URI)
	if err != nil {
		t.Fatalf("otp parses URI %q: %v", e.URI, err)
	}
	for _, c := range []struct{ what, got, want string }{
		{"issuer", key.Issuer(), "Example Corp"},
		{"issuer parameter", u.Query().Get("issuer"), "Example Corp"},
		{"account name", key.AccountName(), account},
		{"secret", key.Secret(), e.Secret},
		{"algorithm", key.Algorithm().String(), "SHA1"},
		{"digits", key.Digits().String(), "6"},
	} {
		if c.got != c.want {
			t.Errorf("URI %s: got %q, want %q", c.what, c.got, c.want)
		}
	}
	if key.Period() != 30 {
		t.Errorf("URI period: got %d, want 30", key.Period())
	}

	img, err := png.Decode(bytes.NewReader(e.QRCodePNG))
	if err != nil {
		t.Fatalf("decode QR code PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 200 || b.Dy() != 200 {
		t.Errorf("QR code: got %dx%d, want 200x200", b.Dx(), b.Dy())
	}

	again, err := tp.Enrol(account)
	if err != nil {
		t.Fatalf("enrol again: %v", err)
	}
	if again.Secret == e.Secret {
		t.Errorf("two enrolments share the secret %s", e.Secret)
	}
}

func TestEnrolRefusesLabels(t *testing.T) {
	for _, tc := range []struct{ name, issuer, account string }{
		{"empty issuer", "", "jane@example.com"},
		{"empty account", "Example", ""},
		{"colon in issuer", "Example:Corp", "jane@example.com"},
		{"colon in account", "Example", "jane:doe"},
	} {
		e, err := TOTP{Issuer: tc.issuer}.Enrol(tc.account)
		if !errors.Is(err, ErrTOTPLabel) {
			t.Errorf("%s: got error %v, want ErrTOTPLabel", tc.name, err)
		}
		if e.Secret != "" || e.URI != "" || e.QRCodePNG != nil {
			t.Errorf("%s: got a half-made enrolment %+v", tc.name, e)
		}
	}
}

var recoveryCodeFormat = regexp.MustCompile(`^[a-z2-7]{5}-[a-z2-7]{5}$`)

func TestNewRecoveryCodes(t *testing.T) {
	for _, n := range []int{1, 10, 100} {
		codes, err := NewRecoveryCodes(n)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if len(codes) != n {
			t.Errorf("n=%d: got %d codes", n, len(codes))
		}
		seen := map[string]bool{}
		for _, c := range codes {
			if !recoveryCodeFormat.MatchString(c) {
				t.Errorf("n=%d: code %q, want xxxxx-xxxxx in lower-case base32", n, c)
			}
			if seen[c] {
				t.Errorf("n=%d: code %q twice", n, c)
			}
			seen[c] = true
		}
	}
	for _, n := range []int{-1, 0, 101} {
		if codes, err := NewRecoveryCodes(n); err == nil {
			t.Errorf("n=%d: got %d codes, want an error", n, len(codes))
		}
	}
}
