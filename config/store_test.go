package config

import (
	"strings"
	"testing"
	"time"
)

func TestStoreSettings(t *testing.T) {
	tests := []struct {
		yaml      string
		wantField string // "" = valid
	}{
		{"", ""},
		{"store: bolt", ""},
		{"store: redis://127.0.0.1:6379/0", ""},
		{"store: rediss://u:p@cache:6380/1", ""},
		{"store: redis+sentinel://a:26379,b:26379/?master_name=m", ""},
		{"store: redis+cluster://a:7000,b:7001", ""},
		{"store: memcached://x:1", "store"},
		{"store: postgres", "store"},
		{"redis: {key_prefix: \"a{b}\"}", "redis.key_prefix"},
		{"redis: {pool_size: -1}", "redis.pool_size"},
		{"store: rediss://cache:6380\nredis: {tls_ca_file: /etc/callgate/redis-ca.pem}", ""},
		{"store: rediss+cluster://a:7000,b:7001\nredis: {tls_ca_file: /etc/callgate/redis-ca.pem}", ""},
		{"store: redis://cache:6379\nredis: {tls_ca_file: /etc/callgate/redis-ca.pem}", "redis.tls_ca_file"},
		{"redis: {tls_ca_file: /etc/callgate/redis-ca.pem}", "redis.tls_ca_file"},
		{"security: {revocation_on_store_error: maybe}", "security.revocation_on_store_error"},
		{"security: {signin_max_failures_per_username: -1}", "security.signin_max_failures_per_username"},
		{"security: {email_sends_per_address: 0, email_sends_per_client: 0}", ""},
		{"security: {email_sends_per_address: -1}", "security.email_sends_per_address"},
		{"security: {email_sends_per_client: -2}", "security.email_sends_per_client"},
		{"security: {email_send_window: -1m}", "security.email_send_window"},
	}
	for _, tt := range tests {
		if got, err := invalidField(t, tt.yaml); got != tt.wantField {
			t.Errorf("Validate(%q): got field %q (%v), want %q", tt.yaml, got, err, tt.wantField)
		}
	}
	c := Config{Store: "redis://user:hunter2@cache:6379/0"}
	c.ApplyDefaults()
	if got := c.RedactedStore(); strings.Contains(got, "hunter2") {
		t.Errorf("RedactedStore: got %q, want the password hidden", got)
	}
	if c.Redis.KeyPrefix != "callgate" || *c.Security.SigninMaxFailuresPerUsername != 5 || *c.Security.SigninMaxFailuresPerAddress != 50 || c.Security.RevocationOnStoreError != "open" {
		t.Errorf("defaults: got %+v %+v", c.Redis, c.Security)
	}
	if *c.Security.EmailSendsPerAddress != 5 || *c.Security.EmailSendsPerClient != 20 || c.Security.EmailSendWindow != Duration(time.Hour) {
		t.Errorf("e-mail sending defaults: got %+v", c.Security)
	}
}

// invalidField parses yaml, applies the defaults and validates: the field Validate names
// ("" when valid; the whole message of an error that is not an *Error), and the error.
func invalidField(t *testing.T, yaml string) (string, error) {
	t.Helper()
	c, err := Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatalf("Parse(%q): %v", yaml, err)
	}
	c.ApplyDefaults()
	err = c.Validate()
	if ce, ok := err.(*Error); ok {
		return ce.Field, err
	}
	if err != nil {
		return err.Error(), err
	}
	return "", nil
}
