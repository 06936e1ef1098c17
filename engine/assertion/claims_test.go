package assertion

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func claimsOf(t *testing.T, obj string) *Claims {
	t.Helper()
	c := NewClaims(4)
	if err := c.SetObject([]byte(obj)); err != nil {
		t.Fatalf("SetObject(%s): %v", obj, err)
	}
	return c
}

// TestClaimsKeepOrder: claims come out in the order they were set; setting one again keeps
// its place, as assignment does on a JavaScript object.
func TestClaimsKeepOrder(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Claims) error
		want string
	}{
		{"insertion order", func(c *Claims) error {
			return c.SetObject([]byte(`{"z":1,"a":{"y":true,"b":null},"m":"x"}`))
		}, `{"z":1,"a":{"y":true,"b":null},"m":"x"}`},
		{"a second set replaces in place", func(c *Claims) error {
			if err := c.SetObject([]byte(`{"role":"user","sub":"forged","team":"a"}`)); err != nil {
				return err
			}
			return c.Set("sub", "u1")
		}, `{"role":"user","sub":"u1","team":"a"}`},
		{"names are JSON-escaped", func(c *Claims) error {
			return c.Set("a\"b\u0001<", "v")
		}, `{"a\"b\u0001\u003c":"v"}`},
		{"escaped names from an object are the same name", func(c *Claims) error {
			if err := c.SetObject([]byte(`{"\u0061":1}`)); err != nil {
				return err
			}
			return c.Set("a", 2)
		}, `{"a":2}`},
	}
	for _, tc := range tests {
		c := NewClaims(0)
		if err := tc.set(c); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := c.MarshalJSON()
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: got %s (%v), want %s", tc.name, got, err, tc.want)
		}
	}
}

func TestClaimsRefuseWhatIsNotAnObject(t *testing.T) {
	for _, in := range []string{``, `[1]`, `"s"`, `{"a":`, `{"a":1}x`} {
		if err := NewClaims(0).SetObject([]byte(in)); err == nil {
			t.Errorf("SetObject(%q): got no error", in)
		}
	}
}

// TestSignKeepsClaimOrder: the signed payload is the claims in order, then iss, iat and exp;
// a claim that names one of those keeps its place and takes the signer's value.
func TestSignKeepsClaimOrder(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	k := open(t, t.TempDir(), &clock{t: t0})
	claims := claimsOf(t, `{"zeta":1,"iss":"forged","alpha":[2]}`)
	tok, _, err := k.Sign(claims, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("got %d parts, want 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"zeta":1,"iss":"https://auth.example.test","alpha":[2],"iat":1893456000,"exp":1893456300}`
	if string(payload) != want {
		t.Errorf("payload: got %s, want %s", payload, want)
	}
	if got, _ := claims.MarshalJSON(); string(got) != `{"zeta":1,"iss":"forged","alpha":[2]}` {
		t.Errorf("Sign changed its argument: %s", got)
	}
}
