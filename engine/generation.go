package engine

import (
	"sync/atomic"

	"github.com/callgate/callgate/engine/script"
)

// liveGeneration is the script generation serving new requests: SetGeneration stores it,
// each request pins the one it starts with.
type liveGeneration struct {
	atomic.Pointer[script.Generation]
}

// pin returns the live generation, pinned for one request: a reload that swaps
// it meanwhile retires it, and it keeps its runtimes until the request calls Release. The
// loop only repeats when a reload retired the generation between the load and the pin; a
// generation closed without a successor (shutdown) is returned unpinned, and its calls fail.
func (l *liveGeneration) pin() (gen *script.Generation, release func()) {
	for {
		g := l.Load()
		if g.Acquire() {
			return g, g.Release
		}
		if l.Load() == g {
			return g, func() {}
		}
	}
}
