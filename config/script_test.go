package config

import (
	"errors"
	"testing"
)

// TestScriptPoolSizes: both lanes' pool sizes default to 0 (sized from the CPUs by the
// script host) and may not be negative.
func TestScriptPoolSizes(t *testing.T) {
	for _, tt := range []struct {
		yaml      string
		wantField string // "" = valid
	}{
		{"", ""},
		{"script: {pool_size: 8, signin_pool_size: 2}", ""},
		{"script: {pool_size: -1}", "script.pool_size"},
		{"script: {signin_pool_size: -1}", "script.signin_pool_size"},
	} {
		c, err := Parse([]byte(tt.yaml), "test.yaml")
		if err != nil {
			t.Fatalf("%q: parse: %v", tt.yaml, err)
		}
		c.ApplyDefaults()
		err = c.Validate()
		var ce *Error
		switch {
		case tt.wantField == "" && err != nil:
			t.Errorf("%q: got %v, want valid", tt.yaml, err)
		case tt.wantField != "" && (!errors.As(err, &ce) || ce.Field != tt.wantField):
			t.Errorf("%q: got %v, want an error for %s", tt.yaml, err, tt.wantField)
		}
	}
}
