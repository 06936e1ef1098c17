package script

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/callgate/callgate/engine/oauth/presets"
	"github.com/dop251/goja"
)

// OAuthProvider is the OAuth 2 / OpenID Connect part of a provider, read from the auth
// config the way NextAuth v4 reads it. Endpoints may be given explicitly or discovered from
// Issuer (or WellKnown); explicit ones win over discovered ones.
type OAuthProvider struct {
	// Issuer is the OpenID Connect issuer; discovery reads Issuer + "/.well-known/openid-configuration".
	Issuer string
	// WellKnown is an explicit discovery document URL, used instead of the issuer's.
	WellKnown string
	// AuthorizationURL and AuthorizationParams build the redirect to the provider
	// (`authorization: {url, params}`); params include scope.
	AuthorizationURL    string
	AuthorizationParams map[string]string
	// TokenURL is where the code (and a refresh token) is exchanged.
	TokenURL string
	// UserinfoURL is read for the profile when there is no ID token to read it from.
	UserinfoURL string
	// UserinfoEmailsURL (`userinfo: {emails}`, set by the GitHub preset) lists the user's
	// e-mail addresses in GitHub's /user/emails shape. It is read when the userinfo
	// response has no email, as with a GitHub account whose address is private.
	UserinfoEmailsURL string
	// ClientID and ClientSecret identify the gateway at the provider.
	ClientID     string
	ClientSecret string
	// TokenAuthMethod is "client_secret_basic" (default) or "client_secret_post"
	// (`client: {token_endpoint_auth_method}`).
	TokenAuthMethod string
	// Checks are the protections the flow uses: any of "state", "pkce", "nonce".
	Checks []string
	// IDToken is true when the profile comes from the validated ID token (type "oidc", or
	// `idToken: true`); the ID token is then required.
	IDToken bool
	// HasProfile is true when the provider defines profile(profile, tokens).
	HasProfile bool
	// AllowDangerousEmailAccountLinking links a new provider account to an existing user
	// with the same e-mail instead of refusing with OAuthAccountNotLinked.
	AllowDangerousEmailAccountLinking bool
	// Refresh turns on gateway-owned access-token refresh (`refresh: true` or
	// `refresh: {gracePeriod: seconds}`).
	Refresh bool
	// RefreshGrace is how long a session lives past the access token's expiry while the
	// provider cannot be reached for a refresh; default 5 minutes.
	RefreshGrace time.Duration
	// BackchannelLogout (`logout: {backchannel: true}`) accepts OpenID Connect Back-Channel
	// Logout tokens from the provider at /api/auth/backchannel-logout/<id>: signing out at
	// the provider ends the gateway sessions started from that provider session.
	BackchannelLogout bool
	// EndSession (`logout: {endSession: true}`) sends the browser on through the provider's
	// end_session_endpoint after a gateway sign-out (OpenID Connect RP-Initiated Logout), so
	// signing out of the gateway signs out of the provider too.
	EndSession bool
}

// HasCheck reports whether the provider uses check ("state", "pkce" or "nonce").
func (o *OAuthProvider) HasCheck(check string) bool {
	for _, c := range o.Checks {
		if c == check {
			return true
		}
	}
	return false
}

// defaultRefreshGrace is how long a session outlives its access token while refreshes fail
// for reasons other than the provider revoking the grant.
const defaultRefreshGrace = 5 * time.Minute

// Profile runs profile(profile, tokens) of the OAuth provider providerID and returns the
// user it makes. It is an error to call it for a provider without a profile function.
func (g *Generation) Profile(ctx context.Context, providerID string, profile, tokens map[string]any) (user map[string]any, err error) {
	const name = NameProfile
	defer recoverInto(name, &err)
	fnName := "profile:" + providerID
	if !g.has[fnName] {
		return nil, &Error{Callback: name, Kind: KindInternal, Message: fmt.Sprintf("no OAuth provider %q with a profile function", providerID)}
	}
	res, err := g.invoke(ctx, laneSignIn, name, fnName, nil, nil, func(v *vm, _ Object) []goja.Value {
		return []goja.Value{v.toJS(profile), v.toJS(tokens)}
	}, func(v *vm, _ string, val goja.Value) (any, error) {
		return v.exportObject(name, val, "a user object")
	})
	if err != nil {
		return nil, err
	}
	out, ok := res.(map[string]any)
	if !ok {
		return nil, invalidResult(name, "a user object", "null")
	}
	return out, nil
}

