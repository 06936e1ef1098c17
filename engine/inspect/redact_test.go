package inspect

import (
	"encoding/json"
	"testing"
)

func TestRedaction(t *testing.T) {
	const jwe = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..abcdefghijkl.MNOPQRSTUVWXYZ0123456789abcd.efghijklmnop"
	const jws = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
	cases := []struct {
		name, in, want string
		extra          []string
	}{
		{"credentials", `{"username":"alice","password":"hunter2","csrfToken":"abc"}`, `{"username":"alice","password":"[redacted]","csrfToken":"[redacted]"}`, nil},
		{"order kept", `{"z":1,"a":2}`, `{"z":1,"a":2}`, nil},
		{"oauth account", `{"account":{"provider":"github","access_token":"gho_x","refresh_token":"r","id_token":"i","expires_at":1700000000}}`,
			`{"account":{"provider":"github","access_token":"[redacted]","refresh_token":"[redacted]","id_token":"[redacted]","expires_at":1700000000}}`, nil},
		{"jwt's token object is shown", `{"token":{"sub":"1","name":"A"}}`, `{"token":{"sub":"1","name":"A"}}`, nil},
		{"a raw token anywhere", `{"token":"` + jwe + `","note":["` + jws + `"]}`, `{"token":"[redacted]","note":["[redacted]"]}`, nil},
		{"headers", `{"headers":{"cookie":"next-auth.session-token=x","authorization":"Bearer y","x-api-key":"k","accept":"*/*"}}`,
			`{"headers":{"cookie":"[redacted]","authorization":"[redacted]","x-api-key":"[redacted]","accept":"*/*"}}`, nil},
		{"everything under a secret key", `{"client_secret":{"a":"b","n":[1,2]}}`, `{"client_secret":{"a":"[redacted]","n":["[redacted]","[redacted]"]}}`, nil},
		{"a user record's hash", `{"passwordHash":"$2a$10$x","role":"admin"}`, `{"passwordHash":"[redacted]","role":"admin"}`, nil},
		{"oauth code and verifier", `{"code":"c","code_verifier":"v","state":"s"}`, `{"code":"[redacted]","code_verifier":"[redacted]","state":"[redacted]"}`, nil},
		{"the provider's own password field", `{"username":"a","passcode":"1234"}`, `{"username":"a","passcode":"[redacted]"}`, []string{"passcode"}},
		{"scalars", `"plain"`, `"plain"`, nil},
		{"null and bools", `{"a":null,"b":true,"password":false}`, `{"a":null,"b":true,"password":false}`, nil},
		{"unreadable", `{"a":`, `"[unreadable]"`, nil},
		{"control characters stay JSON", `{"a":"\u0000\u001f"}`, `{"a":"\u0000\u001f"}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := string(newRedactor(tc.extra).json(json.RawMessage(tc.in)))
			if got != tc.want {
				t.Errorf("redact(%s)\n got %s\nwant %s", tc.in, got, tc.want)
			}
		})
	}
}

// What the user typed into a password field is redacted wherever a script copied it.
func TestRedactionOfTypedSecrets(t *testing.T) {
	r := newRedactor(nil, "hunter22")
	got := string(r.json(json.RawMessage(`{"token":{"pw":"hunter22","note":"was hunter22!","name":"Ann"},"short":"hunter2"}`)))
	want := `{"token":{"pw":"[redacted]","note":"[redacted]","name":"Ann"},"short":"hunter2"}`
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestLooksLikeJOSE(t *testing.T) {
	for s, want := range map[string]bool{
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlc2lnbmF0dXJl": true,
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ":                          false, // two parts
		"hello.world.again.and.more.words":                                 false,
		"eyJ with spaces . and . dots but not base64url at all":            false,
	} {
		if got := looksLikeJOSE(s); got != want {
			t.Errorf("looksLikeJOSE(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzRedact: whatever a script's values are, the redacted form is valid JSON, and a
// password anywhere in it is gone.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{`{"password":"p"}`, `[{"a":{"client_secret":[1,"x"]}}]`, `"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlc2lnbmF0dXJl"`, `{"<\u2028>":"\u0000"}`, `1e999`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := newRedactor(nil).json(json.RawMessage(in))
		if !json.Valid(out) {
			t.Fatalf("redact(%q) = %q, not JSON", in, out)
		}
		var v any
		if json.Unmarshal([]byte(in), &v) != nil {
			return
		}
		var walk func(any, bool)
		walk = func(x any, secret bool) {
			switch x := x.(type) {
			case map[string]any:
				for k, c := range x {
					walk(c, secret || k == "password")
				}
			case []any:
				for _, c := range x {
					walk(c, secret)
				}
			case string:
				if secret && x != Redacted {
					t.Fatalf("redact(%q) = %q keeps %q under a password key", in, out, x)
				}
			}
		}
		var got any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("redact(%q) = %q: %v", in, out, err)
		}
		walk(got, false)
	})
}
