package script

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/callgate/callgate/store"
)

// usersWriteConfig runs, in jwt, the write scenario token.op names and returns what it saw.
// Every failure is caught and returned as {error: message}, so the table can assert the
// message scripts get.
const usersWriteConfig = `import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";

const ops = {
  async createFind() {
    const made = await users.create({ username: "bob", name: "Bob", email: "Bob@Example.com", role: "user", team: "red", tags: ["a", 1] });
    const byId = await users.findOne({ _id: made._id });
    const byName = await users.findOne({ username: "bob" });
    const byEmail = await users.findOne({ email: "bob@example.COM" });
    return { made, same: JSON.stringify(byId) === JSON.stringify(made) && JSON.stringify(byName) === JSON.stringify(made) && JSON.stringify(byEmail) === JSON.stringify(made) };
  },
  async updateKeepsId() {
    const before = await users.findOne({ username: "alice" });
    const after = await users.update({ username: "alice" }, { name: "Alice L", email: "al@example.org", role: "owner", city: "Paris", team: null });
    const found = await users.findOne({ email: "AL@example.org" });
    const old = await users.findOne({ email: "alice@example.com" });
    return { before: before._id, after: after._id, found: found._id, name: found.name, role: found.role, city: found.city, team: found.team, old };
  },
  async operators() {
    const u = await users.update({ _id: "65f0c0ffee0000000000a11c" }, { $set: { username: "alice2", level: 3 }, $unset: { team: "", role: "" } });
    return { username: u.username, level: u.level, hasTeam: "team" in u, role: u.role, gone: await users.findOne({ username: "alice" }) };
  },
  createDuplicateUsername: () => users.create({ username: "alice" }),
  createDuplicateEmail: () => users.create({ username: "other", email: "ALICE@example.com" }),
  async updateDuplicate() {
    await users.create({ username: "carol", email: "carol@example.com" });
    return users.update({ username: "carol" }, { email: "Alice@Example.com", name: "never" });
  },
  updateNotFound: () => users.update({ username: "nobody" }, { name: "x" }),
  updateUnknownOperator: () => users.update({ username: "alice" }, { $inc: { n: 1 } }),
  updateMixed: () => users.update({ username: "alice" }, { $set: { name: "x" }, role: "y" }),
  updateId: () => users.update({ username: "alice" }, { _id: "65f0c0ffee0000000000beef" }),
  updateUsernameNull: () => users.update({ username: "alice" }, { username: null }),
  createUnknownField: () => users.create({ username: "dave", $where: "1" }),
  createNoUsername: () => users.create({ name: "nobody" }),
  createBadType: () => users.create({ username: "dave", email: 42 }),
  createBothPasswords: () => users.create({ username: "dave", password: "x", passwordHash: "$2a$10$7tboHp0AlRTDIADGPuZxDe.DaSy8Hk4bFM.AOeQ9yBbF.29OlZFe." }),
  createBadHash: () => users.create({ username: "dave", passwordHash: "plaintext" }),
  updateBadQuery: () => users.update({ nickname: "alice" }, { name: "x" }),
  // One bcrypt operation per call: cost 10 under the race detector on a busy machine takes
  // a good part of a test deadline.
  async pwCreate({ password }) {
    const made = await users.create({ username: "erin", password });
    return { prefix: made.password.slice(0, 7), rounds: bcrypt.getRounds(made.password), length: made.password.length };
  },
  async pwCompare({ password }) {
    return { ok: await bcrypt.compare(password, (await users.findOne({ username: "erin" })).password) };
  },
  async pwChange({ password }) {
    const changed = await users.update({ username: "erin" }, { password });
    return { length: changed.password.length };
  },
  async passwordCleared() {
    const cleared = await users.update({ username: "alice" }, { password: null });
    return { cleared: cleared.password };
  },
  async passwordHash() {
    const hash = "$2a$10$7tboHp0AlRTDIADGPuZxDe.DaSy8Hk4bFM.AOeQ9yBbF.29OlZFe.";
    const made = await users.create({ username: "frank", passwordHash: hash });
    return { same: made.password === hash };
  },
  async emptyChanges() {
    const u = await users.update({ username: "alice" }, {});
    return { name: u.name };
  },
};

export default {
  providers: [Credentials({ authorize: async () => null })],
  callbacks: {
    async jwt({ token }) {
      try { return { out: (await ops[token.op](token)) ?? null }; }
      catch (e) { return { error: e.message, name: e.name }; }
    },
  },
};
`

