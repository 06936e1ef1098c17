package proxy

import (
	"slices"
	"testing"
)

// TestStepUpKinds: authorized's {stepUp} answer, read strictly: anything malformed is an
// error (the request fails closed), never a pass.
func TestStepUpKinds(t *testing.T) {
	tests := []struct {
		name    string
		res     map[string]any
		kinds   []string
		asked   bool
		wantErr bool
	}{
		{name: "no stepUp", res: map[string]any{"headers": map[string]any{}}},
		{name: "stepUp false", res: map[string]any{"stepUp": false}},
		{name: "stepUp null", res: map[string]any{"stepUp": nil}},
		{name: "stepUp true: any factor", res: map[string]any{"stepUp": true}, asked: true},
		{name: "no factors listed: any", res: map[string]any{"stepUp": map[string]any{}}, asked: true},
		{name: "passkey", res: map[string]any{"stepUp": map[string]any{"factors": []any{"passkey"}}}, kinds: []string{"passkey"}, asked: true},
		{name: "both", res: map[string]any{"stepUp": map[string]any{"factors": []any{"totp", "passkey"}}}, kinds: []string{"totp", "passkey"}, asked: true},
		{name: "unknown kind", res: map[string]any{"stepUp": map[string]any{"factors": []any{"sms"}}}, asked: true, wantErr: true},
		{name: "factors not an array", res: map[string]any{"stepUp": map[string]any{"factors": "passkey"}}, asked: true, wantErr: true},
		{name: "stepUp a string", res: map[string]any{"stepUp": "yes"}, asked: true, wantErr: true},
		{name: "a number in factors", res: map[string]any{"stepUp": map[string]any{"factors": []any{1.0}}}, asked: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kinds, asked, err := stepUpKinds(tt.res)
			if asked != tt.asked || (err != nil) != tt.wantErr || !slices.Equal(kinds, tt.kinds) {
				t.Errorf("stepUpKinds(%v) = %v, %v, %v; want %v, %v, error %v", tt.res, kinds, asked, err, tt.kinds, tt.asked, tt.wantErr)
			}
		})
	}
}
