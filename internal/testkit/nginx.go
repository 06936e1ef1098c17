package testkit

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RequireTool returns the path of a system tool (or the first of fallbacks that exists),
// skipping the test with the reason when there is none, except in CI (CI=true), where
// .ci/run installs it and a missing tool is a failure.
func RequireTool(t testing.TB, name string, fallbacks ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, f := range fallbacks {
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI (apt-get install -y %s)", name, name)
	}
	t.Skipf("%s is not installed (apt-get install -y %s); skipping", name, name)
	return ""
}

// NginxScaffold is what an nginx configuration needs around its server block to run as a
// test: a pid file, logs and temporary paths in the test's directory. {{SERVER}} is
// replaced by the server block's body and {{LISTEN}} by the address.
const NginxScaffold = `
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log info;
worker_processes 1;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path {{DIR}}/body;
  proxy_temp_path {{DIR}}/proxy;
  fastcgi_temp_path {{DIR}}/fastcgi;
  uwsgi_temp_path {{DIR}}/uwsgi;
  scgi_temp_path {{DIR}}/scgi;
  default_type application/octet-stream;
  server {
    listen {{LISTEN}};
{{SERVER}}
  }
}
`

// StartNginx runs real nginx (skipping the test as RequireTool does when it is missing)
// with NginxScaffold around server, listening on listen, until the test ends. It is one
// process (no master and workers), so stopping it stops nginx and no orphaned worker can
// hold the output pipe open.
func StartNginx(t testing.TB, listen, server string) {
	t.Helper()
	bin := RequireTool(t, "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	conf := strings.NewReplacer("{{DIR}}", dir, "{{LISTEN}}", listen, "{{SERVER}}", server).Replace(NginxScaffold)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatalf("write nginx config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off; master_process off;")
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nnginx error.log:\n%s", out, log)
		}
	})
	// Polled: nginx says nothing when it starts listening.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", listen, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited before listening: %s\n%s", out, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s within 10s", listen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
