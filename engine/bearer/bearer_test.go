package bearer

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestFromHeader(t *testing.T) {
	long := strings.Repeat("a", MaxTokenBytes+1)
	tests := []struct {
		name        string
		values      []string
		want        string
		wantPresent bool
		wantErr     string
	}{
		{"no header", nil, "", false, ""},
		{"a bearer token", []string{"Bearer abc.DEF-_~+/="}, "abc.DEF-_~+/=", true, ""},
		{"the scheme in any case", []string{"bEaReR tok"}, "tok", true, ""},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", true, "more than one"},
		{"another scheme is the app's", []string{"Basic dXNlcjpwYXNz"}, "", false, ""},
		{"no token", []string{"Bearer"}, "", true, "empty"},
		{"an empty token", []string{"Bearer "}, "", true, "empty"},
		{"a space inside", []string{"Bearer a b"}, "", true, "characters"},
		{"a comma", []string{"Bearer a,b"}, "", true, "characters"},
		{"a quote", []string{`Bearer "a"`}, "", true, "characters"},
		{"padding in the middle", []string{"Bearer a=b"}, "", true, "characters"},
		{"only padding", []string{"Bearer =="}, "", true, "characters"},
		{"a control character", []string{"Bearer a\x00"}, "", true, "characters"},
		{"too long", []string{"Bearer " + long}, "", true, "too long"},
	}
	for _, tc := range tests {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add("Authorization", v)
		}
		got, present, err := FromHeader(h)
		if got != tc.want || present != tc.wantPresent {
			t.Errorf("%s: got %q present %v, want %q present %v", tc.name, got, present, tc.want, tc.wantPresent)
		}
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: got error %v, want none", tc.name, err)
		case tc.wantErr != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: got error %v, want ErrInvalid saying %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestNewRefusesUnsafeOptions(t *testing.T) {
	ok := Options{ID: "idp", Issuer: "https://idp.example", Audience: []string{"api"}}
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no audience", func(o *Options) { o.Audience = nil }, "audience is required"},
		{"an empty audience", func(o *Options) { o.Audience = []string{""} }, "audience is required"},
		{"a symmetric algorithm", func(o *Options) { o.Algorithms = []string{"HS256"} }, `"HS256" is not accepted`},
		{"alg none", func(o *Options) { o.Algorithms = []string{"none"} }, `"none" is not accepted`},
		{"no issuer", func(o *Options) { o.Issuer = "" }, "not an http(s) URL"},
		{"introspection without a client", func(o *Options) { o.Introspect = true }, "needs the client id"},
		{"a bad introspection URL", func(o *Options) { o.IntrospectionURL = "ftp://x" }, "not an http(s) URL"},
	}
	for _, tc := range tests {
		o := ok
		tc.edit(&o)
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := New(ok); err != nil {
		t.Errorf("valid options: %v", err)
	}
}
