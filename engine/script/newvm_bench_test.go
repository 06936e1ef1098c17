package script

import (
	"context"
	"testing"
)

// BenchmarkNewRuntime: what a pool pays to start a runtime (the program's top level, the
// freeze, binding the callbacks): on a new lane's first calls and after every failed call.
func BenchmarkNewRuntime(b *testing.B) {
	l := load(b, "../../scripts", nil)
	p := l.gen.pools[laneRequest]
	b.ReportAllocs()
	for b.Loop() {
		v, _, err := l.gen.newVM(context.Background(), p, (*vm).bind)
		if err != nil {
			b.Fatal(err)
		}
		v.stop()
	}
}
