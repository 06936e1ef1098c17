package script

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/dop251/goja"

	"github.com/callgate/callgate/engine/urlpolicy"
)

// Known names. Unknown top-level keys, callbacks, events and pages are logged and ignored,
// as NextAuth ignores them (and kept as warnings, which `gateway check` reports); a known key
// with a value of the wrong type is a load error.
var (
	knownTopLevel = map[string]bool{
		"providers": true, "callbacks": true, "events": true, "pages": true,
		"session": true, "jwt": true, "theme": true, "useSecureCookies": true,
		"factors": true, // callgate's: second factors and passkeys (config_factors.go)
	}
	knownCallbacks = map[string]bool{"signIn": true, "redirect": true, "session": true, "jwt": true, "authorized": true}
	knownEvents    = map[string]bool{
		"signIn": true, "signOut": true, "createUser": true, "updateUser": true,
		"linkAccount": true, "session": true, "enrollFactor": true, "removeFactor": true,
	}
)

const (
	defaultSessionMaxAge = 30 * 24 * time.Hour
	defaultUpdateAge     = 24 * time.Hour
	defaultJWTMaxAge     = 30 * 24 * time.Hour
)

// configError is a validation failure, pointed at the option its message starts with (the
// entry's default export when the source does not spell it).
func (g *Generation) configError(format string, args ...any) *Error {
	e := &Error{Kind: KindInvalidResult, Name: "ConfigError", Message: fmt.Sprintf(format, args...)}
	// Most messages start with the option's name: point at it where the source spells it.
	e.File, e.Line, e.Column = g.bundle.findPath(keysOf(e.Message)...)
	e.SourceLine = g.bundle.sourceLine(e.File, e.Line)
	return e
}

// configObject finds the auth config among the entry's exports (findAuthOptions): the
// default export, a named `authOptions` export, or what a NextAuth route file exports.
func (g *Generation) configObject(v *vm) (*goja.Object, error) {
	exp, ok := v.exports.(*goja.Object)
	if !ok {
		return nil, g.configError("the entry %s has no exports", g.bundle.entry)
	}
	val := findAuthOptions(exp)
	if isNullish(val) {
		return nil, g.configError("%s must %s", g.bundle.entry, authConfigShapes)
	}
	o, ok := val.(*goja.Object)
	if !ok || v.typeOf(val) != "object" {
		return nil, g.configError("the default export must be an object, got %s", v.typeOf(val))
	}
	return o, nil
}

// ignored logs an option the gateway does not use and keeps it for Warnings, pointed at the
// option's key in the source when it can be found there.
func (g *Generation) ignored(name, msg string, attrs ...any) {
	g.logger.Warn(msg, append([]any{"code", "SCRIPT_OPTION_IGNORED", "name", name, "file", g.bundle.entry, "generation", g.shortHash()}, attrs...)...)
	e := &Error{Kind: KindInvalidResult, Name: "ConfigWarning", Message: fmt.Sprintf("%s: %s", name, msg), File: g.bundle.entry}
	e.File, e.Line, e.Column = g.bundle.findPath(keysOf(name)...)
	e.SourceLine = g.bundle.sourceLine(e.File, e.Line)
	g.warnings = append(g.warnings, e)
}

// Warnings are the options of the config the gateway ignores (unknown keys, callbacks,
// events and pages; options it replaces with its own): each was logged at load. They do not
// stop a load, as NextAuth ignores them too; `gateway check` reports them as mistakes.
func (g *Generation) Warnings() []*Error { return g.warnings }

