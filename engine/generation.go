package engine

import "github.com/callgate/callgate/engine/script"

// pinGeneration returns the live generation, pinned for one request: a reload that swaps
// it meanwhile retires it, and it keeps its runtimes until the request calls Release. The
// loop only repeats when a reload retired the generation between the load and the pin; a
// generation closed without a successor (shutdown) is returned unpinned, and its calls fail.
func (e *Engine) pinGeneration() (gen *script.Generation, release func()) {
	for {
		g := e.gen.Load()
		if g.Acquire() {
			return g, g.Release
		}
		if e.gen.Load() == g {
			return g, func() {}
		}
	}
}