// readOAuthProvider validates an "oauth" or "oidc" provider. Errors name the provider by
// where it sits in the providers array.
func (g *Generation) readOAuthProvider(v *vm, o *goja.Object, where, typ string) (Provider, error) {
	p := Provider{Type: typ, Name: "OAuth"}
	if typ == "oidc" {
		p.Name = "OpenID Connect"
	}
	for key, t := range map[string]*string{"id": &p.ID, "name": &p.Name} {
		s, err := g.optionalString(v, o, where+"."+key, key)
		if err != nil {
			return Provider{}, err
		}
		if s != "" {
			*t = s
		}
	}
	if p.ID == "" {
		return Provider{}, g.configError("%s.id is required: it names the provider in /api/auth/signin/<id> and /api/auth/callback/<id>", where)
	}
	op := &OAuthProvider{IDToken: typ == "oidc", RefreshGrace: defaultRefreshGrace}
	for key, t := range map[string]*string{
		"issuer": &op.Issuer, "wellKnown": &op.WellKnown, "clientId": &op.ClientID, "clientSecret": &op.ClientSecret,
	} {
		s, err := g.optionalString(v, o, where+"."+key, key)
		if err != nil {
			return Provider{}, err
		}
		*t = s
	}
	var err error
	if op.AuthorizationURL, op.AuthorizationParams, err = g.endpoint(v, o, where, "authorization"); err != nil {
		return Provider{}, err
	}
	if op.TokenURL, _, err = g.endpoint(v, o, where, "token"); err != nil {
		return Provider{}, err
	}
	if op.UserinfoURL, _, err = g.endpoint(v, o, where, "userinfo"); err != nil {
		return Provider{}, err
	}
	if ui, ok := o.Get("userinfo").(*goja.Object); ok && v.typeOf(ui) == "object" {
		if op.UserinfoEmailsURL, err = g.optionalString(v, ui, where+".userinfo.emails", "emails"); err != nil {
			return Provider{}, err
		}
	}
	for _, u := range []struct{ key, val string }{
		{"issuer", op.Issuer}, {"wellKnown", op.WellKnown}, {"authorization.url", op.AuthorizationURL},
		{"token.url", op.TokenURL}, {"userinfo.url", op.UserinfoURL}, {"userinfo.emails", op.UserinfoEmailsURL},
	} {
		if u.val != "" && !httpURL(u.val) {
			return Provider{}, g.configError("%s.%s must be an absolute http(s) URL, got %q", where, u.key, u.val)
		}
	}
	if op.ClientID == "" {
		return Provider{}, g.configError("%s.clientId is required (set it from process.env, e.g. clientId: process.env.%s_ID)", where, strings.ToUpper(strings.ReplaceAll(p.ID, "-", "_")))
	}
	if b := o.Get("idToken"); !isNullish(b) {
		flag, ok := b.Export().(bool)
		if !ok {
			return Provider{}, g.configError("%s.idToken must be a boolean, got %s", where, v.typeOf(b))
		}
		op.IDToken = op.IDToken || flag
	}
	discovered := op.Issuer != "" || op.WellKnown != ""
	switch {
	case op.IDToken && !discovered:
		return Provider{}, g.configError("%s needs issuer or wellKnown: ID tokens are checked against the issuer's keys", where)
	case !discovered && (op.AuthorizationURL == "" || op.TokenURL == ""):
		return Provider{}, g.configError("%s needs authorization and token URLs (or an issuer to discover them)", where)
	case !op.IDToken && !discovered && op.UserinfoURL == "":
		return Provider{}, g.configError("%s needs a userinfo URL to read the profile from", where)
	}
	if op.Checks, err = g.checks(v, o, where); err != nil {
		return Provider{}, err
	}
	if op.HasCheck("nonce") && !op.IDToken {
		return Provider{}, g.configError(`%s.checks has "nonce", which needs an ID token (type "oidc" or idToken: true)`, where)
	}
	if c, err := g.optionalObject(v, o, "client"); err != nil {
		return Provider{}, g.configError("%s.client must be an object, got %s", where, v.typeOf(o.Get("client")))
	} else if c != nil {
		s, err := g.optionalString(v, c, where+".client.token_endpoint_auth_method", "token_endpoint_auth_method")
		if err != nil {
			return Provider{}, err
		}
		switch s {
		case "", "client_secret_basic", "client_secret_post":
			op.TokenAuthMethod = s
		default:
			return Provider{}, g.configError(`%s.client.token_endpoint_auth_method must be "client_secret_basic" or "client_secret_post", got %q`, where, s)
		}
	}
	if val := o.Get("profile"); !isNullish(val) {
		if _, ok := goja.AssertFunction(val); !ok {
			return Provider{}, g.configError("%s.profile must be a function, got %s", where, v.typeOf(val))
		}
		op.HasProfile = true
	}
	if b := o.Get("allowDangerousEmailAccountLinking"); !isNullish(b) {
		flag, ok := b.Export().(bool)
		if !ok {
			return Provider{}, g.configError("%s.allowDangerousEmailAccountLinking must be a boolean, got %s", where, v.typeOf(b))
		}
		op.AllowDangerousEmailAccountLinking = flag
	}
	if err := g.refreshOption(v, o, where, op); err != nil {
		return Provider{}, err
	}
	if err := g.logoutOption(v, o, where, op); err != nil {
		return Provider{}, err
	}
	p.OAuth = op
	return p, nil
}

