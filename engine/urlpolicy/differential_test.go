package urlpolicy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/callgate/callgate/internal/testkit"
)

// The differential test of the canonical path: for a few hundred request targets built from
// the pieces path-confusion attacks are made of, CanonicalPath is compared with how two real
// readers of a request target read it:
//
//   - Node's WHATWG URL parser (new URL(target, "http://x").pathname, the way Node apps
//     read req.url), through testdata/whatwg_pathname.js, one node process for all targets;
//   - nginx's $uri (decoded, dot segments resolved, slashes merged), from a real nginx
//     answering `return 200 "$uri"`, each target sent raw in a request line of its own.
//
// The property, for both: when CanonicalPath accepts a target, the reader resolves it to the
// same path, both sides fully percent-decoded; where the two differ the target must have been
// refused. nginx must agree exactly on every accepted target it answers 200 (its 400s, for a
// ".." above the root, are no claim). With Node, merged slashes are not failures: the rule
// merges empty segments (docs/proxy.md, like Envoy's merge_slashes and nginx) and WHATWG
// keeps them, so /a//b is counted as agreeing when Node's reading with its empty segments
// merged is the canonical path. (The targets where merging changes what a ".." removes, and
// those starting with "//", which WHATWG reads as an authority, are refused by the rule.)
//
// Both readers must also read the canonical output as itself (it is stable): it is what goes
// upstream, and what forward-auth lets the app behind nginx, Traefik or Caddy see as sent.
//
// A tool that is missing skips its half with the reason, except with CI=true, where it fails.

// diffAtoms are the segments the targets are built from.
var diffAtoms = []string{
	"public", "admin", "ADMIN", "Admin", "admin.", "admin%2e", "admin%2E", "admin%20", "admin%c2%a0", "%61dmin", "%41DMIN",
	"..", ".", "...", "%2e%2e", "%2E%2E", ".%2E", "%2e.", "%2e", "..%2f", "..%2F", "%2e%2e%2f",
	"%2f", "%2F", "%5c", "%5C", "\\", "..\\", ";x", "..;", "admin;x", "%3b", "%3B", "%00", "a%00b",
	"%c0%ae", "%c0%ae%c0%ae", "%c0%af", "%e0%80%ae", "%ff", "\xff", "\xc0\xae", "\xe9", "", "%7e", "~user", "%7euser",
	"caf%c3%a9", "café", "CAF%C3%A9", "\u2025", "\uff0e\uff0e", "\u3002", "%e2%80%a5", "|",
	"%7c", "a%20b", "%20", "+", "a+b", "%2b", "%25", "%252e%252e", "%252f", "%", "%zz", "%4",
	"a b", "\t", "%09", "%0a", "#", "%23", "%3f", "[x]", "^", "`", "{}", "\"", "<>", "'", "*",
	"@", ":", "a:b", "$", "!", "=", "&", ",", "(x)", ".well-known", "a.b", ".a", "_", "-",
}

// diffSmall is the subset combined pairwise.
var diffSmall = []string{
	"public", "admin", "..", ".", "%2e%2e", ".%2E", "%2f", "%5c", "\\", ";x", "%3b", "%00",
	"%c0%ae", "ADMIN", "admin.", "", "%61dmin", "%7e", "caf%c3%a9", "|", "%20",
}

// differentialTargets is the table: every atom alone and between /public/ and /admin,
// pairs of the small set, the same with doubled and trailing slashes, and a few hand-made
// ones where the order of merging slashes and resolving dots matters.
func differentialTargets() []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, a := range diffAtoms {
		add("/" + a)
		add("/" + a + "/")
		add("/public/" + a + "/admin")
		add("/" + a + "/admin")
	}
	for _, a := range diffSmall {
		for _, b := range diffSmall {
			add("/" + a + "/" + b)
		}
		add("//" + a)
		add("//" + a + "//admin//")
		add("/public//" + a + "/admin")
		add("/public/" + a + "//../admin")
		add("///public/" + a + "/../../admin/")
	}
	for _, s := range []string{
		"/", "//", "///", "/./", "/../", "/.//./", "/a/b/c/../../..", "/a/b/c/../../../..",
		"/a/b//../c", "/admin/x//../../public", "/public//../admin", "/a//b/../../c",
		"/public/./../admin", "/public/%2e/%2e%2e/admin", "/public/.%2e/.%2e/admin",
		"/static/..%2f..%2fadmin", "/public/%2e%2e%5cadmin", "/public/%252e%252e/admin",
		"/%2e%2e/%2e%2e/etc/passwd", "/public/%u002e%u002e/admin", "/public/%C0%AE%C0%AE/admin",
		"/admin/", "/admin//", "/admin/.", "/admin/./", "/admin/..", "/admin/../",
		"/a%2fb/../c", "/a/%2e%2e%2fb", "/%2e%2e", "/%2e", "/.%2e/", "/%2e%2e/",
		"/a/./b/./c/.", "/a/b/c/./../../d", "/ä/ö/ü", "/日本/語", "/emoji/\U0001F600",
		"/%F0%9F%98%80", "/%E6%97%A5", "/%e6%97%a5/%2e%2e/x", "/\u00a0", "/%c2%a0",
		"/a\u200bb", "/%e2%80%8b", "/admin\u3002", "/%ef%bc%8e%ef%bc%8e/admin",
	} {
		add(s)
	}
	return out
}

