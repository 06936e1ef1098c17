package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/callgate/callgate/engine/clientaddr"
	"github.com/callgate/callgate/engine/script"
)

// TestAuthorizedArgument: the authorized callback's argument reads as the plain objects
// NextAuth's middleware model describes, although the gateway builds its properties only
// when the script reads them: lower-case header names (Node's), repeated headers joined,
// the first of repeated query values, null token and auth when signed out, and the script's
// writes kept from the request the gateway forwards.
func TestAuthorizedArgument(t *testing.T) {
	dir := t.TempDir()
	src := `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ authorize: () => null })],
  callbacks: {
    authorized(arg) {
      const { token, auth, request } = arg;
      const seen = {
        args: Object.keys(arg).join(","),
        keys: Object.keys(request).join(","),
        method: request.method, url: request.url, path: request.path, ip: request.ip, route: request.route,
        accept: request.headers.accept,
        upper: request.headers["Accept"] === undefined,
        missing: request.headers["x-none"] === undefined && !("x-none" in request.headers),
        forwarded: request.headers["x-forwarded-for"],
        headerNames: Object.keys(request.headers).join(","),
        q: request.query.q, other: request.query.other,
        json: JSON.parse(JSON.stringify(request)).headers["user-agent"],
        sameHeaders: request.headers === request.headers,
        token: token === null ? null : token.sub,
        auth: auth === null ? null : auth.user.name,
        via: request.auth === null ? null : Object.entries(request.auth).map(([k, v]) => k + "=" + v).join(","),
      };
      request.headers.accept = "changed";
      request.path = "/elsewhere";
      seen.after = request.headers.accept + " " + request.path;
      return seen;
    },
  },
};
`
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	gen, err := script.Load(context.Background(), script.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gen.Close)

	addrs, err := clientaddr.New([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{o: Options{Origin: "https://gw.test"}, addrs: addrs}
	r := httptest.NewRequest(http.MethodGet, "https://app.test/a?q=1&q=2&other=x", nil)
	r.RemoteAddr = "10.0.0.5:4000"
	header := http.Header{
		"Accept":          {"text/html"},
		"User-Agent":      {"test"},
		"X-Forwarded-For": {"198.51.100.7", "10.0.0.2"},
	}
	r.Header = header
	// The URL and the client address are worked out from the request when read.
	v := &view{method: "GET", path: "/a", rawQuery: r.URL.RawQuery, header: header, route: "app", r: r, rt: &route{}, p: p}
	common := map[string]any{
		"args": "auth,request,token", "keys": "auth,headers,ip,method,path,query,route,url",
		"method": "GET", "url": "https://gw.test/a?q=1&q=2&other=x", "path": "/a", "ip": "198.51.100.7", "route": "app",
		"accept": "text/html", "upper": true, "missing": true, "forwarded": "198.51.100.7, 10.0.0.2",
		"headerNames": "accept,user-agent,x-forwarded-for", "q": "1", "other": "x", "json": "test", "sameHeaders": true,
		"after": "changed /elsewhere",
	}
	tests := []struct {
		name        string
		token, auth script.Object
		via         *authInfo
		wantToken   any
		wantAuth    any
		wantVia     any
	}{
		{"signed out", nil, nil, nil, nil, nil, nil},
		{"signed in", script.Shared{"sub": "u1"}, script.Shared{"user": map[string]any{"name": "Jatin"}}, cookieAuth, "u1", "Jatin", "method=cookie,type=session"},
		{"a session bearer", script.Shared{"sub": "u1"}, script.Shared{"user": map[string]any{"name": "Jatin"}}, sessionBearerAuth, "u1", "Jatin", "method=bearer,type=session"},
		{"a provider's token", script.Shared{"sub": "u1"}, nil, &authInfo{method: "bearer", kind: "jwt", provider: "idp"}, "u1", nil, "method=bearer,type=jwt,provider=idp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rv := *v
			rv.auth = tt.via
			got, err := gen.Authorized(context.Background(), &authorizedArg{token: tt.token, auth: tt.auth, request: rv})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"token": tt.wantToken, "auth": tt.wantAuth, "via": tt.wantVia}
			for k, x := range common {
				want[k] = x
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
			if header.Get("Accept") != "text/html" || v.path != "/a" {
				t.Errorf("the script's writes reached the request: Accept %q, path %q", header.Get("Accept"), v.path)
			}
		})
	}
}

func TestStripCookies(t *testing.T) {
	prefixes := []string{"next-auth.", "__Secure-next-auth."}
	tests := []struct {
		name string
		in   []string
		want []string // nil: no Cookie header left
	}{
		{"no cookies", nil, nil},
		{"only the app's", []string{"theme=dark; lang=en"}, []string{"theme=dark; lang=en"}},
		{"session removed", []string{"theme=dark; next-auth.session-token=abc; lang=en"}, []string{"theme=dark; lang=en"}},
		{"chunks and secure names removed", []string{"__Secure-next-auth.session-token.0=a;__Secure-next-auth.session-token.1=b; x=1"}, []string{"x=1"}},
		{"only the gateway's", []string{"next-auth.csrf-token=1; next-auth.callback-url=2"}, nil},
		{"several headers joined", []string{"a=1; next-auth.session-token=z", "b=2"}, []string{"a=1; b=2"}},
		{"prefix inside a value is not a name", []string{"note=next-auth.x; a=1"}, []string{"note=next-auth.x; a=1"}},
		{"empty parts dropped", []string{" ; a=1;; next-auth.x=1 ;"}, []string{"a=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.in {
				h.Add("Cookie", v)
			}
			stripCookies(h, prefixes)
			if got := h["Cookie"]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// BenchmarkAuthorizedCall is one authorized callback call as the proxy makes it (the
// bench script's callback: it reads the token and the path), on both cores.
//
//	go test -run '^$' -bench AuthorizedCall -benchmem ./engine/proxy/
func BenchmarkAuthorizedCall(b *testing.B) {
	logger := slog.New(slog.DiscardHandler)
	gen, err := script.Load(context.Background(), script.Options{Dir: "../../bench/scripts-authorized", Logger: logger,
		HeapGuard: script.NewHeapGuard(1<<30, 0, logger)}) // as gateway serve has by default
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gen.Close)
	token := script.Shared{"sub": "65a1f0c2e4b0a1b2c3d4e5f6", "name": "Jatin", "role": "admin", "email": "jatin@example.com"}
	header := http.Header{"Accept": {"application/json"}, "User-Agent": {"bench"}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			arg := &authorizedArg{token: token, request: view{method: "GET", path: "/plain", header: header, route: "app", url: "http://gw.test/plain", ip: "127.0.0.1"}}
			res, err := gen.Authorized(context.Background(), arg)
			if err != nil || res != true {
				b.Fatalf("got %v, %v", res, err)
			}
		}
	})
}