// endpoint reads `key: "url"` or `key: {url, params}`.
func (g *Generation) endpoint(v *vm, o *goja.Object, where, key string) (string, map[string]string, error) {
	val := o.Get(key)
	if isNullish(val) {
		return "", nil, nil
	}
	if s, ok := val.Export().(string); ok && !isObject(val) {
		return s, nil, nil
	}
	obj, ok := val.(*goja.Object)
	if !ok || v.typeOf(val) != "object" {
		return "", nil, g.configError("%s.%s must be a URL string or {url, params}, got %s", where, key, v.typeOf(val))
	}
	u, err := g.optionalString(v, obj, where+"."+key+".url", "url")
	if err != nil {
		return "", nil, err
	}
	po, err := g.optionalObject(v, obj, "params")
	if err != nil {
		return "", nil, g.configError("%s.%s.params must be an object, got %s", where, key, v.typeOf(obj.Get("params")))
	}
	var params map[string]string
	if po != nil {
		params = map[string]string{}
		for _, k := range po.Keys() {
			pv := po.Get(k)
			if isNullish(pv) {
				continue
			}
			if isObject(pv) {
				return "", nil, g.configError("%s.%s.params.%s must be a string, number or boolean, got %s", where, key, k, v.typeOf(pv))
			}
			params[k] = pv.String()
		}
	}
	return u, params, nil
}

// checks reads `checks`, NextAuth's list (or single string) of "state", "pkce", "nonce",
// "none". The provider modules set a default; a hand-written provider without one gets
// NextAuth's ["state"].
func (g *Generation) checks(v *vm, o *goja.Object, where string) ([]string, error) {
	val := o.Get("checks")
	if isNullish(val) {
		return []string{"state"}, nil
	}
	var raw []any
	switch x := val.Export().(type) {
	case string:
		raw = []any{x}
	case []any:
		raw = x
	default:
		return nil, g.configError(`%s.checks must be an array of "state", "pkce", "nonce" or "none", got %s`, where, v.typeOf(val))
	}
	out := []string{}
	for _, c := range raw {
		s, _ := c.(string)
		switch s {
		case "state", "pkce", "nonce":
			out = append(out, s)
		case "none":
		default:
			return nil, g.configError(`%s.checks may hold only "state", "pkce", "nonce" or "none", got %v`, where, c)
		}
	}
	return out, nil
}

// refreshOption reads callgate's `refresh: true | {gracePeriod: seconds}`.
func (g *Generation) refreshOption(v *vm, o *goja.Object, where string, op *OAuthProvider) error {
	val := o.Get("refresh")
	if isNullish(val) {
		return nil
	}
	if b, ok := val.Export().(bool); ok && !isObject(val) {
		op.Refresh = b
		return nil
	}
	obj, ok := val.(*goja.Object)
	if !ok || v.typeOf(val) != "object" {
		return g.configError("%s.refresh must be a boolean or {gracePeriod: seconds}, got %s", where, v.typeOf(val))
	}
	op.Refresh = true
	gp := obj.Get("gracePeriod")
	if isNullish(gp) {
		return nil
	}
	f := gp.ToFloat()
	if v.typeOf(gp) != "number" || math.IsNaN(f) || f < 0 || f > 86400 {
		return g.configError("%s.refresh.gracePeriod must be a number of seconds between 0 and 86400, got %v", where, gp)
	}
	op.RefreshGrace = time.Duration(f * float64(time.Second))
	return nil
}

// logoutOption reads `logout: {backchannel, endSession}`. Both work from the provider's
// session as its ID token names it (sid, sub), so both need an ID token.
func (g *Generation) logoutOption(v *vm, o *goja.Object, where string, op *OAuthProvider) error {
	val := o.Get("logout")
	if isNullish(val) {
		return nil
	}
	obj, ok := val.(*goja.Object)
	if !ok || v.typeOf(val) != "object" {
		return g.configError("%s.logout must be an object {backchannel, endSession}, got %s", where, v.typeOf(val))
	}
	for _, key := range obj.Keys() {
		var flag *bool
		switch key {
		case "backchannel":
			flag = &op.BackchannelLogout
		case "endSession":
			flag = &op.EndSession
		default:
			return g.configError("%s.logout.%s is not an option: use backchannel or endSession", where, key)
		}
		b := obj.Get(key)
		if isNullish(b) {
			continue
		}
		set, ok := b.Export().(bool)
		if !ok || isObject(b) {
			return g.configError("%s.logout.%s must be a boolean, got %s", where, key, v.typeOf(b))
		}
		*flag = set
	}
	if (op.BackchannelLogout || op.EndSession) && !op.IDToken {
		return g.configError(`%s.logout needs an ID token (type "oidc" or idToken: true): the provider's session is named by its ID token`, where)
	}
	return nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// builtinSource returns the source of the built-in module named path: one of builtinModules,
// or a provider module "callgate/providers/<name>" from engine/oauth/presets.
func builtinSource(path string) (string, bool) {
	if src, ok := builtinModules[path]; ok {
		return src, true
	}
	name, ok := strings.CutPrefix(path, presets.ModulePrefix)
	if !ok {
		return "", false
	}
	return presets.Source(name)
}