// readConfig validates the default export of the load runtime and fills g.config. The
// sections are independent, so it reads them all and returns every problem (errors.Join);
// within a section, the first problem of an entry hides that entry's others.
func (g *Generation) readConfig(v *vm) error {
	cfg, err := g.configObject(v)
	if err != nil {
		return err
	}
	var errs []error
	fail := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, k := range cfg.Keys() {
		if !knownTopLevel[k] && !isNextAuthOption(k) {
			g.ignored(k, "unknown auth config key ignored")
		}
	}
	c := Config{
		Session: SessionOptions{Strategy: "jwt", MaxAge: defaultSessionMaxAge, UpdateAge: defaultUpdateAge},
		JWT:     JWTOptions{MaxAge: defaultJWTMaxAge},
		Theme:   Theme{ColorScheme: "auto"},
	}

	// providers
	pv := cfg.Get("providers")
	n := 0
	var list *goja.Object
	if v.typeOf(pv) != "array" {
		fail(g.configError("providers must be an array of providers, got %s", v.typeOf(pv)))
	} else {
		list = pv.(*goja.Object)
		if n = int(list.Get("length").ToInteger()); n == 0 {
			fail(g.configError("providers must not be empty"))
		}
	}
	seen := map[string]int{}
	passkey := -1
	for i := range n {
		p, err := g.readProvider(v, list.Get(fmt.Sprint(i)), i)
		if err != nil {
			fail(err)
			continue
		}
		if j, dup := seen[p.ID]; dup {
			fail(g.configError("providers[%d].id %q is already used by providers[%d]", i, p.ID, j))
			continue
		}
		seen[p.ID] = i
		if p.Type == "passkey" {
			// A user's passkeys belong to the gateway's one relying party, whatever the
			// provider is called: a second one would be the same credentials again.
			if passkey >= 0 {
				fail(g.configError("providers[%d] is a second passkey provider (providers[%d] is one): at most one is allowed", i, passkey))
				continue
			}
			passkey = i
		}
		c.Providers = append(c.Providers, p)
	}

	// callbacks and events: functions only
	for _, sec := range []struct {
		name  string
		known map[string]bool
	}{{"callbacks", knownCallbacks}, {"events", knownEvents}} {
		o, err := g.optionalObject(v, cfg, sec.name)
		if err != nil || o == nil {
			fail(err)
			continue
		}
		for _, k := range o.Keys() {
			if _, ok := goja.AssertFunction(o.Get(k)); !ok {
				fail(g.configError("%s.%s must be a function, got %s", sec.name, k, v.typeOf(o.Get(k))))
				continue
			}
			if !sec.known[k] {
				g.ignored(sec.name+"."+k, "unknown "+sec.name+" entry ignored")
			}
		}
	}

	// pages
	if o, err := g.optionalObject(v, cfg, "pages"); err != nil {
		fail(err)
	} else if o != nil {
		targets := map[string]*string{
			"signIn": &c.Pages.SignIn, "signOut": &c.Pages.SignOut, "error": &c.Pages.Error,
			"verifyRequest": &c.Pages.VerifyRequest, "newUser": &c.Pages.NewUser,
			"challenge": &c.Pages.Challenge, "factors": &c.Pages.Factors,
		}
		for _, k := range o.Keys() {
			s, err := g.optionalString(v, o, "pages."+k, k)
			if err != nil {
				fail(err)
				continue
			}
			if s == "" {
				continue
			}
			if !validPage(s) {
				fail(g.configError("pages.%s must be a path starting with / or an absolute http(s) URL, got %q", k, s))
				continue
			}
			if t, ok := targets[k]; ok {
				*t = s
			} else {
				g.ignored("pages."+k, "unknown page ignored")
			}
		}
	}

	// session
	if o, err := g.optionalObject(v, cfg, "session"); err != nil {
		fail(err)
	} else if o != nil {
		s, err := g.optionalString(v, o, "session.strategy", "strategy")
		fail(err)
		switch s {
		case "":
		case "jwt", "database":
			c.Session.Strategy = s
		default:
			fail(g.configError(`session.strategy must be "jwt" or "database", got %q`, s))
		}
		fail(g.optionalSeconds(v, o, "session.maxAge", "maxAge", &c.Session.MaxAge))
		fail(g.optionalSeconds(v, o, "session.updateAge", "updateAge", &c.Session.UpdateAge))
		fail(g.optionalSeconds(v, o, "session.absoluteMaxAge", "absoluteMaxAge", &c.Session.AbsoluteMaxAge))
	}

	// jwt
	if o, err := g.optionalObject(v, cfg, "jwt"); err != nil {
		fail(err)
	} else if o != nil {
		fail(g.optionalSeconds(v, o, "jwt.maxAge", "maxAge", &c.JWT.MaxAge))
		for _, k := range o.Keys() {
			switch k {
			case "maxAge":
			case "encode", "decode":
				// NextAuth's reason for a custom codec is most often a signed token the app
				// can read: the gateway has one, chosen where its keys are (the YAML file).
				g.ignored("jwt."+k, "jwt option ignored: the gateway encodes session tokens itself; for a signed JWT the app can read, set session.token.format: jws in the YAML config")
			default:
				g.ignored("jwt."+k, "jwt option ignored: tokens are encoded by the gateway")
			}
		}
	}

	// theme
	if o, err := g.optionalObject(v, cfg, "theme"); err != nil {
		fail(err)
	} else if o != nil {
		for k, t := range map[string]*string{
			"colorScheme": &c.Theme.ColorScheme, "brandColor": &c.Theme.BrandColor,
			"logo": &c.Theme.Logo, "buttonText": &c.Theme.ButtonText,
		} {
			s, err := g.optionalString(v, o, "theme."+k, k)
			if err != nil {
				fail(err)
				continue
			}
			if s != "" {
				*t = s
			}
		}
		switch c.Theme.ColorScheme {
		case "auto", "light", "dark":
		default:
			fail(g.configError(`theme.colorScheme must be "auto", "light" or "dark", got %q`, c.Theme.ColorScheme))
		}
	}

	// useSecureCookies
	if u := cfg.Get("useSecureCookies"); !isNullish(u) {
		b, ok := u.Export().(bool)
		if !ok {
			fail(g.configError("useSecureCookies must be a boolean, got %s", v.typeOf(u)))
		} else {
			c.UseSecureCookies = &b
		}
	}
	fail(g.readFactors(v, cfg, &c))
	for _, e := range g.readNextAuthOptions(v, cfg, &c) {
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		// The ignored options come last, so that the first error (what a refused reload
		// shows) is one that refused it; `gateway check` lists them all.
		for _, w := range g.warnings {
			errs = append(errs, w)
		}
		return errors.Join(errs...)
	}
	g.config = c
	return nil
}

