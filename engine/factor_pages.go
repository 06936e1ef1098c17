package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
)

// factorView is what the factor pages (challenge.html, factors.html) show.
type factorView struct {
	// Passkey, TOTP and Recovery are the factors the challenge page offers; on the manage
	// page, Passkey and TOTP say which kinds the config turns on.
	Passkey, TOTP, Recovery bool
	// Enrol is a pending sign-in whose user has none of the kinds its policy accepts: the
	// page offers to enrol one (Passkey, TOTP say which), which completes the sign-in.
	Enrol bool
	// StepUp is a signed-in user proving a factor again for a route that asks for it.
	StepUp            bool
	Passkeys          []passkeyView
	TOTPEnrolled      bool
	RecoveryRemaining int
}

// passkeyView is one passkey as the pages and GET /factors/list show it.
type passkeyView struct {
	ID         string `json:"id"` // base64url of the credential ID
	Name       string `json:"name"`
	CreatedAt  string `json:"createdAt"`
	LastUsedAt string `json:"lastUsedAt,omitempty"` // "" until first used
}

// factorMessages are the factor pages' texts for their error codes.
var factorMessages = map[string]string{
	"SecondFactorFailed":      "That code or key was not accepted. Try again.",
	"SecondFactorExpired":     "The sign-in took too long. Sign in again.",
	"SecondFactorLimit":       "Too many attempts. Try again later.",
	"SecondFactorNotEnrolled": "This page needs a passkey or an authenticator app, and you have none of those it accepts. Add one under your sign-in methods first.",
}

// renderFactorPage renders challenge.html or factors.html. The pages run the gateway's
// own script (assets/factor.js), which their CSP allows and nothing else.
func (pg *pages) renderFactorPage(a *authRequest, name, title, callbackURL, errCode string, v *factorView) response {
	d := pg.basePage(a, title)
	d.CallbackURL = callbackURL
	if errCode != "" {
		msg, ok := factorMessages[errCode]
		if !ok {
			msg = "Unable to verify it's you."
		}
		d.Error = msg
	}
	d.Factor = v
	res := htmlResponse(http.StatusOK, pg.render(name+".html", d))
	res.scripted = true
	return res
}

// factorScript is GET /assets/factor.js: the factor pages' script, embedded. Browsers
// revalidate it on every use (no-cache, with an ETag of its content), so a new gateway's
// script takes effect at once, and an unchanged one costs a 304.
func (pg *pages) factorScript(a *authRequest) response {
	b, err := pageFiles.ReadFile("pages/factor.js")
	if err != nil {
		return textResponse(http.StatusNotFound, "Not Found")
	}
	pg.scriptOnce.Do(func() {
		sum := sha256.Sum256(b)
		pg.scriptETag = `"` + hex.EncodeToString(sum[:16]) + `"`
	})
	header := map[string]string{"Cache-Control": "no-cache", "ETag": pg.scriptETag}
	if a.r.Header.Get("If-None-Match") == pg.scriptETag {
		return response{status: http.StatusNotModified, header: header, withoutInitCookies: true}
	}
	return response{status: http.StatusOK, contentType: "text/javascript; charset=utf-8", body: b, header: header, withoutInitCookies: true}
}
