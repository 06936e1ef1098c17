package script

import (
	"context"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"strconv"
	"time"

	"github.com/dop251/goja"
)

// NameSendVerificationRequest is the name an e-mail provider's own sendVerificationRequest
// is reported under (Error.Callback, Observer.ObserveCall, Timeouts.PerCallback).
const NameSendVerificationRequest = "sendVerificationRequest"

// defaultEmailMaxAge is how long a sign-in link stays valid: NextAuth's 24 hours.
const defaultEmailMaxAge = 24 * time.Hour

// EmailProvider is what an "email" provider adds to Provider (NextAuth's Email provider).
type EmailProvider struct {
	// From is the sender, an RFC 5322 address ("Example <no-reply@example.com>").
	From string
	// MaxAge is how long a sign-in link stays valid; default 24 hours.
	MaxAge time.Duration
	// Server is where the default sender delivers the message.
	Server EmailServer
	// Secret, when set, replaces the auth secret in the stored token's hash, as NextAuth's
	// provider.secret does.
	Secret string
	// Send reports whether the script defines sendVerificationRequest: the gateway then
	// calls it instead of sending through Server.
	Send bool
}

// EmailServer is the SMTP server of the default sender, from the provider's server option:
// a URL ("smtp://user:pass@host:587", "smtps://…" for TLS from the first byte) or
// nodemailer's object ({host, port, auth: {user, pass}, secure}).
type EmailServer struct {
	Host     string
	Port     int
	User     string
	Password string
	// Secure is TLS from the first byte (port 465, smtps). Otherwise the connection is
	// upgraded with STARTTLS whenever the server offers it, as nodemailer does.
	Secure bool
}

// readEmailProvider validates an "email" provider. Errors name the provider by where it
// sits in the providers array.
func (g *Generation) readEmailProvider(v *vm, o *goja.Object, where string) (Provider, error) {
	p := Provider{Type: "email", ID: "email", Name: "Email"}
	ep := &EmailProvider{MaxAge: defaultEmailMaxAge, Server: EmailServer{Host: "localhost", Port: 25}}
	for key, dst := range map[string]*string{"id": &p.ID, "name": &p.Name, "from": &ep.From, "secret": &ep.Secret} {
		s, err := g.optionalString(v, o, where+"."+key, key)
		if err != nil {
			return Provider{}, err
		}
		if s != "" {
			*dst = s
		}
	}
	if ep.From == "" {
		return Provider{}, g.configError("%s.from is required: the sender address of the sign-in e-mail", where)
	}
	if _, err := mail.ParseAddress(ep.From); err != nil {
		return Provider{}, g.configError("%s.from %q is not an e-mail address: %v", where, ep.From, err)
	}
	if val := o.Get("maxAge"); !isNullish(val) {
		f := val.ToFloat()
		if v.typeOf(val) != "number" || math.IsNaN(f) || f <= 0 || f > math.MaxInt64/float64(time.Second) {
			return Provider{}, g.configError("%s.maxAge must be a positive number of seconds, got %v", where, val)
		}
		ep.MaxAge = time.Duration(f * float64(time.Second))
	}
	if err := g.readEmailServer(v, o.Get("server"), where+".server", &ep.Server); err != nil {
		return Provider{}, err
	}
	send := o.Get("sendVerificationRequest")
	if !isNullish(send) {
		if _, ok := goja.AssertFunction(send); !ok {
			return Provider{}, g.configError("%s.sendVerificationRequest must be a function, got %s", where, v.typeOf(send))
		}
		ep.Send = true
	}
	p.Email = ep
	return p, nil
}