// readProvider validates providers[i].
func (g *Generation) readProvider(v *vm, val goja.Value, i int) (Provider, error) {
	o, ok := val.(*goja.Object)
	if !ok || v.typeOf(val) != "object" {
		return Provider{}, g.configError("providers[%d] must be a provider object (such as Credentials({...})), got %s", i, v.typeOf(val))
	}
	where := fmt.Sprintf("providers[%d]", i)
	typ, err := g.optionalString(v, o, where+".type", "type")
	if err != nil {
		return Provider{}, err
	}
	switch typ {
	case "oauth", "oidc":
		return g.readOAuthProvider(v, o, where, typ)
	case "passkey":
		return g.readNamedProvider(v, o, where, Provider{Type: typ, ID: "passkey", Name: "Passkey"})
	case "email":
		return g.readEmailProvider(v, o, where)
	case "credentials":
	default:
		return Provider{}, g.configError(`%s.type must be "credentials", "email", "passkey", "oauth" or "oidc", got %q`, where, typ)
	}
	p, err := g.readNamedProvider(v, o, where, Provider{Type: typ, ID: "credentials", Name: "Credentials"})
	if err != nil {
		return Provider{}, err
	}
	if _, ok := goja.AssertFunction(o.Get("authorize")); !ok {
		return Provider{}, g.configError("%s.authorize must be a function, got %s", where, v.typeOf(o.Get("authorize")))
	}
	creds, err := g.optionalObject(v, o, "credentials")
	if err != nil {
		return Provider{}, g.configError("%s.credentials must be an object of fields, got %s", where, v.typeOf(o.Get("credentials")))
	}
	if creds != nil {
		for _, k := range creds.Keys() {
			fv := creds.Get(k)
			fo, ok := fv.(*goja.Object)
			fw := where + ".credentials." + k
			if !ok || v.typeOf(fv) != "object" {
				return Provider{}, g.configError("%s must be an object like {label, type, placeholder}, got %s", fw, v.typeOf(fv))
			}
			f := CredentialField{Name: k}
			for attr, t := range map[string]*string{"label": &f.Label, "type": &f.Type, "placeholder": &f.Placeholder} {
				s, err := g.optionalString(v, fo, fw+"."+attr, attr)
				if err != nil {
					return Provider{}, err
				}
				*t = s
			}
			p.Credentials = append(p.Credentials, f)
		}
	}
	return p, nil
}

