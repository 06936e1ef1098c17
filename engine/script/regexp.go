package script

import (
	"math"
	"time"

	"github.com/dlclark/regexp2/v2"
)

// goja runs the regular expressions RE2 cannot express (backreferences, lookaround) and RE2
// ones started past index 0 (sticky, or global from a lastIndex) on regexp2, a backtracking
// engine. A match runs inside one Go call that never looks at the runtime's interrupt, so a
// pattern that backtracks exponentially would hold its runtime, and its goroutine, forever;
// the deadline alone cannot stop it. goja has no option for this, and keeps its compiled
// regexp2 patterns to itself, so the bound is regexp2's own, process-wide setting:
// DefaultMatchTimeout, which every pattern takes when goja compiles it (at program compile
// time for literals, at run time for new RegExp).
//
// When the timeout strikes, goja reports "no match" instead of an error, and the script
// carries on. That must never decide a call (a `deny if /pattern/.test(path)` would let the
// request through), so no call's deadline is longer than the match timeout (see
// maxCallTimeout): a match that timed out began inside its call, so the call's deadline has
// passed by then, the runtime holds an interrupt that stops the script at its next
// instruction, and the call ends with the deadline error whatever the script did with the
// wrong answer in between. The caller does not wait for that: a call that does not stop
// within abandonGrace of its interrupt is answered at once and its runtime abandoned
// (pool.go). The match timeout only bounds how long the abandoned goroutine keeps a core.
//
// Some goja loops run one match per position or per match (split with a subclassed RegExp,
// for one) and give each its own timeout, so an abandoned runtime can run longer than this;
// that is why the number of abandoned runtimes holding no slot is bounded too.
const regexpMatchTimeout = 30 * time.Second

func init() {
	// Only regexp2's "never" is replaced: a program embedding this package that chose its
	// own timeout keeps it, and the deadline ceiling follows it.
	if regexp2.DefaultMatchTimeout == time.Duration(math.MaxInt64) {
		regexp2.DefaultMatchTimeout = regexpMatchTimeout
	}
}

// maxCallTimeout is the longest deadline a call may have: regexp2's match timeout, so that a
// timed-out match is always past its call's deadline. Read when a generation loads; written
// only before any script runs (init, or a test's TestMain).
func maxCallTimeout() time.Duration { return regexp2.DefaultMatchTimeout }
