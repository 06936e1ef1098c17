package redis_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store/redis"
)

// TestLibraryLogsRouted: what go-redis logs of its own when it cannot dial comes out
// through the slog logger it was routed to, as a warning marked as go-redis's.
func TestLibraryLogsRouted(t *testing.T) {
	var buf testkit.SyncBuffer
	redis.RouteLibraryLogs(slog.New(slog.NewTextHandler(&buf, nil)))
	// Later tests of the package log their dial failures to stderr again, as warnings.
	t.Cleanup(func() {
		redis.RouteLibraryLogs(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s, err := redis.Open(redis.Options{URL: "redis://" + addr, DialTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping against a closed port succeeded")
	}
	testkit.WaitFor(t, "a go-redis record in the log", 5*time.Second, func() error {
		if !strings.Contains(buf.String(), "component=go-redis") {
			return fmt.Errorf("log so far: %q", buf.String())
		}
		return nil
	})
	got := buf.String()
	if !strings.Contains(got, "level=WARN") || !strings.Contains(got, "component=go-redis") || !strings.Contains(got, addr) {
		t.Errorf("got log %q, want a WARN record from go-redis naming %s", got, addr)
	}
	t.Logf("routed: %s", strings.SplitN(got, "\n", 2)[0])
}
