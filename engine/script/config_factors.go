package script

import (
	"time"

	"github.com/dop251/goja"
)

// FactorOptions is the config's `factors`: which second factors users may enrol and be
// challenged for, and how recent an authentication changing them needs.
//
//	factors: { totp: true, passkey: true, recentAuthentication: 600 }
//
// A Passkey provider turns passkeys on by itself. With any factor on, every sign-in records
// how the user authenticated (the token's amr and auth_time), which authorized() reads for
// step-up.
type FactorOptions struct {
	// TOTP offers time-based one-time passwords (RFC 6238); TOTPIssuer names the gateway in
	// the user's authenticator app (`totp: { issuer: "Example" }`), default the public host.
	TOTP       bool
	TOTPIssuer string
	// Passkey offers WebAuthn credentials as a second factor (and, with a Passkey provider,
	// for sign-in without a password).
	Passkey bool
	// RecentAuthentication is how long after an authentication its session may enrol or
	// remove a factor without proving itself again; default 10 minutes.
	RecentAuthentication time.Duration
}

// Enabled reports whether any factor is on.
func (f FactorOptions) Enabled() bool { return f.TOTP || f.Passkey }

// defaultRecentAuthentication is FactorOptions.RecentAuthentication's default.
const defaultRecentAuthentication = 10 * time.Minute

// readFactors reads `factors` into c.Factors; a Passkey provider turns passkeys on.
func (g *Generation) readFactors(v *vm, cfg *goja.Object, c *Config) error {
	f := FactorOptions{RecentAuthentication: defaultRecentAuthentication}
	for _, p := range c.Providers {
		if p.Type == "passkey" {
			f.Passkey = true
		}
	}
	o, err := g.optionalObject(v, cfg, "factors")
	if err != nil {
		return err
	}
	if o != nil {
		for _, k := range o.Keys() {
			val := o.Get(k)
			switch k {
			case "totp":
				switch x := val.Export().(type) {
				case bool:
					f.TOTP = x
				case map[string]any:
					f.TOTP = true
					issuer, err := g.optionalString(v, val.(*goja.Object), "factors.totp.issuer", "issuer")
					if err != nil {
						return err
					}
					f.TOTPIssuer = issuer
				default:
					if !isNullish(val) {
						return g.configError("factors.totp must be a boolean or { issuer }, got %s", v.typeOf(val))
					}
				}
			case "passkey":
				b, ok := val.Export().(bool)
				if !ok && !isNullish(val) {
					return g.configError("factors.passkey must be a boolean, got %s", v.typeOf(val))
				}
				f.Passkey = f.Passkey || b
			case "recentAuthentication":
				if err := g.optionalSeconds(v, o, "factors.recentAuthentication", k, &f.RecentAuthentication); err != nil {
					return err
				}
			default:
				g.ignored("factors."+k, "unknown factors option ignored")
			}
		}
	}
	c.Factors = f
	return nil
}