// readEmailServer reads the server option into s (which holds the default), leaving s
// alone when the option is absent.
func (g *Generation) readEmailServer(v *vm, val goja.Value, where string, s *EmailServer) error {
	if isNullish(val) {
		return nil
	}
	if str, ok := val.Export().(string); ok && !isObject(val) {
		u, err := url.Parse(str)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			// The URL may hold a password: the message names its shape, not its text.
			return g.configError(`%s must be an "smtp://user:password@host:port" or "smtps://…" URL, or {host, port, auth, secure}`, where)
		}
		s.Host, s.Secure = u.Hostname(), u.Scheme == "smtps"
		s.Port = 25
		if s.Secure {
			s.Port = 465
		}
		if u.Port() != "" {
			n, err := strconv.Atoi(u.Port())
			if err != nil || n < 1 || n > 65535 {
				return g.configError("%s has an invalid port", where)
			}
			s.Port = n
		}
		if u.User != nil {
			s.User = u.User.Username()
			s.Password, _ = u.User.Password()
		}
		return nil
	}
	o, ok := val.(*goja.Object)
	if !ok || v.typeOf(val) != "object" {
		return g.configError("%s must be an SMTP URL or an object {host, port, auth, secure}, got %s", where, v.typeOf(val))
	}
	host, err := g.optionalString(v, o, where+".host", "host")
	if err != nil {
		return err
	}
	if host != "" {
		s.Host = host
	}
	if sec := o.Get("secure"); !isNullish(sec) {
		b, ok := sec.Export().(bool)
		if !ok {
			return g.configError("%s.secure must be a boolean, got %s", where, v.typeOf(sec))
		}
		s.Secure = b
		if b {
			s.Port = 465
		}
	}
	if pv := o.Get("port"); !isNullish(pv) {
		f := pv.ToFloat()
		if v.typeOf(pv) != "number" || f != math.Trunc(f) || f < 1 || f > 65535 {
			return g.configError("%s.port must be a port number, got %v", where, pv)
		}
		s.Port = int(f)
	}
	auth, err := g.optionalObject(v, o, "auth")
	if err != nil {
		return g.configError("%s.auth must be an object {user, pass}, got %s", where, v.typeOf(o.Get("auth")))
	}
	if auth != nil {
		if s.User, err = g.optionalString(v, auth, where+".auth.user", "user"); err != nil {
			return err
		}
		if s.Password, err = g.optionalString(v, auth, where+".auth.pass", "pass"); err != nil {
			return err
		}
	}
	return nil
}

// VerificationRequest is sendVerificationRequest's argument, as NextAuth v4 passes it:
// {identifier, url, expires, provider, token, theme}.
type VerificationRequest struct {
	Identifier string
	URL        string
	Expires    time.Time
	Provider   map[string]any
	Token      string
	Theme      map[string]any
}

// SendVerificationRequest runs the sendVerificationRequest function of the e-mail provider
// providerID on the sign-in lane. A throw, or a rejected promise, is the error: the link
// was not sent.
func (g *Generation) SendVerificationRequest(ctx context.Context, providerID string, r VerificationRequest) (err error) {
	const name = NameSendVerificationRequest
	defer recoverInto(name, &err)
	fnName := "sendVerificationRequest:" + providerID
	if !g.has[fnName] {
		return &Error{Callback: name, Kind: KindInternal, Message: fmt.Sprintf("no e-mail provider %q with a sendVerificationRequest function", providerID)}
	}
	_, err = g.invoke(ctx, laneSignIn, name, fnName, nil, nil, func(v *vm, _ Object) []goja.Value {
		expires, jerr := v.rt.New(v.rt.Get("Date"), v.rt.ToValue(r.Expires.UnixMilli()))
		var exp goja.Value = expires
		if jerr != nil {
			exp = v.toJS(r.Expires)
		}
		arg := v.rt.NewObject()
		for _, kv := range []struct {
			k string
			v goja.Value
		}{
			{"identifier", v.rt.ToValue(r.Identifier)}, {"token", v.rt.ToValue(r.Token)}, {"expires", exp},
			{"url", v.rt.ToValue(r.URL)}, {"provider", v.toJS(r.Provider)}, {"theme", v.toJS(r.Theme)},
		} {
			_ = arg.Set(kv.k, kv.v)
		}
		return []goja.Value{arg}
	}, ignoreResult)
	return err
}
