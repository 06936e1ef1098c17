package testkit

import (
	"context"
	"net/http"
	"os/exec"
	"testing"
	"time"
)

// runPeer starts a pinned peer's command (made with exec.CommandContext under cancel) and
// returns once readyURL answers 200, failing the test if the process exits first or is
// not ready within 30 s. At cleanup it stops the process and waits for it; its output is
// logged when the test failed.
func runPeer(t testing.TB, name string, cmd *exec.Cmd, cancel context.CancelFunc, readyURL string) {
	t.Helper()
	var out SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30s: %v\n%s", name, err, out.String())
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it was ready:\n%s", name, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
