package script

import (
	"context"
	"strings"
	"testing"
)

// TestLoadReportsEveryProblem: the bundler's errors in several files, and the config's
// independent mistakes, come back together, each at its own file and line.
func TestLoadReportsEveryProblem(t *testing.T) {
	type at struct {
		file string
		line int
		msg  string
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []at
	}{
		{"bundle errors in two files", map[string]string{
			"auth.config.js": "import a from \"./a.js\";\nimport b from \"./b.js\";\nexport default { providers: [a, b] };\n",
			"a.js":           "import x from \"lodash\";\nexport default x;\n",
			"b.js":           "export default {\n  id: ,\n};\n",
		}, []at{{"a.js", 1, `import "lodash" is not allowed`}, {"b.js", 2, "Unexpected"}}},
		{"config mistakes in several sections", map[string]string{
			"auth.config.js": `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ authorize: async () => null }), { type: "magic" }],
  callbacks: { jwt: "not a function" },
  session: { strategy: "cookie", maxAge: -1 },
  pages: { signIn: "javascript:alert(1)" },
};
`,
		}, []at{
			{"auth.config.js", 3, `providers[1].type must be`},
			{"auth.config.js", 4, "callbacks.jwt must be a function"},
			{"auth.config.js", 6, "pages.signIn must be a path"},
			{"auth.config.js", 5, "session.strategy must be"},
			{"auth.config.js", 5, "session.maxAge must be a positive number"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDir(t, tc.files)
			gen, err := Load(context.Background(), Options{Dir: dir})
			if err == nil {
				gen.Close()
				t.Fatal("Load: got a generation, want errors")
			}
			got := Errors(err)
			if len(got) != len(tc.want) {
				t.Fatalf("Errors: got %d (%v), want %d", len(got), err, len(tc.want))
			}
			for i, w := range tc.want {
				e := got[i]
				if e.File != w.file || (w.line != 0 && e.Line != w.line) || e.Line == 0 || e.Column == 0 || !strings.Contains(e.Message, w.msg) || e.SourceLine == "" {
					t.Errorf("error %d: got %s:%d:%d %q (source %q), want %s:%d containing %q", i, e.File, e.Line, e.Column, e.Message, e.SourceLine, w.file, w.line, w.msg)
				}
			}
		})
	}
}

// TestWarningsPlaceIgnoredOptions: unknown keys still load (NextAuth ignores them), and
// each is kept as a warning at the line that wrote it.
func TestWarningsPlaceIgnoredOptions(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ authorize: async () => null })],
  debugg: true,
  callbacks: {
    async sigIn() { return true; },
  },
};
`})
	gen, err := Load(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	w := gen.Warnings()
	want := []struct {
		line int
		msg  string
	}{{4, "debugg: unknown auth config key"}, {6, "callbacks.sigIn: unknown callbacks entry"}}
	if len(w) != len(want) {
		t.Fatalf("Warnings: got %d %v, want %d", len(w), w, len(want))
	}
	for i, x := range want {
		if w[i].File != "auth.config.js" || w[i].Line != x.line || !strings.Contains(w[i].Message, x.msg) || !strings.Contains(w[i].SourceLine, strings.TrimPrefix(strings.SplitN(x.msg, ":", 2)[0], "callbacks.")) {
			t.Errorf("warning %d: got %s:%d %q (%q), want line %d %q", i, w[i].File, w[i].Line, w[i].Message, w[i].SourceLine, x.line, x.msg)
		}
	}
}
