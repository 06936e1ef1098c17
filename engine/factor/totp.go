package factor

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"
	"unicode"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// The TOTP parameters every authenticator app understands (RFC 6238's defaults, and the
// only ones Google Authenticator honours): HMAC-SHA1, 6 digits, 30-second steps.
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	// totpSkew is how many steps either side of the current one a code may belong to: a
	// phone's clock a little off, or a code typed just as it rolled over.
	totpSkew = 1
	// totpSecretSize is RFC 4226's recommended 160 bits; totpMinSecret its minimum of 128,
	// below which Verify refuses a secret (an empty one would accept codes anyone computes).
	totpSecretSize = 20
	totpMinSecret  = 16
	qrCodeSize     = 200 // pixels, square
)

// ErrTOTPLabel reports an issuer or account name that cannot make a Key URI: it is empty or
// holds a colon, which separates the two in the URI's label.
var ErrTOTPLabel = errors.New("TOTP issuer and account name must be non-empty and contain no colon")

// TOTP enrols and verifies time-based one-time passwords (RFC 6238). The zero Now is
// time.Now; tests inject a clock. A TOTP holds no state and is safe for concurrent use.
type TOTP struct {
	// Issuer names the gateway in the authenticator app ("Example Corp"), beside the
	// account name.
	Issuer string
	// Now is the clock Verify reads the current time step from; nil is time.Now.
	Now func() time.Time
}

// Enrolment is what a user is shown once to add the secret to an authenticator app: the
// QR code, or the secret typed by hand. The caller seals Secret (Sealer.Seal) for the store
// and never shows it again.
type Enrolment struct {
	// Secret is the shared key in base32 without padding, as apps expect it typed.
	Secret string
	// URI is the otpauth://totp/ Key URI the QR code encodes.
	URI string
	// QRCodePNG is the URI as a 200x200 PNG QR code.
	QRCodePNG []byte
}

// Enrol makes a new random secret for accountName (what the app shows under the issuer,
// usually the email address).
func (t TOTP) Enrol(accountName string) (Enrolment, error) {
	for _, label := range []struct{ what, value string }{{"issuer", t.Issuer}, {"account name", accountName}} {
		if label.value == "" || strings.Contains(label.value, ":") {
			return Enrolment{}, fmt.Errorf("enrol TOTP: %s %q: %w", label.what, label.value, ErrTOTPLabel)
		}
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      t.Issuer,
		AccountName: accountName,
		Period:      totpPeriod,
		SecretSize:  totpSecretSize,
		Digits:      totpDigits,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return Enrolment{}, fmt.Errorf("enrol TOTP: generate key: %w", err)
	}
	img, err := key.Image(qrCodeSize, qrCodeSize)
	if err != nil {
		return Enrolment{}, fmt.Errorf("enrol TOTP: QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrolment{}, fmt.Errorf("enrol TOTP: encode QR code: %w", err)
	}
	return Enrolment{Secret: key.Secret(), URI: key.URL(), QRCodePNG: buf.Bytes()}, nil
}

// Verify reports whether code is the secret's code of the current time step or of the one
// just before or after it, and which step it matched. The caller records that step
// (store.UseTOTPStep) so the same code, or an older one, cannot be used again.
//
// The code may hold spaces ("287 082"); anything but six ASCII digits then is refused, as is
// a secret that is not base32 of at least 128 bits. Every step of the window is computed and
// compared in constant time, whatever matches, so the time taken says nothing about the
// code. Should a code match two steps (one chance in a million), the later step is
// returned: recording it refuses a replay of that code for the whole window.
func (t TOTP) Verify(secret, code string) (step int64, ok bool) {
	code, ok = normaliseTOTPCode(code)
	if !ok {
		return 0, false
	}
	secret, ok = canonicalTOTPSecret(secret)
	if !ok {
		return 0, false
	}
	current := floorDiv(t.now().Unix(), totpPeriod)
	opts := hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}
	ok = false
	for s := current - totpSkew; s <= current+totpSkew; s++ {
		if s < 0 {
			continue // before 1970: no such step
		}
		// RFC 6238's TOTP is HOTP with the time step as counter; passing the step itself,
		// not a time, keeps the arithmetic in integers.
		want, err := hotp.GenerateCodeCustom(secret, uint64(s), opts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step, ok = s, true
		}
	}
	return step, ok
}

func (t TOTP) now() time.Time {
	if t.Now == nil {
		return time.Now()
	}
	return t.Now()
}

// normaliseTOTPCode drops white space (apps show "287 082"; people paste it so) and
// accepts exactly six ASCII digits.
func normaliseTOTPCode(code string) (string, bool) {
	code = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, code)
	if len(code) != totpDigits.Length() {
		return "", false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return "", false
		}
	}
	return code, true
}

var totpSecretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// canonicalTOTPSecret returns the secret in upper-case base32 without padding, or false
// when it does not decode to at least totpMinSecret bytes.
func canonicalTOTPSecret(secret string) (string, bool) {
	secret = strings.ToUpper(strings.TrimRight(strings.TrimSpace(secret), "="))
	raw, err := totpSecretEncoding.DecodeString(secret)
	if err != nil || len(raw) < totpMinSecret {
		return "", false
	}
	return secret, true
}

// floorDiv rounds towards minus infinity, as RFC 6238's floor((T - T0) / X) does; Go's /
// truncates towards zero.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// recoveryCodeLength is 10 base32 characters: 50 random bits, shown as "xxxxx-xxxxx".
const (
	recoveryCodeLength = 10
	maxRecoveryCodes   = 100
)

// NewRecoveryCodes returns n distinct one-time recovery codes, each 10 random base32
// characters shown lower-case as "xxxxx-xxxxx". The caller shows them once and stores only
// their hashes (Sealer.RecoveryHashes).
func NewRecoveryCodes(n int) ([]string, error) {
	if n < 1 || n > maxRecoveryCodes {
		return nil, fmt.Errorf("new recovery codes: want between 1 and %d, got %d", maxRecoveryCodes, n)
	}
	codes := make([]string, 0, n)
	seen := make(map[string]bool, n)
	for len(codes) < n {
		// rand.Text is 26 uniform base32 characters; any 10 of them are 50 uniform bits.
		raw := strings.ToLower(rand.Text()[:recoveryCodeLength])
		if seen[raw] {
			continue // a clash of 50-bit values: vanishingly rare, but two equal codes would share one hash
		}
		seen[raw] = true
		codes = append(codes, raw[:5]+"-"+raw[5:])
	}
	return codes, nil
}
