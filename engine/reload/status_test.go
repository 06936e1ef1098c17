package reload

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestRedactedStatusHidesTheSourceLine: after a refused reload whose offending line holds a
// secret, the full status shows the line and the redacted one shows where it is (file,
// line, column, message) but not the line itself; each shows its own checks.
func TestRedactedStatusHidesTheSourceLine(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "auth.config.js"), configVersion("good"))
	g := startGateway(t, dir, false, -1)
	g.reloader.o.Checks = func(context.Context) map[string]any { return map[string]any{"store": "down: dial 10.0.0.7"} }
	g.reloader.o.PublicChecks = func(context.Context) map[string]any { return map[string]any{"store": "down"} }
	write(t, filepath.Join(dir, "auth.config.js"), "export default { providers: [] };\nconst key = \"sk_live_TOPSECRET\" );\n")
	if outcome, err := g.reloader.Reload(t.Context()); err == nil {
		t.Fatalf("reload of a broken file: outcome %v, no error", outcome)
	}

	type body struct {
		LastError *ErrorInfo     `json:"last_error"`
		Checks    map[string]any `json:"checks"`
	}
	get := func(h http.Handler) (body, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/-/status", nil))
		var b body
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || rec.Code != 200 || b.LastError == nil {
			t.Fatalf("status: %d %s, want 200 with last_error", rec.Code, rec.Body)
		}
		return b, rec.Body.String()
	}

	full, _ := get(g.reloader.StatusHandler())
	if !strings.Contains(full.LastError.SourceLine, "sk_live_TOPSECRET") || full.Checks["store"] != "down: dial 10.0.0.7" {
		t.Errorf("full status: source line %q, checks %v; want the offending line and the detailed checks", full.LastError.SourceLine, full.Checks)
	}
	redacted, raw := get(g.reloader.RedactedStatusHandler())
	e := redacted.LastError
	if strings.Contains(raw, "TOPSECRET") || e.SourceLine != RedactedSourceLine {
		t.Errorf("redacted status shows %q (body %s), want %q", e.SourceLine, raw, RedactedSourceLine)
	}
	if e.File != "auth.config.js" || e.Line != 2 || e.Column == 0 || e.Message == "" || e.Message != full.LastError.Message {
		t.Errorf("redacted last_error %+v: want the same file:line:column and message as the full one %+v", *e, *full.LastError)
	}
	if redacted.Checks["store"] != "down" {
		t.Errorf("redacted checks %v, want the public ones", redacted.Checks)
	}
	// Redacting a response must not redact what the operator sees afterwards.
	if again, _ := get(g.reloader.StatusHandler()); again.LastError.SourceLine != full.LastError.SourceLine {
		t.Errorf("full status after a redacted one: source line %q, want %q", again.LastError.SourceLine, full.LastError.SourceLine)
	}
}