// readNamedProvider reads a provider's id and name over the defaults in p. A passkey
// provider has nothing else the script host checks: its WebAuthn settings (relying party,
// origins) come from the gateway's public URL, not from the script.
func (g *Generation) readNamedProvider(v *vm, o *goja.Object, where string, p Provider) (Provider, error) {
	if s, err := g.optionalString(v, o, where+".id", "id"); err != nil {
		return Provider{}, err
	} else if s != "" {
		p.ID = s
	}
	if s, err := g.optionalString(v, o, where+".name", "name"); err != nil {
		return Provider{}, err
	} else if s != "" {
		p.Name = s
	}
	return p, nil
}

// optionalObject returns o[key] as an object, nil when it is absent.
func (g *Generation) optionalObject(v *vm, o *goja.Object, key string) (*goja.Object, error) {
	val := o.Get(key)
	if isNullish(val) {
		return nil, nil
	}
	obj, ok := val.(*goja.Object)
	if !ok || v.typeOf(val) != "object" {
		return nil, g.configError("%s must be an object, got %s", key, v.typeOf(val))
	}
	return obj, nil
}

// optionalString returns o[key] as a string, "" when it is absent.
func (g *Generation) optionalString(v *vm, o *goja.Object, where, key string) (string, error) {
	val := o.Get(key)
	if isNullish(val) {
		return "", nil
	}
	s, ok := val.Export().(string)
	if !ok || isObject(val) {
		return "", g.configError("%s must be a string, got %s", where, v.typeOf(val))
	}
	return s, nil
}

// optionalSeconds reads a positive number of seconds into d, leaving d alone when absent.
func (g *Generation) optionalSeconds(v *vm, o *goja.Object, where, key string, d *time.Duration) error {
	val := o.Get(key)
	if isNullish(val) {
		return nil
	}
	if v.typeOf(val) != "number" {
		return g.configError("%s must be a number of seconds, got %s", where, v.typeOf(val))
	}
	f := val.ToFloat()
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > math.MaxInt64/float64(time.Second) {
		return g.configError("%s must be a positive number of seconds, got %v", where, val)
	}
	*d = time.Duration(f * float64(time.Second))
	return nil
}

// validPage is the redirect rule of every other URL (urlpolicy): a page is where the
// gateway sends browsers, so it may not hold text a browser would read as another URL.
func validPage(s string) bool {
	if urlpolicy.Relative(s) {
		return true
	}
	_, ok := urlpolicy.ParseAbsolute(s)
	return ok
}

// bind collects the runtime's callables. The first runtime's set becomes Has and Defines.
func (v *vm) bind() error {
	g := v.gen
	cfg, err := g.configObject(v)
	if err != nil {
		return err
	}
	v.fns = map[string]boundFn{}
	if list, ok := cfg.Get("providers").(*goja.Object); ok {
		n := int(list.Get("length").ToInteger())
		for i := range n {
			po, ok := list.Get(fmt.Sprint(i)).(*goja.Object)
			if !ok {
				continue
			}
			id := "credentials"
			// Get is nil for a provider written without an id ({type: "credentials", ...}).
			if idv := po.Get("id"); !isNullish(idv) {
				if s, ok := idv.Export().(string); ok && s != "" {
					id = s
				}
			}
			if fn, ok := goja.AssertFunction(po.Get("authorize")); ok {
				v.fns["authorize:"+id] = boundFn{fn: fn, this: po}
			}
			if fn, ok := goja.AssertFunction(po.Get("profile")); ok {
				v.fns["profile:"+id] = boundFn{fn: fn, this: po}
			}
			if fn, ok := goja.AssertFunction(po.Get("sendVerificationRequest")); ok {
				v.fns["sendVerificationRequest:"+id] = boundFn{fn: fn, this: po}
			}
		}
	}
	for _, sec := range []string{"callbacks", "events"} {
		o, ok := cfg.Get(sec).(*goja.Object)
		if !ok {
			continue
		}
		for _, k := range o.Keys() {
			if fn, ok := goja.AssertFunction(o.Get(k)); ok {
				v.fns[sec+"."+k] = boundFn{fn: fn, this: o}
			}
		}
	}
	if g.has == nil {
		g.has = make(map[string]bool, len(v.fns))
		for k := range v.fns {
			g.has[k] = true
		}
		g.fillDefines(v.fns)
	}
	return nil
}
