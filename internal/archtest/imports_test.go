package archtest

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/callgate/callgate/"

// layer is each package's place in the module, lowest first. A package may import only
// packages of a lower layer (and the standard library and third-party modules, subject to
// forbidden below). A new package must be given a layer here: that is the moment to decide
// which way its arrows point.
var layer = map[string]int{
	"store":                0,
	"scripts":              0, // the shipped .d.ts files, embedded
	"engine/urlpolicy":     0,
	"engine/reqbody":       0,
	"engine/oauth/presets": 0,
	"engine/cookie":        0,
	"engine/jwk":           0,
	"engine/token":         1,
	"engine/memo":          0,
	"internal/archtest":    0,
	"store/bolt":           1,
	"store/redis":          1,
	"store/storetest":      2,
	"config":               1,
	"engine/clientaddr":    2,
	"engine/script":        2,
	"engine/assertion":     2,
	"engine/metrics":       3,
	"engine/inspect":       3,
	"engine/guard":         3,
	"engine/factor":        3,
	"engine/bearer":        3,
	"engine/reload":        3,
	"engine/proxy":         4,
	"engine/telemetry":     4,
	"engine/oauth":         4,
	"engine/session":       4,
	"engine":               5,
	"internal/testkit":     6,
	// The software WebAuthn authenticator is test support like testkit: only tests import
	// it (testOnly below).
	"internal/testkit/softauthn": 6,
	"bench/bareproxy":            6,
	"cmd/gateway":                7,
}

// forbidden are imports a package must not have, whatever the layers allow, with the reason.
var forbidden = []struct {
	pkgPrefix, importPrefix, why string
}{
	{"store", "net/http", "nothing in store knows about HTTP"},
	{"store", module + "engine", "stores serve the engine; they do not know it"},
	{"engine/script", module + "engine/cookie", "the script host knows nothing of cookies"},
	{"engine/script", "net/http/cookiejar", "the script host knows nothing of cookies"},
	{"engine/urlpolicy", module, "the URL policy is a leaf: everything else uses it"},
	{"engine/oauth/presets", module, "the provider presets are data: the script host serves them, the OAuth client reads what they return"},
	{"engine/oauth", module + "engine/cookie", "the OAuth client sets no cookies: the engine keeps its checks in them"},
	{"engine/guard", "net/http", "the guard knows no HTTP: the engine turns requests into identifiers and addresses"},
	{"engine/session", "net/http", "a session strategy returns values; the engine writes the cookies and answers"},
}

// testOnly are packages that only test code may import: no package's own files (its
// Imports, which leave out its tests') may name them.
var testOnly = []string{"internal/testkit", "internal/testkit/softauthn"}

type listed struct {
	ImportPath string
	Imports    []string
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := map[string]bool{}
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		seen[name] = true
		own, ok := layer[name]
		if !ok {
			t.Errorf("package %s has no layer in internal/archtest: add it, below what imports it", name)
			continue
		}
		for _, imp := range p.Imports {
			for _, f := range forbidden {
				if under(name, f.pkgPrefix) && strings.HasPrefix(imp, f.importPrefix) {
					t.Errorf("%s imports %s: %s", name, imp, f.why)
				}
			}
			dep, internal := strings.CutPrefix(imp, module)
			if !internal {
				continue
			}
			if slices.Contains(testOnly, dep) {
				t.Errorf("%s imports %s: only tests may import test support", name, dep)
			}
			if l, ok := layer[dep]; ok && l >= own {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports point down only", name, own, dep, l)
			}
		}
	}
	for name := range layer {
		if !seen[name] {
			t.Errorf("the layer table names %s, which go list does not find: remove it", name)
		}
	}
}

// under reports whether pkg is prefix or a package below it.
func under(pkg, prefix string) bool {
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}
