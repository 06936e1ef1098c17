package script

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestSharedArgument: a Shared map reads like a plain object in the callback (fields,
// nested objects, Object.keys, spread, JSON, "in"), the script's writes and deletions are
// its own, and the Go map, shared with other requests, is never changed.
func TestSharedArgument(t *testing.T) {
	dir := t.TempDir()
	src := `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ authorize: () => null })],
  callbacks: {
    authorized({ token }) {
      const seen = {
        sub: token.sub,
        nested: token.user.name,
        keys: Object.keys(token).join(","),
        has: "role" in token,
        missing: token.nope === undefined,
        json: JSON.stringify(token.user),
      };
      token.user.name = "changed";
      token.added = 1;
      delete token.role;
      seen.afterWrite = token.user.name + "," + token.added + "," + ("role" in token);
      seen.spread = Object.keys({ ...token }).join(",");
      seen.self = token;
      return seen;
    },
  },
};
`
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	l := load(t, dir, nil)
	token := map[string]any{"sub": "u1", "role": "admin", "user": map[string]any{"name": "Jatin"}}
	before := map[string]any{"sub": "u1", "role": "admin", "user": map[string]any{"name": "Jatin"}}
	for i := range 2 { // twice: nothing of the first call may leak into the second
		got, err := l.gen.Call(context.Background(), "callbacks.authorized", map[string]any{"token": Shared(token)})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		want := map[string]any{"sub": "u1", "nested": "Jatin", "keys": "role,sub,user", "has": true, "missing": true,
			"json": `{"name":"Jatin"}`, "afterWrite": "changed,1,false", "spread": "sub,user,added",
			"self": map[string]any{"added": float64(1), "sub": "u1", "user": map[string]any{"name": "changed"}}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("call %d: got %v, want %v", i, got, want)
		}
		if !reflect.DeepEqual(token, before) {
			t.Fatalf("call %d: the shared Go map changed: got %v, want %v", i, token, before)
		}
	}
}

// TestSharedArgumentManyWrites: a script that writes, overwrites and deletes more
// properties than the object keeps inline reads back exactly what it wrote.
func TestSharedArgumentManyWrites(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ authorize: () => null })],
  callbacks: {
    authorized({ token }) {
      const nested = token.nested;
      for (const k of ["a", "b", "c", "d", "e", "f"]) token[k] = k + "1";
      token.b = "b2";
      token.e = "e2";
      delete token.a;
      delete token.f;
      delete token.sub;
      token.sub = "again";
      return {
        keys: Object.keys(token).join(","),
        values: Object.keys(token).filter((k) => k !== "nested").map((k) => token[k]).join(","),
        same: token.nested === nested,
        gone: token.a === undefined && !("f" in token),
      };
    },
  },
};
`})
	l := load(t, dir, nil)
	token := map[string]any{"sub": "u1", "nested": map[string]any{"x": 1.0}}
	got, err := l.gen.Call(context.Background(), "callbacks.authorized", map[string]any{"token": Shared(token)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"keys": "nested,b,c,d,e,sub", "values": "b2,c1,d1,e2,again", "same": true, "gone": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if want := map[string]any{"sub": "u1", "nested": map[string]any{"x": 1.0}}; !reflect.DeepEqual(token, want) {
		t.Errorf("the shared Go map changed: got %v, want %v", token, want)
	}
}
