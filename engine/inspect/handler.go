package inspect

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The inspector's paths, on the gateway's own host (and on the admin listener).
const (
	PagePath   = "/-/inspector"
	AppJSPath  = "/-/inspector/app.js"
	AppCSSPath = "/-/inspector/app.css"
	EventsPath = "/-/inspector/events"
	FlowsPath  = "/-/inspector/flows"
)

// Paths lists every path Handler serves.
var Paths = []string{PagePath, AppJSPath, AppCSSPath, EventsPath, FlowsPath}

// cookieName holds the admin credential in the browser once the page was opened with it.
const cookieName = "callgate-inspector"

//go:embed assets
var assets embed.FS

// Access says who may use the inspector.
type Access struct {
	// Token is the admin credential (Authorization: Bearer, or the page's cookie); empty
	// means loopback clients only.
	Token string
	// Admin serves everyone: the admin listener, which only operators reach.
	Admin bool
	// SecureCookie marks the page's credential cookie Secure (an https gateway).
	SecureCookie bool
}

// Handler serves the page, its assets, the live events (text/event-stream) and the
// snapshot (JSON). On a nil inspector every path answers 404 saying how to turn it on.
func (in *Inspector) Handler(acc Access) http.Handler {
	var want [32]byte
	if acc.Token != "" {
		want = sha256.Sum256([]byte(acc.Token))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		if in == nil {
			http.Error(w, "Not Found: the inspector is off (start the gateway with --dev, or set inspector.enabled and inspector.token)", http.StatusNotFound)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == PagePath && r.URL.Query().Has("token") {
			// The page opened with ?token=: the credential moves into a cookie only the
			// inspector's paths receive, and out of the address bar and the history.
			if acc.Token == "" || !sameToken(want, r.URL.Query().Get("token")) {
				refuse(w, "the token is not the inspector's admin credential")
				return
			}
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: acc.Token, Path: PagePath, HttpOnly: true,
				Secure: acc.SecureCookie, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, PagePath, http.StatusSeeOther)
			return
		}
		if !acc.Admin && !allowed(r, acc.Token, want) {
			refuse(w, "the inspector needs its admin credential (inspector.token) from an address that is not loopback")
			return
		}
		switch r.URL.Path {
		case PagePath:
			serveAsset(w, "assets/inspector.html", "text/html; charset=utf-8")
		case AppJSPath:
			serveAsset(w, "assets/inspector.js", "text/javascript; charset=utf-8")
		case AppCSSPath:
			serveAsset(w, "assets/inspector.css", "text/css; charset=utf-8")
		case FlowsPath:
			h.Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"flows": in.Snapshot()})
		case EventsPath:
			in.serveEvents(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// allowed: the admin credential, or a loopback client that asked for a loopback host. The
// host matters as much as the peer: a page on another site cannot make a browser send
// "Host: localhost" to this gateway (DNS rebinding gives it the site's own name), and a
// proxy on the same machine forwarding the internet passes the public host.
func allowed(r *http.Request, token string, want [32]byte) bool {
	if token != "" {
		if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && sameToken(want, got) {
			return true
		}
		if c, err := r.Cookie(cookieName); err == nil && sameToken(want, c.Value) {
			return true
		}
	}
	return loopbackPeer(r.RemoteAddr) && loopbackHost(r.Host)
}

func sameToken(want [32]byte, got string) bool {
	g := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], g[:]) == 1
}

func refuse(w http.ResponseWriter, why string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="callgate inspector"`)
	http.Error(w, "Unauthorized: "+why, http.StatusUnauthorized)
}

func loopbackPeer(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackHost is a Host header naming this machine: localhost (and *.localhost, which
// resolves to loopback by RFC 6761), or a loopback address.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoopbackListener reports whether a listen address accepts only loopback clients.
func LoopbackListener(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

func serveAsset(w http.ResponseWriter, name, contentType string) {
	b, err := assets.ReadFile(name)
	if err != nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(b)
}

// keepAlive is how often an idle event stream gets a comment, so that proxies and
// browsers do not take it for dead.
const keepAlive = 15 * time.Second

// serveEvents streams events as server-sent events: the kept ones after the client's
// Last-Event-ID (or ?since=), then live ones until the client leaves or falls too far
// behind (then the stream ends and EventSource reconnects from its last id).
func (in *Inspector) serveEvents(w http.ResponseWriter, r *http.Request) {
	since, _ := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64)
	if s := r.URL.Query().Get("since"); s != "" {
		since, _ = strconv.ParseUint(s, 10, 64)
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	rc := http.NewResponseController(w)
	// A stream outlives any write deadline the server sets for ordinary answers.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	sub := in.Subscribe(since)
	defer sub.Close()
	for _, e := range sub.Backlog {
		if writeEvent(w, e) != nil {
			return
		}
	}
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case e, ok := <-sub.Events():
			if !ok {
				return
			}
			if writeEvent(w, e) != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

func writeEvent(w http.ResponseWriter, e Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, b)
	return err
}