// usersEventsConfig handles the user events: logs a marker, and events.updateUser keeps
// updating the user it is told about, which must end.
const usersEventsConfig = `import Credentials from "callgate/providers/credentials";
import { users } from "callgate/store";

export default {
  providers: [Credentials({ authorize: async () => null })],
  events: {
    createUser({ user }) {
      if (user.username === "boom") throw new Error("boom handler");
      console.log("EVENT createUser " + Object.keys(user).sort().map((k) => k + "=" + user[k]).join(" "));
    },
    async updateUser({ user }) {
      console.log("EVENT updateUser " + user.username + " n=" + (user.n ?? 0));
      if (user.username.startsWith("loop")) await users.update({ _id: user.id }, { n: (user.n ?? 0) + 1 });
    },
  },
  callbacks: {
    async jwt({ token }) {
      if (token.op === "create") return { made: await users.create({ username: "gina", email: "gina@example.com", password: "pw" }) };
      if (token.op === "boom") return { made: await users.create({ username: "boom" }) };
      if (token.op === "update") return { updated: await users.update({ username: "gina" }, { role: "admin" }) };
      if (token.op === "loop") {
        await users.create({ username: "loop" });
        return { updated: await users.update({ username: "loop" }, { n: 0 }) };
      }
      return token;
    },
  },
};
`

func runOp(t *testing.T, gen *Generation, op string) map[string]any {
	t.Helper()
	return runOpWith(t, gen, map[string]any{"op": op})
}

func runOpWith(t *testing.T, gen *Generation, token map[string]any) map[string]any {
	t.Helper()
	res, err := gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": token})
	if err != nil {
		t.Fatalf("jwt(%v): %v", token, err)
	}
	return res.(map[string]any)
}