// fullyDecode percent-decodes every well-formed escape, leaving anything else as it is.
func fullyDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

var slashRun = regexp.MustCompile(`//+`)

func mergeSlashes(s string) string { return slashRun.ReplaceAllString(s, "/") }

type canonical struct {
	target, out string
	ok          bool
	// What nginx answered, when the nginx half ran: its status and $uri.
	nginxStatus int
	nginxURI    string
}

// nginxSays is nginx's reading of the row, for messages.
func (r *canonical) nginxSays() string {
	switch {
	case r.nginxStatus == 0:
		return "nginx not asked"
	case r.nginxStatus != http.StatusOK:
		return fmt.Sprintf("nginx answers %d", r.nginxStatus)
	}
	return fmt.Sprintf("nginx reads %q", r.nginxURI)
}

func canonicalTable(targets []string) []canonical {
	rows := make([]canonical, len(targets))
	for i, tg := range targets {
		out, err := CanonicalPath(tg)
		rows[i] = canonical{target: tg, out: out, ok: err == nil}
	}
	return rows
}

func TestCanonicalPathDifferential(t *testing.T) {
	rows := canonicalTable(differentialTargets())
	accepted := 0
	for _, r := range rows {
		if r.ok {
			accepted++
		}
	}
	t.Logf("%d targets: %d accepted, %d refused by CanonicalPath", len(rows), accepted, len(rows)-accepted)
	// nginx first, so that what Node reads otherwise can be told next to what nginx reads.
	t.Run("nginx", func(t *testing.T) { differentialNginx(t, rows) })
	t.Run("node", func(t *testing.T) { differentialNode(t, rows) })
}

type nodeReading struct {
	Pathname string `json:"pathname"`
	Host     string `json:"host"`
	Error    string `json:"error"`
}

// nodeRead reads every input with one node process.
func nodeRead(t *testing.T, node string, inputs []string) map[string]nodeReading {
	t.Helper()
	in, err := json.Marshal(inputs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "whatwg_pathname.js"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node testdata/whatwg_pathname.js: %v\n%s", err, stderr.String())
	}
	var readings []nodeReading
	if err := json.Unmarshal(out, &readings); err != nil || len(readings) != len(inputs) {
		t.Fatalf("node printed %d readings for %d inputs (%v): %.500s", len(readings), len(inputs), err, out)
	}
	m := make(map[string]nodeReading, len(inputs))
	for i, s := range inputs {
		m[s] = readings[i]
	}
	return m
}

