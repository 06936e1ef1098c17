package reload

import (
	"encoding/json"
	"net/http"
)

// StatusHandler serves GET /-/status: the live generation (hash, load time), whether the
// directory is watched, reload counts, and the last refused reload with file:line:column
// (until a later reload succeeds). The status code is 200 either way: the old generation
// still serves, so the gateway is healthy; the error is for the operator to read.
func (r *Reloader) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		var checks map[string]any
		if r.o.Checks != nil {
			checks = r.o.Checks(req.Context())
		}
		body, err := json.MarshalIndent(struct {
			State string `json:"status"`
			Status
			Checks map[string]any `json:"checks,omitempty"`
		}{"ok", r.Status(), checks}, "", "  ")
		if err != nil {
			http.Error(w, "encode status", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(body, '\n'))
	})
}
