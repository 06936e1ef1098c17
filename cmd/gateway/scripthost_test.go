package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestIsCleanPath: the front handler skips ServeMux exactly for the paths ServeMux would
// serve as they are, so that every unclean path still gets the mux's redirect.
func TestIsCleanPath(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {})
	for _, p := range []string{
		"/", "/app", "/app/", "/app/page.html", "/.well-known/jwks.json", "/a/.hidden/x",
		"/public/../admin", "/public/..", "/a/./b", "/a/.", "//a", "/a//b", "/a/b//", "/..", "/a/..b/c",
		"/a/b.", "/...", "/a/.../b", "",
	} {
		t.Run(p, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://gateway.test/", nil)
			req.URL.Path = p
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			muxServes := rec.Code == http.StatusOK
			if got := isCleanPath(p); got != muxServes {
				t.Errorf("isCleanPath(%q) = %v, but ServeMux answers %d", p, got, rec.Code)
			}
		})
	}
}
