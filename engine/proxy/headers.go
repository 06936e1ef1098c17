package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/callgate/callgate/config"
)

// callbackHeaders reads {headers: {...}} from the authorized callback's object. Names that
// are not tokens, values with control characters, and headers that steer the request
// itself are dropped.
func callbackHeaders(p *Proxy, r *http.Request, extra map[string]any) http.Header {
	m, _ := extra["headers"].(map[string]any)
	if len(m) == 0 {
		return nil
	}
	h := make(http.Header, len(m))
	for name, raw := range m {
		v, ok := claimString(raw)
		canon := http.CanonicalHeaderKey(name)
		if !ok || !validHeaderName(name) || reservedHeader[canon] || routingHeader[canon] {
			p.log.Warn("authorized returned a header that cannot be sent; dropped", "code", "INVALID_HEADER", "header", name)
			continue
		}
		if p.strip.learn(canon) {
			p.log.Warn("authorized returned a header that no identity.headers name or identity.strip_prefixes prefix covers: "+
				"a client's own copy is stripped from now on, but not on requests before this one; add it to identity.strip_prefixes",
				"code", "UNCOVERED_IDENTITY_HEADER", "header", canon)
		}
		h[canon] = []string{v}
	}
	return h
}

var routingHeader = func() map[string]bool {
	m := make(map[string]bool, len(routingHeaders))
	for _, name := range routingHeaders {
		m[name] = true
	}
	return m
}()

var reservedHeader = map[string]bool{
	"Host": true, "Cookie": true, "Connection": true, "Content-Length": true, "Transfer-Encoding": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Keep-Alive": true, "Proxy-Connection": true,
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// claimString turns a claim into a header value: strings as they are, numbers and booleans
// in JSON, anything else as JSON. Values with control characters are refused: a header
// must never be split by a claim.
func claimString(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		s = x
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", false
		}
		s = string(b)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' && s[i] != '\t' || s[i] == 0x7f {
			return "", false
		}
	}
	return s, true
}

// stripper removes identity headers a client sent, and the headers that would make the app
// read another request than the one the gateway judged.
type stripper struct {
	exact    map[string]bool
	prefixes []string // canonical form
	// learned are the header names an authorized callback returned that no configured name
	// or prefix covers: from the first time one is seen, the client's copy is stripped
	// too. learnedAny keeps the per-request cost at one atomic load while there are none.
	learned    *sync.Map // canonical name → struct{}
	learnedAny *atomic.Bool
}

// routingHeaders name, to apps and frameworks that honour them, another URL, method or
// prefix than the request line's (IIS and Symfony's X-Original-URL and X-Rewrite-URL,
// nginx's X-Original-URI, Traefik's X-Forwarded-Uri, Spring's X-Forwarded-Prefix): a client
// that sends one could be served a path the gateway never judged. They are never forwarded
// as the client sent them; X-Forwarded-Prefix and -Port from a trusted proxy are put back
// by setForwarded.
var routingHeaders = []string{
	"X-Original-Url", "X-Rewrite-Url", "X-Original-Uri", "X-Forwarded-Uri",
	"X-Original-Method", "X-Forwarded-Method", "X-Forwarded-Prefix", "X-Forwarded-Port",
	"X-Forwarded-Server", "X-Real-Ip",
}

func newStripper(id config.IdentityConfig, routes []config.Route) stripper {
	s := stripper{exact: map[string]bool{}, learned: &sync.Map{}, learnedAny: &atomic.Bool{}}
	for name := range id.Headers {
		s.exact[http.CanonicalHeaderKey(name)] = true
	}
	for _, rt := range routes {
		for name := range rt.Headers {
			s.exact[http.CanonicalHeaderKey(name)] = true
		}
	}
	s.exact[http.CanonicalHeaderKey(id.Assertion.Header)] = true
	if id.Assertion.Header == "" {
		s.exact[config.DefaultAssertionHeader] = true
	}
	for _, name := range routingHeaders {
		s.exact[name] = true
	}
	for _, pre := range id.StripPrefixes {
		s.prefixes = append(s.prefixes, strings.ToLower(pre))
	}
	return s
}

// covers reports whether the canonical name is stripped by configuration (not learned).
func (s stripper) covers(canon string) bool {
	if s.exact[canon] {
		return true
	}
	for _, pre := range s.prefixes {
		if len(canon) >= len(pre) && strings.EqualFold(canon[:len(pre)], pre) {
			return true
		}
	}
	return false
}

// learn records a header name an authorized callback returned; it reports whether the
// name was new and not covered by configuration.
func (s stripper) learn(canon string) bool {
	if s.covers(canon) {
		return false
	}
	if _, loaded := s.learned.LoadOrStore(canon, struct{}{}); loaded {
		return false
	}
	s.learnedAny.Store(true)
	return true
}

// clean deletes every header that names an identity header, also when spelt with
// underscores (X_Callgate_User), which some app servers read as dashes. It runs on every
// proxied request, so the common case (a canonical name without underscores) allocates
// nothing.
func (s stripper) clean(h http.Header) {
	for name := range h {
		var norm string
		if strings.IndexByte(name, '_') >= 0 {
			norm = http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))
		} else {
			norm = http.CanonicalHeaderKey(name) // no allocation when already canonical
		}
		if s.covers(norm) {
			delete(h, name)
			continue
		}
		if s.learnedAny.Load() {
			if _, ok := s.learned.Load(norm); ok {
				delete(h, name)
			}
		}
	}
}

// stripCookies removes the gateway's cookies from the Cookie header. It runs on every
// proxied request: a header without them is left as it is, and one with them is rebuilt
// in a single allocation.
func stripCookies(h http.Header, prefixes []string) {
	lines := h["Cookie"]
	if len(lines) == 0 || len(prefixes) == 0 || !mentionsAny(lines, prefixes) {
		return
	}
	var b strings.Builder
	for _, line := range lines {
		for rest := line; rest != ""; {
			var part string
			part, rest, _ = strings.Cut(rest, ";")
			part = strings.TrimSpace(part)
			if part == "" || hasAnyPrefix(part, prefixes) {
				continue
			}
			if b.Len() == 0 {
				b.Grow(len(line))
			} else {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
	}
	if b.Len() == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = []string{b.String()}
}

// mentionsAny reports whether any line contains any of the prefixes anywhere: when none
// does, no cookie name can start with one.
func mentionsAny(lines, prefixes []string) bool {
	for _, line := range lines {
		for _, pre := range prefixes {
			if strings.Contains(line, pre) {
				return true
			}
		}
	}
	return false
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, pre := range prefixes {
		if strings.HasPrefix(s, pre) {
			return true
		}
	}
	return false
}
