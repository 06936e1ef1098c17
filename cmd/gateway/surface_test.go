package main

import (
	"encoding/json"
	"fmt"
	"github.com/callgate/callgate/engine/inspect"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGatewaySurface walks the surface table through a real gateway with an admin listener,
// a route on its own host, a route covering "/" on the gateway's host and a signed session
// token with a published JWKS. Every endpoint is
// the gateway's where the table says (never forwarded, never a 404) and the app's
// everywhere else; the proxy reserves exactly the everyHost paths; and the metrics label
// the gateway's own requests by the table and the forwarded ones by their route.
func TestGatewaySurface(t *testing.T) {
	up := echoUpstream(t)
	admin := freeLoopbackAddr(t)
	proxyScripts, err := os.ReadFile(filepath.Join("testdata", "proxy-scripts", "auth.config.js"))
	if err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{"auth.config.js": string(proxyScripts)})
	// --dev: the inspector's paths answer as the gateway's own (off, they say they are off).
	gw := startGateway(t, gatewayOptions{ScriptsDir: dir, Args: []string{"--dev", "--config", writeConfig(t, fmt.Sprintf(`
server:
  admin_listen: %s
session: {token: {format: jws, alg: ES256}}
routes:
  - {name: app, host: app.example.test, path: /, upstream: %s, public: true}
  - {name: site, path: /, upstream: %[2]s, public: true}
`, admin, up.URL))}})
	adminURL := "http://" + admin
	gatewayHost := strings.TrimPrefix(gw.URL, "http://")

	// The table as this gateway has it, with an admin listener; the handlers are stand-ins,
	// only the shape is read.
	stand := http.NotFoundHandler()
	surface := gatewaySurface(surfaceParts{auth: stand, jwks: stand, sessionJWKS: stand,
		ops: &opsEndpoints{admin: true, metrics: stand, status: stand, statusRedacted: stand}})
	var reserved, everyHostPaths []string
	for _, gp := range reservedPaths(surface) {
		reserved = append(reserved, gp.Path)
	}
	// The count of requests each label should have once the walk is over.
	wantLabel := map[string]int{}
	for _, e := range surface {
		if e.scope == everyHost {
			everyHostPaths = append(everyHostPaths, e.path)
		}
		path := e.path
		if strings.HasSuffix(path, "/") {
			path += "providers" // a prefix: one of its paths
		}
		label := e.label
		if label == "" {
			label = path
		}
		for _, where := range []struct {
			name, base, host string
			served           bool // by the gateway, per the table
		}{
			{"gateway host", gw.URL, gatewayHost, e.public != nil},
			{"route host", gw.URL, "app.example.test", e.public != nil && e.scope == everyHost},
			{"admin listener", adminURL, admin, e.admin != nil},
		} {
			t.Run(where.name+" "+path, func(t *testing.T) {
				method := http.MethodGet
				if path == inspect.EventsPath && where.served {
					method = http.MethodHead // an event stream never ends; HEAD answers its headers
				}
				res := sendWith(t, method, where.base+path, "", http.Header{"Host": {where.host}, "Accept": {"application/json"}}, "")
				var s seen
				reachedApp := json.Unmarshal(res.Body, &s) == nil && s.Path != ""
				switch {
				case where.name == "admin listener" && !where.served:
					if res.Status != http.StatusNotFound {
						t.Errorf("got %d, want 404: the admin listener serves only the table's admin endpoints", res.Status)
					}
				case where.served:
					if reachedApp || res.Status == http.StatusNotFound {
						t.Errorf("got %d %.200s (reached the app: %v), want the gateway's own answer", res.Status, res.Body, reachedApp)
					}
					wantLabel[label]++
				default:
					if !reachedApp || s.Path != path {
						t.Errorf("got %d %.200s, want it forwarded to the app as %s", res.Status, res.Body, path)
					}
					route := "route:site"
					if where.host == "app.example.test" {
						route = "route:app"
					}
					wantLabel[route]++
				}
			})
		}
	}
	if !slices.Equal(reserved, everyHostPaths) {
		t.Errorf("the proxy reserves %q, want the table's everyHost paths %q", reserved, everyHostPaths)
	}

	res := sendWith(t, http.MethodGet, adminURL+"/metrics", "", nil, "")
	counts := map[string]int{}
	for line := range strings.SplitSeq(string(res.Body), "\n") {
		rest, ok := strings.CutPrefix(line, "callgate_http_requests_total{")
		if !ok {
			continue
		}
		_, after, _ := strings.Cut(rest, `route="`)
		route, n, _ := strings.Cut(after, `"} `)
		var v int
		fmt.Sscan(n, &v)
		counts[route] += v
	}
	for label, want := range wantLabel {
		got := counts[label]
		if label == "/api/auth/providers" {
			// startGateway's readiness polls are counted there too.
			if got < want {
				t.Errorf("requests labelled %q: got %d, want at least %d", label, got, want)
			}
			continue
		}
		if got != want {
			t.Errorf("requests labelled %q: got %d, want %d\n%s", label, got, want, res.Body)
		}
	}
}
