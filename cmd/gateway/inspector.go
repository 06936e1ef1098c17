package main

import (
	"fmt"
	"net/url"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine/inspect"
	"github.com/callgate/callgate/engine/script"
)

// inspectorTokenEnv holds the inspector's admin credential.
const inspectorTokenEnv = "CALLGATE_INSPECTOR_TOKEN"

// minInspectorToken is the shortest credential accepted: the inspector shows who signs in
// and what the callbacks decide, so its credential must not be guessable.
const minInspectorToken = 24

// inspectorSetup is the inspector serve runs, or none.
type inspectorSetup struct {
	in     *inspect.Inspector // nil: off
	access inspect.Access
}

// newInspector decides whether the inspector runs: on with --dev or inspector.enabled,
// and then either with its admin credential or on a loopback listener only, since without
// a credential it answers loopback clients only and a listener others reach would refuse
// everyone but the machine itself, which is a configuration mistake to name at start.
func newInspector(cfg config.Config, dev bool, getenv func(string) string, publicURL *url.URL) (inspectorSetup, error) {
	if !dev && !cfg.Inspector.Enabled {
		return inspectorSetup{}, nil
	}
	token := getenv(inspectorTokenEnv)
	if token != "" && len(token) < minInspectorToken {
		return inspectorSetup{}, fmt.Errorf("%s: the inspector's admin credential must be at least %d characters", inspectorTokenEnv, minInspectorToken)
	}
	why := "inspector.enabled"
	if dev {
		why = "--dev"
	}
	if token == "" && !inspect.LoopbackListener(cfg.Listen) {
		return inspectorSetup{}, fmt.Errorf("%s turns the inspector on, and without %s it answers loopback clients only: listen on a loopback address (127.0.0.1:%s) or set %s",
			why, inspectorTokenEnv, portOf(cfg.Listen), inspectorTokenEnv)
	}
	return inspectorSetup{
		in:     inspect.New(inspect.Options{}),
		access: inspect.Access{Token: token, SecureCookie: publicURL.Scheme == "https"},
	}, nil
}

func portOf(hostport string) string {
	u := url.URL{Host: hostport}
	if p := u.Port(); p != "" {
		return p
	}
	return "3000"
}

// tracer is the inspector as the script host's Tracer; nil (no interface value) when off,
// so that an untraced generation stays untraced.
func (s inspectorSetup) tracer() script.Tracer {
	if s.in == nil {
		return nil
	}
	return s.in
}

// endpoints are the inspector's paths for the surface table: served on the gateway's own
// host (loopback clients, or with the credential) and in full on the admin listener. Off,
// they answer 404 saying how to turn the inspector on.
func (s inspectorSetup) endpoints() []endpoint {
	public := s.in.Handler(s.access)
	admin := s.access
	admin.Admin = true
	full := s.in.Handler(admin)
	var out []endpoint
	for _, p := range inspect.Paths {
		out = append(out, endpoint{path: p, scope: gatewayHost, label: inspect.PagePath, public: fixed(public), admin: full})
	}
	return out
}
