package clientaddr

import (
	"net/http"
	"testing"
)

func TestClientIP(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		peer   string
		header http.Header
		want   string
	}{
		{"untrusted peer, forged header ignored", "203.0.113.9:4000", http.Header{"X-Forwarded-For": {"1.2.3.4"}}, "203.0.113.9"},
		{"trusted peer, one client", "10.1.2.3:4000", http.Header{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"trusted chain: right-most untrusted", "10.1.2.3:4000", http.Header{"X-Forwarded-For": {"1.1.1.1, 198.51.100.7, 10.2.2.2"}}, "198.51.100.7"},
		{"several header lines", "192.0.2.1:80", http.Header{"X-Forwarded-For": {"1.1.1.1", "198.51.100.8"}}, "198.51.100.8"},
		{"all trusted: the left-most", "10.1.2.3:4000", http.Header{"X-Forwarded-For": {"10.5.5.5, 10.6.6.6"}}, "10.5.5.5"},
		{"garbage stops the walk", "10.1.2.3:4000", http.Header{"X-Forwarded-For": {"nonsense"}}, "10.1.2.3"},
		{"trusted peer, no header", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"Forwarded for= with port and IPv6", "10.1.2.3:4000", http.Header{"Forwarded": {`for="[2001:db8::1]:4711";proto=https`}}, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &http.Request{RemoteAddr: tt.peer, Header: tt.header}
			if got := r.ClientIP(req); got != tt.want {
				t.Errorf("ClientIP(peer %s, %v): got %q, want %q", tt.peer, tt.header, got, tt.want)
			}
		})
	}
}

func TestNilResolverTrustsNoOne(t *testing.T) {
	var r *Resolver
	req := &http.Request{RemoteAddr: "127.0.0.1:1", Header: http.Header{"X-Forwarded-For": {"1.2.3.4"}}}
	if got := r.ClientIP(req); got != "127.0.0.1" {
		t.Errorf("nil resolver: got %q, want the peer 127.0.0.1", got)
	}
	if r.IsTrusted("127.0.0.1:1") {
		t.Error("nil resolver: IsTrusted got true, want false")
	}
}

func TestNewRefusesBadCIDR(t *testing.T) {
	if _, err := New([]string{"not-an-address"}); err == nil {
		t.Error("New(not-an-address): got nil error, want one")
	}
}
