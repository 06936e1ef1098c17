package engine_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/engine/inspect"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/token"
)

// BenchmarkSessionReadInspector is BenchmarkSessionReadWithCallbacks without the inspector
// (off: what every gateway runs unless started with --dev or inspector.enabled) and with
// it (on: a flow per request, both callbacks traced and redacted, the core's token and
// cookie steps recorded, the ring full and evicting as on a busy developer's gateway).
//
//	go test -run '^$' -bench SessionReadInspector -benchmem ./engine/
func BenchmarkSessionReadInspector(b *testing.B) {
	fixture, _ := filepath.Abs(filepath.Join("..", "testdata", "scripts", "bench"))
	b.Run("off", func(b *testing.B) { benchSessionReads(b, startInspectedGateway(b, fixture, nil)) })
	b.Run("on", func(b *testing.B) {
		in := inspect.New(inspect.Options{})
		b.Cleanup(in.Close)
		benchSessionReads(b, startInspectedGateway(b, fixture, in))
		if len(in.Snapshot()) == 0 {
			b.Fatal("the inspector kept no flow: the benchmark measured nothing of it")
		}
	})
}

// startInspectedGateway is startGateway's engine for a scripts directory, told about
// every request by in (the engine's Inspector and the scripts' Tracer), or by nothing
// when in is nil.
func startInspectedGateway(b *testing.B, dir string, in *inspect.Inspector) *gateway {
	b.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts := script.Options{Dir: dir, Logger: logger, Timeouts: script.Timeouts{Default: 30 * time.Second}}
	if in != nil {
		opts.Tracer = in
	}
	gen, err := script.Load(context.Background(), opts)
	if err != nil {
		b.Fatalf("load scripts %s: %v", dir, err)
	}
	b.Cleanup(gen.Close)
	keys, err := token.NewKeyRing([]string{testSecret}, "")
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse("http://localhost:3000")
	eng, err := engine.New(engine.Options{URL: u, Keys: keys, Generation: gen, Logger: logger, Now: time.Now, Inspector: in})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(eng.Close)
	srv := httptest.NewServer(eng.Handler())
	b.Cleanup(srv.Close)
	b.Cleanup(func() {
		if b.Failed() {
			b.Logf("gateway log:\n%s", logs.String())
		}
	})
	return &gateway{srv: srv, eng: eng, keys: keys, logs: logs, now: time.Now}
}
