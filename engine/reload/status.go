package reload

import (
	"encoding/json"
	"net/http"
)

// StatusHandler serves GET /-/status: the live generation (hash, load time), whether the
// directory is watched, reload counts, and the last refused reload with file:line:column
// and the offending source line (until a later reload succeeds). The status code is 200
// either way: the old generation still serves, so the gateway is healthy; the error is for
// the operator to read. It shows everything, so it belongs where only operators reach it.
func (r *Reloader) StatusHandler() http.Handler {
	return r.statusHandler(false)
}

// RedactedSourceLine replaces the offending source line in RedactedStatusHandler.
const RedactedSourceLine = "(redacted: the source line is in the gateway's log and on the admin listener)"

// RedactedStatusHandler is StatusHandler for anyone: the offending source line of a refused
// reload is replaced by RedactedSourceLine (a line of the scripts can hold a secret: an API
// key, a password hash), and the checks come from Options.PublicChecks. The file, line,
// column and message stay, which is what tells an operator where to look.
func (r *Reloader) RedactedStatusHandler() http.Handler {
	return r.statusHandler(true)
}

func (r *Reloader) statusHandler(redact bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		checksOf := r.o.Checks
		if redact {
			checksOf = r.o.PublicChecks
		}
		var checks map[string]any
		if checksOf != nil {
			checks = checksOf(req.Context())
		}
		status := r.Status()
		if redact && status.LastError != nil && status.LastError.SourceLine != "" {
			status.LastError.SourceLine = RedactedSourceLine // Status returned a copy
		}
		body, err := json.MarshalIndent(struct {
			State string `json:"status"`
			Status
			Checks map[string]any `json:"checks,omitempty"`
		}{"ok", status, checks}, "", "  ")
		if err != nil {
			http.Error(w, "encode status", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(body, '\n'))
	})
}
