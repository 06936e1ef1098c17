package script

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
)

const factorsConfig = `import Credentials from "callgate/providers/credentials";
import store, { factors } from "callgate/store";
export default {
  providers: [Credentials({ authorize: async () => null })],
  callbacks: {
    async jwt({ token }) {
      if (token.uncaught) return { list: await factors.list(token.userId) };
      try {
        return { list: await store.factors.list(token.userId), same: store.factors === factors };
      } catch (e) {
        return { name: e.name, message: e.message };
      }
    },
  },
};
`

func callFactors(t *testing.T, gen *Generation, token map[string]any) (map[string]any, error) {
	t.Helper()
	res, err := gen.Call(context.Background(), "callbacks.jwt", map[string]any{"token": token})
	m, _ := res.(map[string]any)
	return m, err
}

// TestFactorsListRefusals: a bad user id is a TypeError, and a gateway without a factor
// store says so, before any store is read.
func TestFactorsListRefusals(t *testing.T) {
	l := load(t, writeDir(t, map[string]string{"auth.config.js": factorsConfig}), nil)
	tests := []struct {
		name     string
		token    map[string]any
		wantName string
		wantMsg  string
	}{
		{"number", map[string]any{"userId": 42}, "TypeError", "factors.list: userId must be a non-empty string (the user's id), got number"},
		{"empty", map[string]any{"userId": ""}, "TypeError", "factors.list: userId must be a non-empty string (the user's id), got string"},
		{"null", map[string]any{"userId": nil}, "TypeError", "got null"},
		{"missing", map[string]any{}, "TypeError", "got undefined"},
		{"object", map[string]any{"userId": map[string]any{"id": "u1"}}, "TypeError", "got object"},
		{"no store", map[string]any{"userId": "u1"}, "Error", "factors.list: no store is configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := callFactors(t, l.gen, tc.token)
			if err != nil {
				t.Fatal(err)
			}
			if got["name"] != tc.wantName || !strings.Contains(got["message"].(string), tc.wantMsg) {
				t.Errorf("got %v, want %s containing %q", got, tc.wantName, tc.wantMsg)
			}
		})
	}
}

func TestFactorsList(t *testing.T) {
	st := factorsStoreForTest(t)
	ctx := context.Background()
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	yubikey := []byte{0x01, 0xfe, 0xff, 0x3e}
	laptop := []byte("laptop-credential-0123456789abcdef")
	must(st.CreatePasskey(ctx, store.Passkey{ID: yubikey, UserID: "u1", Name: "YubiKey", PublicKey: []byte{1}, CreatedAt: at("2026-01-02T03:04:05.678Z")}))
	must(st.CreatePasskey(ctx, store.Passkey{ID: laptop, UserID: "u1", PublicKey: []byte{2}, CreatedAt: at("2026-02-01T00:00:00Z")}))
	must(st.UsePasskey(ctx, yubikey, 5, at("2026-03-04T05:06:07.089Z")))
	must(st.SetTOTP(ctx, store.TOTPSecret{UserID: "u1", Sealed: []byte("sealed"), CreatedAt: at("2026-02-15T12:00:00Z")}))
	must(st.SetRecoveryCodes(ctx, "u1", [][]byte{[]byte("h1"), []byte("h2"), []byte("h3")}))
	must(st.UseRecoveryCode(ctx, "u1", []byte("h2")))

	must(st.SetTOTP(ctx, store.TOTPSecret{UserID: "totp-only", Sealed: []byte("sealed"), CreatedAt: at("2026-05-06T07:08:09Z")}))
	must(st.SetRecoveryCodes(ctx, "codes-used", [][]byte{[]byte("h")}))
	must(st.UseRecoveryCode(ctx, "codes-used", []byte("h")))
	must(st.CreatePasskey(ctx, store.Passkey{ID: []byte{0xfb}, UserID: "passkey-only", Name: "Phone", PublicKey: []byte{3}, CreatedAt: at("2026-07-08T09:10:11Z")}))

	l := load(t, writeDir(t, map[string]string{"auth.config.js": factorsConfig}), func(o *Options) { o.Factors = st })
	tests := []struct {
		userID string
		want   []any
	}{
		{"u1", []any{
			map[string]any{"type": "passkey", "id": "Af7_Pg", "name": "YubiKey", "createdAt": "2026-01-02T03:04:05.678Z", "lastUsedAt": "2026-03-04T05:06:07.089Z"},
			map[string]any{"type": "passkey", "id": "bGFwdG9wLWNyZWRlbnRpYWwtMDEyMzQ1Njc4OWFiY2RlZg", "name": "", "createdAt": "2026-02-01T00:00:00.000Z", "lastUsedAt": nil},
			map[string]any{"type": "totp", "createdAt": "2026-02-15T12:00:00.000Z"},
			map[string]any{"type": "recovery", "remaining": 2.0},
		}},
		{"totp-only", []any{map[string]any{"type": "totp", "createdAt": "2026-05-06T07:08:09.000Z"}}},
		{"codes-used", []any{}},
		{"passkey-only", []any{map[string]any{"type": "passkey", "id": "-w", "name": "Phone", "createdAt": "2026-07-08T09:10:11.000Z", "lastUsedAt": nil}}},
		{"nobody", []any{}},
	}
	for _, tc := range tests {
		t.Run(tc.userID, func(t *testing.T) {
			got, err := callFactors(t, l.gen, map[string]any{"userId": tc.userID})
			if err != nil {
				t.Fatal(err)
			}
			if got["message"] != nil {
				t.Fatalf("factors.list(%q) threw %v: %v", tc.userID, got["name"], got["message"])
			}
			if !reflect.DeepEqual(got["list"], tc.want) || got["same"] != true {
				t.Errorf("factors.list(%q):\n got %v\nwant %v (and the named export the default's)", tc.userID, got["list"], tc.want)
			}
		})
	}

	// A store that fails rejects: a policy that requires a second factor never reads an
	// outage as "no factors".
	closer, ok := st.(interface{ Close() error })
	if !ok {
		t.Fatalf("%T has no Close", st)
	}
	must(closer.Close())
	_, err := callFactors(t, l.gen, map[string]any{"userId": "u1", "uncaught": true})
	if se := asError(t, err); se.Kind != KindThrown || !strings.Contains(se.Message, "factors.list") {
		t.Errorf("with the store closed: got %v, want a thrown factors.list error", err)
	}
}

// TestFactorsNotInTestRuns: a test file sees only what it mocks, so factors.list in a
// test run does not read the store the gateway serves with, even when one is configured.
func TestFactorsNotInTestRuns(t *testing.T) {
	st := factorsStoreForTest(t)
	if err := st.SetRecoveryCodes(context.Background(), "u1", [][]byte{[]byte("h")}); err != nil {
		t.Fatal(err)
	}
	dir := writeDir(t, map[string]string{
		"auth.config.js": factorsConfig,
		"factors.test.js": `import { test, expect } from "callgate/test";
import { factors } from "callgate/store";
test("no factor store", () => {
  expect(() => factors.list("u1")).toThrow("factors.list: no store is configured");
});
`,
	})
	results, err := RunTests(context.Background(), Options{Dir: dir, Factors: st, Timeouts: Timeouts{Default: 5 * time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || !results[0].Passed() {
		t.Errorf("got %+v, want the one test to pass", results)
	}
}
