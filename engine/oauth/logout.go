package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/callgate/callgate/engine/jwk"
	"github.com/callgate/callgate/engine/script"
)

// Single logout with an OpenID Connect provider, the client's half: the claim that ties a
// gateway session to the provider session it was started from, the validation of the
// provider's Back-Channel Logout tokens (OpenID Connect Back-Channel Logout 1.0), and the
// provider's end_session_endpoint URL for RP-Initiated Logout. Revoking the sessions a
// logout token names is the engine's and the guard's job: this package only says which.

// SessionClaim is the session-token claim where the gateway keeps the provider session a
// session was started from ({provider, sub, sid}, and idToken when the provider ends its
// session through end_session_endpoint), for providers with `logout` on. The revocation
// check reads it on every decode; like Claim it belongs to the core, which puts it back
// after every jwt call.
const SessionClaim = "oidc_session"

// BackchannelLogoutEvent is the member of a logout token's events claim that makes it one.
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutTokenMaxAge bounds how long ago a logout token may have been issued (its iat), and
// LogoutTokenSkew how far in the future, for providers whose clock runs ahead. A replayed
// token is refused by its jti for as long as its iat is acceptable: LogoutTokenJTITTL.
const (
	LogoutTokenMaxAge = 5 * time.Minute
	LogoutTokenSkew   = time.Minute
	LogoutTokenJTITTL = LogoutTokenMaxAge + LogoutTokenSkew
)

// logoutTokenAlgorithms are the signature algorithms a logout token's header may name
// before the provider's verifier checks the signature with the provider's own list. No
// "none" and no HMAC: a logout token is signed with the provider's published keys.
var logoutTokenAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// ProviderSession is the provider session a gateway session was started from, as the ID
// token of the sign-in named it.
type ProviderSession struct {
	Provider string // the provider's id in the configuration
	Subject  string // the ID token's sub
	SID      string // the ID token's sid; empty when the provider sends none
	// IDToken is the raw ID token, kept only for providers with logout.endSession: it is
	// the id_token_hint of the end-session redirect.
	IDToken string
}

// Claim is the session-token claim value of s (SessionClaim).
func (s ProviderSession) Claim() map[string]any {
	c := map[string]any{"provider": s.Provider, "sub": s.Subject}
	if s.SID != "" {
		c["sid"] = s.SID
	}
	if s.IDToken != "" {
		c["idToken"] = s.IDToken
	}
	return c
}

// ProviderSessionOf reads SessionClaim from decoded session-token claims; ok is false when
// the token has none (or a malformed one: the claim is the core's, a script cannot forge
// it into the encrypted token, but an old one may lack fields).
func ProviderSessionOf(claims map[string]any) (ProviderSession, bool) {
	c, _ := claims[SessionClaim].(map[string]any)
	if c == nil {
		return ProviderSession{}, false
	}
	var s ProviderSession
	s.Provider, _ = c["provider"].(string)
	s.Subject, _ = c["sub"].(string)
	s.SID, _ = c["sid"].(string)
	s.IDToken, _ = c["idToken"].(string)
	if s.Provider == "" || (s.Subject == "" && s.SID == "") {
		return ProviderSession{}, false
	}
	return s, true
}

// sessionOf is the provider session named by a sign-in's verified ID token claims, for a
// provider with logout on; nil otherwise.
func sessionOf(p script.Provider, idClaims map[string]any, rawIDToken string) *ProviderSession {
	if !p.OAuth.BackchannelLogout && !p.OAuth.EndSession {
		return nil
	}
	sub, _ := idClaims["sub"].(string)
	if sub == "" {
		return nil
	}
	s := &ProviderSession{Provider: p.ID, Subject: sub}
	s.SID, _ = idClaims["sid"].(string)
	if p.OAuth.EndSession {
		s.IDToken = rawIDToken
	}
	return s
}

// LogoutToken is a validated Back-Channel Logout token: at least one of Subject and SID
// is set.
type LogoutToken struct {
	Subject  string
	SID      string
	JTI      string
	IssuedAt time.Time
}

// InvalidLogoutTokenError is a logout token the gateway refuses: the provider (or whoever
// sent it) gets 400 with Reason, as the specification asks.
type InvalidLogoutTokenError struct{ Reason string }

func (e *InvalidLogoutTokenError) Error() string { return "invalid logout token: " + e.Reason }

func invalidLogout(format string, args ...any) error {
	return &InvalidLogoutTokenError{Reason: fmt.Sprintf(format, args...)}
}

