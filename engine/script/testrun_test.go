package script

import (
	"context"
	"strings"
	"testing"
	"time"
)

const runnerConfig = `import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";
export default {
  providers: [Credentials({
    async authorize(credentials) {
      const u = await users.findOne({ username: credentials?.username });
      if (!u || !(await bcrypt.compare(credentials.password, u.password))) return null;
      return { id: u._id, name: u.name, email: u.email, role: u.role };
    },
  })],
  callbacks: {
    async jwt({ token, user, trigger }) {
      if (trigger === "signIn") token.role = user.role;
      return token;
    },
    async session({ session, token }) {
      session.user.role = token.role;
      return session;
    },
  },
};
`

const runnerTests = `import config from "./auth.config.js";
import { test, describe, expect, args, authorize, mockUsers, token } from "callgate/test";

mockUsers([{ id: "u1", username: "jane", name: "Jane", email: "jane@example.com", role: "admin", password: "pw" }]);

describe("jwt", () => {
  test("copies the role at sign-in", async () => {
    const t = await config.callbacks.jwt(args.jwt.signIn({ user: { id: "u1", name: "Jane", role: "admin" } }));
    expect(t).toEqual({ name: "Jane", sub: "u1", role: "admin" });
  });
  test("keeps the token on a session read", async () => {
    const tok = token({ role: "ops" });
    expect(await config.callbacks.jwt(args.jwt.session({ token: tok }))).toEqual(tok);
  });
});

test("session shows the role", async () => {
  const s = await config.callbacks.session(args.session({ token: token({ role: "ops" }) }));
  expect(s.user.role).toBe("ops");
  expect(s.expires).toMatch(/Z$/);
});

test("authorize accepts the right password", async () => {
  await expect(authorize(config, { username: "jane", password: "pw" })).resolves.toHaveProperty("role", "admin");
  expect(await authorize(config, { username: "jane", password: "no" })).toBeNull();
});

test("a wrong expectation fails", async () => {
  const s = await config.callbacks.session(args.session({ token: token({ role: "ops" }) }));
  expect(s.user.role).toBe("admin"); // FAILS HERE
});

test("a test past its deadline fails", () => { for (;;) {} });

test("runs after a timed-out test", () => { expect([1, 2]).toContain(2); });
`

func TestRunTests(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"auth.config.js":            runnerConfig,
		"auth.test.js":              runnerTests,
		"sub/broken.test.ts":        "import { test } from \"callgate/test\";\ntest(\"x\", () => {\n  const n: number = ;\n});\n",
		"node_modules/skip.test.js": "throw new Error('must not run')",
	})
	var seen []string
	// The deadline ends the looping test; the others (one compares a bcrypt hash) must meet
	// it under -race on a busy machine.
	results, err := RunTests(context.Background(), Options{Dir: dir, Timeouts: Timeouts{Default: 5 * time.Second}}, func(r TestResult) {
		seen = append(seen, r.Name)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		file, name string
		pass       bool
		errHas     string
		line       int
	}{
		{"auth.test.js", "jwt › copies the role at sign-in", true, "", 0},
		{"auth.test.js", "jwt › keeps the token on a session read", true, "", 0},
		{"auth.test.js", "session shows the role", true, "", 0},
		{"auth.test.js", "authorize accepts the right password", true, "", 0},
		{"auth.test.js", "a wrong expectation fails", false, "Expected: \"admin\"", lineOf(t, dir+"/auth.test.js", "FAILS HERE")},
		{"auth.test.js", "a test past its deadline fails", false, "did not finish", 0},
		{"auth.test.js", "runs after a timed-out test", true, "", 0},
		{"sub/broken.test.ts", "(load)", false, "Unexpected", 3},
	}
	if len(results) != len(want) {
		t.Fatalf("got %d results (%v), want %d", len(results), seen, len(want))
	}
	for i, w := range want {
		r := results[i]
		if r.File != w.file || r.Name != w.name || r.Passed() != w.pass {
			t.Errorf("result %d: got %s %q passed=%v (%v), want %s %q passed=%v", i, r.File, r.Name, r.Passed(), r.Err, w.file, w.name, w.pass)
			continue
		}
		if w.pass {
			continue
		}
		if !strings.Contains(r.Err.Message, w.errHas) {
			t.Errorf("%s: got error %q, want it to contain %q", w.name, r.Err.Message, w.errHas)
		}
		if w.line != 0 && r.Err.Line != w.line {
			t.Errorf("%s: got line %d (%s), want %d", w.name, r.Err.Line, r.Err.File, w.line)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("report saw %d results, want %d", len(seen), len(want))
	}
}

func TestTestModuleOnlyInTests(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": `import { test } from "callgate/test";
import Credentials from "callgate/providers/credentials";
export default { providers: [Credentials({ authorize: async () => null })] };`})
	_, err := Load(context.Background(), Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "can only be imported by *.test.js") {
		t.Errorf("got %v, want a load error saying callgate/test is for tests", err)
	}
}
