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
	}
	for _, tt := range tests {
		before := slices.Clone(tt.before)
		if got := withMethod(tt.before, tt.method); !slices.Equal(got, tt.want) || !slices.Equal(tt.before, before) {
			t.Errorf("withMethod(%v, %s) = %v (before now %v), want %v and before unchanged", before, tt.method, got, tt.before, tt.want)
		}
	}
}
