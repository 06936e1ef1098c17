package config

import (
	"fmt"
	"net/url"
	"slices"
)

// BearerSession is the entry of Route.Bearer that accepts the gateway's own session token
// (either format) as a bearer token.
const BearerSession = "session"

// BearerConfig lists the identity providers whose access tokens routes may accept as
// `Authorization: Bearer …` (Route.Bearer names them).
type BearerConfig struct {
	Providers []BearerProvider `yaml:"providers"`
}

// BearerProvider is one identity provider whose access tokens are accepted.
type BearerProvider struct {
	// ID names the provider in Route.Bearer and in request.auth.provider.
	ID string `yaml:"id"`
	// Issuer is the provider's OpenID Connect issuer: its discovery document gives the
	// JWKS (and the introspection endpoint when it lists one), and a JWT's iss must be it.
	Issuer string `yaml:"issuer"`
	// Audience lists the aud values of which a token must carry one. Required: a token the
	// provider issued for another API must not open this one.
	Audience []string `yaml:"audience"`
	// Algorithms narrows the JWS algorithms accepted (default RS256, RS384, RS512, PS256,
	// ES256, ES384, EdDSA; symmetric ones are never accepted).
	Algorithms []string `yaml:"algorithms"`
	// Introspection, when set, accepts opaque tokens too, checked by RFC 7662 introspection.
	Introspection *IntrospectionConfig `yaml:"introspection"`
	// CacheTTL is how long a verified token's answer is reused (never past its exp);
	// default 30s. A token revoked at the provider is refused at most this much later.
	CacheTTL Duration `yaml:"cache_ttl"`
}

// IntrospectionConfig is how the gateway asks a provider about an opaque token.
type IntrospectionConfig struct {
	// URL is the introspection endpoint; default the discovery document's
	// introspection_endpoint.
	URL string `yaml:"url"`
	// ClientID and the secret in the environment variable ClientSecretEnv authenticate the
	// gateway at the endpoint (client_secret_basic).
	ClientID        string `yaml:"client_id"`
	ClientSecretEnv string `yaml:"client_secret_env"`
}

func (c *Config) validateBearer() error {
	ids := map[string]bool{}
	for i, p := range c.Bearer.Providers {
		field := fmt.Sprintf("bearer.providers[%d]", i)
		switch {
		case p.ID == "":
			return &Error{field + ".id", "must not be empty"}
		case p.ID == BearerSession:
			return &Error{field + ".id", fmt.Sprintf("%q names the gateway's own session token in routes[].bearer; choose another id", BearerSession)}
		case ids[p.ID]:
			return &Error{field + ".id", fmt.Sprintf("duplicate provider id %q", p.ID)}
		}
		ids[p.ID] = true
		if u, err := url.Parse(p.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return &Error{field + ".issuer", fmt.Sprintf("want the provider's http(s) issuer URL, got %q", p.Issuer)}
		}
		if len(p.Audience) == 0 || slices.Contains(p.Audience, "") {
			return &Error{field + ".audience", "list the aud values this gateway's APIs accept (a token for another API must not pass)"}
		}
		if p.CacheTTL < 0 {
			return &Error{field + ".cache_ttl", "must be positive"}
		}
		if in := p.Introspection; in != nil {
			if in.URL != "" {
				if u, err := url.Parse(in.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					return &Error{field + ".introspection.url", fmt.Sprintf("want an http(s) URL, got %q", in.URL)}
				}
			}
			if in.ClientID == "" {
				return &Error{field + ".introspection.client_id", "must not be empty: the endpoint authenticates the gateway"}
			}
			if !envName.MatchString(in.ClientSecretEnv) {
				return &Error{field + ".introspection.client_secret_env", fmt.Sprintf("want the name of the environment variable holding the client secret, got %q", in.ClientSecretEnv)}
			}
		}
	}
	for i, r := range c.Routes {
		for j, b := range r.Bearer {
			if b != BearerSession && !ids[b] {
				return &Error{fmt.Sprintf("routes[%d].bearer[%d]", i, j), fmt.Sprintf("want %q or the id of a bearer.providers entry, got %q", BearerSession, b)}
			}
		}
		if len(r.Bearer) > 0 && r.Public {
			return &Error{fmt.Sprintf("routes[%d].bearer", i), "a public route needs no credentials; bearer tokens are for protected routes"}
		}
	}
	return nil
}
