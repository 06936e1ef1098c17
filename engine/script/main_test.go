package script

import (
	"os"
	"testing"
	"time"

	"github.com/dlclark/regexp2/v2"
)

// testRegexpMatchTimeout replaces the gateway's regexp2 match timeout in this package's
// tests. The tests run backtracking regular expressions on purpose; each keeps a core busy
// until its match timeout even after its call has been answered, and 30 s of that per case
// would slow the whole package on a small machine. It stays above every deadline the tests
// give calls (5 s at most), which the script host relies on (see regexp.go).
const testRegexpMatchTimeout = 6 * time.Second

func TestMain(m *testing.M) {
	// Set before any test compiles a regular expression (regexp2 reads it at compile time),
	// while no other goroutine runs.
	regexp2.DefaultMatchTimeout = testRegexpMatchTimeout
	os.Exit(m.Run())
}
