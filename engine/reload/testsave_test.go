package reload

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

// outcomeCounter is a Recorder: the reloads by outcome.
type outcomeCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomeCounter) ReloadDone(outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n[outcome]++
}

func (o *outcomeCounter) count(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[outcome]
}

// TestSavedTestFileIsRunAtOnce: saving only a test file (the bundle of the config is the
// live one) runs the self-tests; a failing one is reported in the log, /-/status and the
// metrics, while the live generation keeps serving; saving it fixed clears the report.
func TestSavedTestFileIsRunAtOnce(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "auth.config.js"), configVersion("good"))
	write(t, filepath.Join(dir, "auth.test.js"), passingTest)
	g := startGateway(t, dir, true, -1)
	live := g.eng.Generation().Hash()

	saved := time.Now()
	writeRename(t, filepath.Join(dir, "auth.test.js"), failingTest)
	// "Within a second" is the target; the bound only stops a test that broke, on a busy
	// machine it is not what the test measures.
	testkit.WaitFor(t, "the failing test reported", 15*time.Second, func() error {
		if st := g.reloader.Status(); st.LastError == nil || st.LastError.Test == "" {
			return fmt.Errorf("status has no failing test yet; logs:\n%s", g.logs.String())
		}
		return nil
	})
	latency := time.Since(saved)
	t.Logf("save of a failing test → reported: %s", latency)

	res, err := http.Get(g.url + "/-/status")
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	err = json.NewDecoder(res.Body).Decode(&st)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	e := st.LastError
	if e == nil || e.Test != "auth.test.js › session has no version" || e.File != "auth.test.js" || e.Line != 5 || !strings.Contains(e.Message, "toBeUndefined") {
		t.Errorf("/-/status last_error: got %+v, want the failing test at auth.test.js:5", e)
	}
	if st.Hash != live || g.eng.Generation().Hash() != live {
		t.Errorf("live generation: got %s (status %s), want %s kept", g.eng.Generation().Hash(), st.Hash, live)
	}
	if v, code := g.version(t); v != "good" || code != 200 {
		t.Errorf("session after the failing test: got %q %d, want good 200", v, code)
	}
	if n := g.outcomes.count(string(Failed)); n != 1 {
		t.Errorf("failed reloads recorded: got %d, want 1", n)
	}
	if logs := g.logs.String(); !strings.Contains(logs, "SCRIPT_RELOAD_REFUSED") || !strings.Contains(logs, "session has no version") {
		t.Errorf("log: got no refusal naming the test\n%s", logs)
	}

	writeRename(t, filepath.Join(dir, "auth.test.js"), passingTest)
	testkit.WaitFor(t, "the report cleared once the test passes", 15*time.Second, func() error {
		if st := g.reloader.Status(); st.LastError != nil {
			return fmt.Errorf("last error still %+v", st.LastError)
		}
		return nil
	})
	if got := g.eng.Generation().Hash(); got != live {
		t.Errorf("after the fix: generation %s, want the same %s (only a test changed)", got, live)
	}
}
