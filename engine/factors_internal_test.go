package engine

import (
	"slices"
	"testing"
)

// TestSecondFactorKinds: signIn's {secondFactor} answer, read strictly: a malformed or
// unrunnable policy is an error (the sign-in is refused), never a sign-in with less.
func TestSecondFactorKinds(t *testing.T) {
	on := []string{kindPasskey, kindTOTP}
	tests := []struct {
		name    string
		res     any
		on      []string
		kinds   []string
		asked   bool
		wantErr bool
	}{
		{name: "true (allowed)", res: true, on: on},
		{name: "a redirect string", res: "/blocked", on: on},
		{name: "secondFactor false", res: map[string]any{"secondFactor": false}, on: on},
		{name: "secondFactor true: every kind on", res: map[string]any{"secondFactor": true}, on: on, kinds: on, asked: true},
		{name: "one kind", res: map[string]any{"secondFactor": []any{"totp"}}, on: on, kinds: []string{kindTOTP}, asked: true},
		{name: "kinds that are off are dropped", res: map[string]any{"secondFactor": []any{"passkey", "totp"}}, on: []string{kindTOTP}, kinds: []string{kindTOTP}, asked: true},
		{name: "duplicates once", res: map[string]any{"secondFactor": []any{"totp", "totp"}}, on: on, kinds: []string{kindTOTP}, asked: true},
		{name: "only kinds that are off", res: map[string]any{"secondFactor": []any{"passkey"}}, on: []string{kindTOTP}, asked: true, wantErr: true},
		{name: "true with nothing on", res: map[string]any{"secondFactor": true}, asked: true, wantErr: true},
		{name: "unknown kind", res: map[string]any{"secondFactor": []any{"sms"}}, on: on, asked: true, wantErr: true},
		{name: "a string", res: map[string]any{"secondFactor": "totp"}, on: on, asked: true, wantErr: true},
		{name: "empty list", res: map[string]any{"secondFactor": []any{}}, on: on, asked: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kinds, asked, err := secondFactorKinds(tt.res, tt.on)
			if asked != tt.asked || (err != nil) != tt.wantErr || !slices.Equal(kinds, tt.kinds) {
				t.Errorf("secondFactorKinds(%v, %v) = %v, %v, %v; want %v, %v, error %v", tt.res, tt.on, kinds, asked, err, tt.kinds, tt.asked, tt.wantErr)
			}
		})
	}
}

func TestWithMethod(t *testing.T) {
	tests := []struct {
		before []string
		method string
		want   []string
	}{
		{nil, amrPasskey, []string{amrPasskey}},
		{[]string{amrPassword}, amrOTP, []string{amrPassword, amrOTP, amrMulti}},
		{[]string{amrFederated}, amrPasskey, []string{amrFederated, amrPasskey, amrMulti}},
		// The same method twice is one method: no "mfa" from proving one factor again.
		{[]string{amrPasskey}, amrPasskey, []string{amrPasskey}},
		{[]string{amrPasskey, amrMulti}, amrOTP, []string{amrPasskey, amrMulti, amrOTP}},
	}
	for _, tt := range tests {
		before := slices.Clone(tt.before)
		if got := withMethod(tt.before, tt.method); !slices.Equal(got, tt.want) || !slices.Equal(tt.before, before) {
			t.Errorf("withMethod(%v, %s) = %v (before now %v), want %v and before unchanged", before, tt.method, got, tt.before, tt.want)
		}
	}
}

func TestUnproved(t *testing.T) {
	tests := []struct {
		kinds, amr, want []string
	}{
		{[]string{kindPasskey, kindTOTP}, []string{amrPassword}, []string{kindPasskey, kindTOTP}},
		{[]string{kindPasskey}, []string{amrPasskey, amrMulti}, nil},
		{[]string{kindPasskey, kindTOTP}, []string{amrPasskey, amrMulti}, []string{kindTOTP}},
		{[]string{kindTOTP}, []string{amrFederated}, []string{kindTOTP}},
	}
	for _, tt := range tests {
		if got := unproved(tt.kinds, tt.amr); !slices.Equal(got, tt.want) {
			t.Errorf("unproved(%v, %v) = %v, want %v", tt.kinds, tt.amr, got, tt.want)
		}
	}
}

// TestLoopbackHost: only this machine may receive a sign-in link without TLS.
func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.9.9.9": true, "::1": true,
		"mail.example.com": false, "10.0.0.5": false, "localhost.example.com": false, "": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