// VerifyLogoutToken validates raw as a Back-Channel Logout token of p (section 2.6 of the
// specification): a JWS (never "none", never HMAC) whose typ, when present, is logout+jwt
// or JWT; signed by a key of the provider's JWKS; iss the provider's issuer; aud holding
// the client id; iat within LogoutTokenMaxAge (and at most LogoutTokenSkew ahead); exp, when
// present, not passed; a jti; an events claim holding BackchannelLogoutEvent with an object
// value; sub or sid; and no nonce, so that an ID token can never pass for a logout token.
// The jti's replay check is the caller's: it needs the store.
//
// A refused token is *InvalidLogoutTokenError; any other error is the gateway's (the
// provider's metadata or keys could not be read), which the provider may retry.
func (c *Client) VerifyLogoutToken(ctx context.Context, p script.Provider, raw string) (LogoutToken, error) {
	if raw == "" {
		return LogoutToken{}, invalidLogout("the logout_token parameter is missing")
	}
	jws, err := jose.ParseSigned(raw, logoutTokenAlgorithms)
	if err != nil {
		return LogoutToken{}, invalidLogout("not a signed JWT with an asymmetric algorithm: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return LogoutToken{}, invalidLogout("want exactly one signature, got %d", len(jws.Signatures))
	}
	if typ, ok := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); ok {
		switch strings.TrimPrefix(strings.ToLower(typ), "application/") {
		case "logout+jwt", "jwt":
		default:
			return LogoutToken{}, invalidLogout("typ %q is not logout+jwt", typ)
		}
	}
	ep, err := c.endpointsFor(ctx, p)
	if err != nil {
		return LogoutToken{}, err
	}
	if ep.logoutVerifier == nil {
		return LogoutToken{}, errors.New("the provider has no discovery document to check logout tokens against")
	}
	vctx, cancel := context.WithTimeout(c.ctx(ctx), providerHTTPTimeout)
	defer cancel()
	// go-oidc reports a key set's errors as text, so the keys are asked first. Keys that
	// cannot be fetched, or a key the provider has published since the last fetch (the
	// set refetches at most every 30 s, whatever the tokens posted here name), are the
	// gateway's trouble: the provider is told to try again, not that its token is bad.
	switch err := ep.keys.Check(vctx, raw); {
	case errors.Is(err, jwk.ErrKeysUnavailable), errors.Is(err, jwk.ErrUnknownKey):
		return LogoutToken{}, fmt.Errorf("the key of the logout token: %w", err)
	case err != nil:
		return LogoutToken{}, invalidLogout("%v", err)
	}
	verified, err := ep.logoutVerifier.Verify(vctx, raw)
	if err != nil {
		return LogoutToken{}, invalidLogout("%v", err)
	}
	var claims struct {
		Sub    string                     `json:"sub"`
		SID    *string                    `json:"sid"`
		JTI    *string                    `json:"jti"`
		IAT    *json.Number               `json:"iat"`
		Exp    *json.Number               `json:"exp"`
		Events map[string]json.RawMessage `json:"events"`
		Nonce  json.RawMessage            `json:"nonce"`
	}
	if err := verified.Claims(&claims); err != nil {
		return LogoutToken{}, invalidLogout("claims: %v", err)
	}
	now := c.now()
	tok := LogoutToken{Subject: claims.Sub}
	switch {
	case claims.Nonce != nil:
		return LogoutToken{}, invalidLogout("a logout token must not have a nonce claim")
	case claims.Events == nil:
		return LogoutToken{}, invalidLogout("the events claim is missing")
	case claims.JTI == nil || *claims.JTI == "":
		return LogoutToken{}, invalidLogout("the jti claim is missing")
	case claims.IAT == nil:
		return LogoutToken{}, invalidLogout("the iat claim is missing")
	}
	event, ok := claims.Events[BackchannelLogoutEvent]
	if !ok {
		return LogoutToken{}, invalidLogout("the events claim has no %s member", BackchannelLogoutEvent)
	}
	var eventValue map[string]any
	if err := json.Unmarshal(event, &eventValue); err != nil || eventValue == nil {
		return LogoutToken{}, invalidLogout("the %s event must be a JSON object", BackchannelLogoutEvent)
	}
	if claims.SID != nil {
		tok.SID = *claims.SID
	}
	if tok.Subject == "" && tok.SID == "" {
		return LogoutToken{}, invalidLogout("neither sub nor sid is set")
	}
	tok.JTI = *claims.JTI
	iat, err := claims.IAT.Float64()
	if err != nil {
		return LogoutToken{}, invalidLogout("iat is not a number")
	}
	tok.IssuedAt = time.Unix(int64(iat), 0)
	if tok.IssuedAt.Before(now.Add(-LogoutTokenMaxAge)) || tok.IssuedAt.After(now.Add(LogoutTokenSkew)) {
		return LogoutToken{}, invalidLogout("iat %s is not within %s of now", tok.IssuedAt.UTC().Format(time.RFC3339), LogoutTokenMaxAge)
	}
	if claims.Exp != nil {
		exp, err := claims.Exp.Float64()
		if err != nil {
			return LogoutToken{}, invalidLogout("exp is not a number")
		}
		if !time.Unix(int64(exp), 0).After(now) {
			return LogoutToken{}, invalidLogout("the token expired at %s", time.Unix(int64(exp), 0).UTC().Format(time.RFC3339))
		}
	}
	return tok, nil
}

// EndSession is where a gateway sign-out sends the browser for a provider with
// logout.endSession: the provider's end_session_endpoint with client_id, the session's
// ID token as id_token_hint (when the session kept one) and postLogoutRedirect (already
// checked by the caller) as post_logout_redirect_uri, which goes only with the hint. ok is false when the provider's
// metadata names no end_session_endpoint, and then the sign-out ends at the gateway.
func (c *Client) EndSession(ctx context.Context, p script.Provider, s ProviderSession, postLogoutRedirect string) (target string, ok bool, err error) {
	ep, err := c.endpointsFor(ctx, p)
	if err != nil {
		return "", false, err
	}
	if ep.endSessionURL == "" {
		return "", false, nil
	}
	u, err := url.Parse(ep.endSessionURL)
	if err != nil {
		return "", false, fmt.Errorf("end_session_endpoint: %w", err)
	}
	q := u.Query()
	q.Set("client_id", p.OAuth.ClientID)
	// Providers may require the hint with a post_logout_redirect_uri (Hydra does, and
	// shows an error page otherwise), so without one the provider picks where to go.
	if s.IDToken != "" {
		q.Set("id_token_hint", s.IDToken)
		if postLogoutRedirect != "" {
			q.Set("post_logout_redirect_uri", postLogoutRedirect)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), true, nil
}