func differentialNode(t *testing.T, rows []canonical) {
	node := testkit.RequireTool(t, "node")
	// JSON cannot carry bytes that are not UTF-8, and a JS string could not hold them as
	// request bytes either: those targets are not sent (CanonicalPath must refuse them,
	// which TestCanonicalPath covers).
	var inputs []string
	seen := map[string]bool{}
	for _, r := range rows {
		for _, s := range []string{r.target, r.out} {
			if s != "" && utf8.ValidString(s) && !seen[s] {
				seen[s] = true
				inputs = append(inputs, s)
			}
		}
	}
	read := nodeRead(t, node, inputs)

	var agree, mergedOnly, refusedDiffer, notSent int
	differ := func(r *canonical, format string, args ...any) {
		msg := fmt.Sprintf(format, args...) + "; " + r.nginxSays()
		t.Error(msg + ": an accepted target that the readers read differently")
	}
	for i := range rows {
		r := &rows[i]
		nr, sent := read[r.target]
		if !sent {
			notSent++
			if r.ok {
				t.Errorf("CanonicalPath(%q) = %q accepts a target that is not UTF-8", r.target, r.out)
			}
			continue
		}
		if !r.ok {
			if nr.Error != "" || nr.Host != "x" || fullyDecode(nr.Pathname) != fullyDecode(r.target) {
				refusedDiffer++
			}
			continue
		}
		// Stable: Node reads the canonical path as itself.
		if own := read[r.out]; own.Error != "" || own.Host != "x" || fullyDecode(own.Pathname) != fullyDecode(r.out) {
			t.Errorf("canonical %q (of %q) is not stable under Node: Node reads %+v", r.out, r.target, own)
		}
		ours := fullyDecode(r.out)
		theirs := fullyDecode(nr.Pathname)
		switch {
		case nr.Error != "":
			differ(r, "CanonicalPath(%q) = %q, but Node refuses it: %s", r.target, r.out, nr.Error)
		case nr.Host != "x":
			differ(r, "CanonicalPath(%q) = %q, but Node reads host %q and path %q", r.target, r.out, nr.Host, nr.Pathname)
		case theirs == ours:
			agree++
		case mergeSlashes(theirs) == ours:
			mergedOnly++
		default:
			differ(r, "CanonicalPath(%q) = %q (decoded %q), but Node reads %q (decoded %q)", r.target, r.out, ours, nr.Pathname, theirs)
		}
	}
	t.Logf("node %s: %d targets (%d not sent: not UTF-8); accepted %d: %d agree exactly, %d agree once Node's empty segments are merged, %d disagree; refused %d (%d of them read otherwise by Node)",
		nodeVersion(node), len(rows), notSent, countOK(rows, true), agree, mergedOnly, countOK(rows, true)-agree-mergedOnly,
		countOK(rows, false), refusedDiffer)
}

func countOK(rows []canonical, ok bool) int {
	n := 0
	for _, r := range rows {
		if r.ok == ok {
			n++
		}
	}
	return n
}

func nodeVersion(node string) string {
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// nginxURI sends target raw in a request line and returns nginx's status and body.
func nginxURI(addr, target string) (int, string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target); err != nil {
		return 0, "", err
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, string(body), err
}

func differentialNginx(t *testing.T, rows []canonical) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	// Every answer is nginx's $uri: its decoded, dot-resolved, slash-merged path.
	testkit.StartNginx(t, addr, `    location / { return 200 "$uri"; }`)
	var answered200, answeredOther, agree, notSent, acceptedNo200 int
	var noClaim []string
	for i := range rows {
		r := &rows[i]
		// A CR or LF would end the request line: no claim on those (the rule refuses them).
		if strings.ContainsAny(r.target, "\r\n") {
			notSent++
			continue
		}
		status, uri, err := nginxURI(addr, r.target)
		if err != nil {
			t.Fatalf("nginx, target %q: %v", r.target, err)
		}
		r.nginxStatus, r.nginxURI = status, uri
		if status != http.StatusOK {
			answeredOther++
			if r.ok {
				acceptedNo200++
				if len(noClaim) < 8 {
					noClaim = append(noClaim, fmt.Sprintf("%q (%d)", r.target, status))
				}
			}
			continue
		}
		answered200++
		if !r.ok {
			continue
		}
		if status, own, err := nginxURI(addr, r.out); err != nil || status != http.StatusOK || own != fullyDecode(r.out) {
			t.Errorf("canonical %q (of %q) is not stable under nginx: %d %q %v", r.out, r.target, status, own, err)
		}
		if ours := fullyDecode(r.out); ours != uri {
			t.Errorf("CanonicalPath(%q) = %q (decoded %q), but nginx's $uri is %q: accepted target where the readers differ",
				r.target, r.out, ours, uri)
			continue
		}
		agree++
	}
	t.Logf("nginx: %d targets (%d not sent: CR/LF); nginx answered 200 to %d, another status to %d; accepted by CanonicalPath and answered 200: %d, of which %d agree; accepted but not 200 (no claim): %d, e.g. %s",
		len(rows), notSent, answered200, answeredOther, countOK(rows, true)-acceptedNo200, agree, acceptedNo200,
		strings.Join(noClaim, ", "))
}