func TestUsersWrite(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": usersWriteConfig})
	tests := []struct {
		op    string
		check func(t *testing.T, out map[string]any, st store.Store)
		// err, when set: the message the script caught.
		err string
	}{
		{op: "createFind", check: func(t *testing.T, out map[string]any, st store.Store) {
			made := out["made"].(map[string]any)
			if id, _ := made["_id"].(string); !store.IsUserID(id) {
				t.Errorf("_id: got %v, want 24 hex characters", made["_id"])
			}
			want := map[string]any{"_id": made["_id"], "username": "bob", "name": "Bob", "email": "Bob@Example.com", "role": "user", "password": "", "team": "red", "tags": []any{"a", float64(1)}}
			if !reflect.DeepEqual(made, want) {
				t.Errorf("created document:\n got  %v\n want %v", made, want)
			}
			if out["same"] != true {
				t.Errorf("findOne by _id, username and e-mail: not the created document")
			}
			u, err := st.FindUser(context.Background(), store.UserQuery{Username: "bob"})
			if err != nil || u.Extra["team"] != "red" {
				t.Errorf("stored user: got %+v, %v", u, err)
			}
		}},
		{op: "updateKeepsId", check: func(t *testing.T, out map[string]any, st store.Store) {
			want := map[string]any{"before": "65f0c0ffee0000000000a11c", "after": "65f0c0ffee0000000000a11c", "found": "65f0c0ffee0000000000a11c",
				"name": "Alice L", "role": "owner", "city": "Paris", "team": nil, "old": nil}
			if !reflect.DeepEqual(out, want) {
				t.Errorf("got %v, want %v", out, want)
			}
		}},
		{op: "operators", check: func(t *testing.T, out map[string]any, st store.Store) {
			want := map[string]any{"username": "alice2", "level": float64(3), "hasTeam": false, "role": "", "gone": nil}
			if !reflect.DeepEqual(out, want) {
				t.Errorf("got %v, want %v", out, want)
			}
		}},
		{op: "createDuplicateUsername", err: `users.create: username "alice" is already taken`},
		{op: "createDuplicateEmail", err: `users.create: email "ALICE@example.com" is already taken`},
		{op: "updateDuplicate", err: `users.update: email "Alice@Example.com" is already taken`, check: func(t *testing.T, _ map[string]any, st store.Store) {
			u, err := st.FindUser(context.Background(), store.UserQuery{Username: "carol"})
			if err != nil || u.Name != "" || u.Email != "carol@example.com" {
				t.Errorf("carol after a refused update: got %+v, %v; want unchanged", u, err)
			}
		}},
		{op: "updateNotFound", err: `users.update: no user matches {"username":"nobody"}`},
		{op: "updateUnknownOperator", err: `users.update: unknown update operator "$inc"`},
		{op: "updateMixed", err: "users.update: the changes mix update operators"},
		{op: "updateId", err: "users.update: _id cannot be changed"},
		{op: "updateUsernameNull", err: "users.update: username cannot be removed"},
		{op: "createUnknownField", err: `users.create: unknown field "$where"`},
		{op: "createNoUsername", err: "users.create: username is required"},
		{op: "createBadType", err: "users.create: email must be a string, got number"},
		{op: "createBothPasswords", err: "users.create: give password (plain) or passwordHash (bcrypt), not both"},
		{op: "createBadHash", err: "users.create: password: not a bcrypt hash"},
		{op: "updateBadQuery", err: `users.update: unknown query field "nickname"`},
		{op: "passwordCleared", check: func(t *testing.T, out map[string]any, st store.Store) {
			u, err := st.FindUser(context.Background(), store.UserQuery{Username: "alice"})
			if out["cleared"] != "" || err != nil || u.PasswordHash != "" {
				t.Errorf("got %v, stored %q, %v; want no password", out, u.PasswordHash, err)
			}
		}},
		{op: "passwordHash", check: func(t *testing.T, out map[string]any, st store.Store) {
			if out["same"] != true {
				t.Errorf("passwordHash: got %v, want the hash stored as given", out)
			}
		}},
		{op: "emptyChanges", check: func(t *testing.T, out map[string]any, st store.Store) {
			if out["name"] != "Alice" {
				t.Errorf("got %v, want alice unchanged", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			st := openStore(t)
			l := patientBcrypt(load(t, dir, func(o *Options) { o.Users = st; o.Timeouts.Default = 30 * time.Second }))
			res := runOp(t, l.gen, tt.op)
			if tt.err != "" {
				msg, _ := res["error"].(string)
				if !strings.Contains(msg, tt.err) {
					t.Errorf("caught: got %v, want an error containing %q", res, tt.err)
				}
				n, err := st.CountUsers(context.Background())
				wantN := 1
				if tt.op == "updateDuplicate" {
					wantN = 2
				}
				if err != nil || n != wantN {
					t.Errorf("users after a refused write: got %d, %v; want %d", n, err, wantN)
				}
				if tt.check != nil {
					tt.check(t, nil, st)
				}
				return
			}
			out, ok := res["out"].(map[string]any)
			if !ok {
				t.Fatalf("got %v, want {out}", res)
			}
			tt.check(t, out, st)
		})
	}
}

// TestUsersWritePassword: a plain password is stored as a bcrypt hash of cost 10 that the
// script's own bcryptjs verifies, before and after users.update changes it.
func TestUsersWritePassword(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": usersWriteConfig})
	st := openStore(t)
	l := patientBcrypt(load(t, dir, func(o *Options) { o.Users = st; o.Timeouts.Default = 30 * time.Second }))
	steps := []struct {
		op, password string
		want         map[string]any
	}{
		{"pwCreate", "s3cret pass", map[string]any{"prefix": "$2a$10$", "rounds": float64(10), "length": float64(60)}},
		{"pwCompare", "s3cret pass", map[string]any{"ok": true}},
		{"pwCompare", "s3cret pasS", map[string]any{"ok": false}},
		{"pwChange", "n3w", map[string]any{"length": float64(60)}},
		{"pwCompare", "n3w", map[string]any{"ok": true}},
		{"pwCompare", "s3cret pass", map[string]any{"ok": false}},
	}
	for _, s := range steps {
		res := runOpWith(t, l.gen, map[string]any{"op": s.op, "password": s.password})
		if !reflect.DeepEqual(res["out"], s.want) {
			t.Errorf("%s(%q): got %v, want %v", s.op, s.password, res, s.want)
		}
	}
	u, err := st.FindUser(context.Background(), store.UserQuery{Username: "erin"})
	if err != nil || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte("n3w")) != nil {
		t.Errorf("stored hash of erin: %q, %v; want the hash of the new password", u.PasswordHash, err)
	}
}

func TestUsersWriteEvents(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": usersEventsConfig})
	st := openStore(t)
	l := patientBcrypt(load(t, dir, func(o *Options) { o.Users = st; o.Timeouts.Default = 30 * time.Second }))

	made := runOp(t, l.gen, "create")["made"].(map[string]any)
	id := made["_id"].(string)
	logs := l.logs.String()
	wantUser := "EVENT createUser email=gina@example.com id=" + id + " image=null name= username=gina"
	if !strings.Contains(logs, wantUser) {
		t.Errorf("log: want %s, got\n%s", wantUser, logs)
	}
	if strings.Contains(logs, "$2a$") {
		t.Errorf("the event's user carries the password hash:\n%s", logs)
	}
	hash := made["password"].(string)
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("pw")); err != nil {
		t.Errorf("stored password: %v", err)
	}

	runOp(t, l.gen, "update")
	if logs := l.logs.String(); !strings.Contains(logs, "EVENT updateUser gina n=0") {
		t.Errorf("log: want events.updateUser for gina, got\n%s", logs)
	}

	// A handler that throws is logged; the write stands and its promise resolves.
	if boom, _ := runOp(t, l.gen, "boom")["made"].(map[string]any); boom["username"] != "boom" {
		t.Errorf("create with a throwing events.createUser: got %v, want the document", boom)
	}
	if logs := l.logs.String(); !strings.Contains(logs, "CREATEUSER_EVENT_ERROR") || !strings.Contains(logs, "boom handler") {
		t.Errorf("log: want the throwing handler logged as CREATEUSER_EVENT_ERROR, got\n%s", logs)
	}

	// A handler that updates the user it is told about: bounded, then refused and logged,
	// and the call itself still succeeds. The call's budget is maxUserEvents events, the
	// first of them the createUser of its users.create.
	runOp(t, l.gen, "loop")
	logs = l.logs.String()
	if n := strings.Count(logs, "EVENT updateUser loop"); n != maxUserEvents-1 {
		t.Errorf("events.updateUser for loop: fired %d times, want %d", n, maxUserEvents-1)
	}
	if !strings.Contains(logs, "UPDATEUSER_EVENT_ERROR") || !strings.Contains(logs, "already fired events.updateUser 16 times") {
		t.Errorf("log: want the refused write logged as UPDATEUSER_EVENT_ERROR, got\n%s", logs)
	}
	u, err := st.FindUser(context.Background(), store.UserQuery{Username: "loop"})
	if err != nil || u.Extra["n"] != float64(maxUserEvents-2) {
		t.Errorf("loop user: got %+v, %v; want n=%d", u, err, maxUserEvents-2)
	}
}
