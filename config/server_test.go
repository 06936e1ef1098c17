package config

import (
	"errors"
	"testing"
	"time"
)

// TestServerLimits: the body deadline has a default and may not be turned off by a negative
// value (net/http would read that as "no limit"), and the admin listener is a host:port of
// its own.
func TestServerLimits(t *testing.T) {
	tests := []struct {
		yaml      string
		wantField string // "" = valid
	}{
		{"", ""},
		{"server: {request_body_timeout: 2s, admin_listen: 127.0.0.1:9090}", ""},
		{"server: {request_body_timeout: -1s}", "server.request_body_timeout"},
		{"server: {read_header_timeout: -1s}", "server.read_header_timeout"},
		{"server: {admin_listen: localhost}", "server.admin_listen"},
		{"listen: 127.0.0.1:4000\nserver: {admin_listen: 127.0.0.1:4000}", "server.admin_listen"},
	}
	for _, tt := range tests {
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
	var c Config
	c.ApplyDefaults()
	if c.Server.RequestBodyTimeout != Duration(10*time.Second) || c.Server.ReadHeaderTimeout != Duration(10*time.Second) || c.Server.AdminListen != "" {
		t.Errorf("defaults: request_body_timeout %v, read_header_timeout %v, admin_listen %q; want 10s, 10s, none",
			time.Duration(c.Server.RequestBodyTimeout), time.Duration(c.Server.ReadHeaderTimeout), c.Server.AdminListen)
	}
}
