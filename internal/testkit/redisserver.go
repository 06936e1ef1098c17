package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireRedisTools skips the test when one of the Redis programs it needs (redis-server,
// redis-cli) is not installed, except in CI (CI=true), where .ci/run installs them and a
// missing one is a failure.
func RequireRedisTools(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed; in CI the tests that run their own Redis servers must run (.ci/run installs it)", name)
			}
			t.Skipf("%s is not installed: skipping %s, which runs its own Redis server (apt-get install redis-server redis-tools)", name, t.Name())
		}
	}
}

// FreePort returns a loopback port nothing listens on. With bus set, port+10000 (the
// Cluster bus port redis-server opens next to it) is free as well.
func FreePort(t testing.TB, bus bool) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !bus {
			return port
		}
		if port+10000 > 65535 {
			continue
		}
		busLn, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		busLn.Close()
		return port
	}
	t.Fatal("find a free port pair for a Cluster node: none after 100 tries")
	return 0
}

// StartRedisServer runs redis-server with args in its own directory under dir, waits until
// it accepts connections on port, and kills it when the test ends. A config file, if any,
// must be args[0]. The server keeps nothing on disk and binds 127.0.0.1 only. Its log goes
// to a file that is printed when the test fails, since that is where a refused option shows
// up. Call RequireRedisTools first.
func StartRedisServer(t testing.TB, dir string, port int, args ...string) {
	t.Helper()
	nodeDir := filepath.Join(dir, "node-"+strconv.Itoa(port))
	if err := os.MkdirAll(nodeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(nodeDir, "redis.log")
	// Without persistence a test run leaves nothing behind but the temp dir.
	base := []string{"--dir", nodeDir, "--logfile", logFile, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--daemonize", "no"}
	if len(args) > 0 && strings.HasSuffix(args[0], ".conf") {
		// A config file must be the first argument.
		base = append([]string{args[0]}, base...)
		args = args[1:]
	}
	cmd := exec.Command("redis-server", append(base, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server on port %d: %v", port, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			if b, err := os.ReadFile(logFile); err == nil {
				t.Logf("redis-server :%d log:\n%s", port, lastLines(string(b), 30))
			}
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logFile)
			t.Fatalf("redis-server on port %d exited before listening (%v):\n%s", port, err, lastLines(string(b), 30))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d: not listening after 10s", port)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CA is a private certificate authority and a server certificate it signed for 127.0.0.1,
// written as PEM files. Both are valid for an hour either side of their creation.
type CA struct {
	CAFile   string // the CA's certificate: what a client is told to trust
	CertFile string // the server's certificate
	KeyFile  string // the server's private key (PKCS #8)
}

// NewCA generates a CA and a server certificate and writes them into dir as
// NAME-ca.pem, NAME-server.pem and NAME-server-key.pem. Every call makes a new key, so two
// CAs of one test do not trust each other's certificates.
func NewCA(t testing.TB, dir, name string) CA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	ca := CA{
		CAFile:   filepath.Join(dir, name+"-ca.pem"),
		CertFile: filepath.Join(dir, name+"-server.pem"),
		KeyFile:  filepath.Join(dir, name+"-server-key.pem"),
	}
	for file, block := range map[string]*pem.Block{
		ca.CAFile:   {Type: "CERTIFICATE", Bytes: caDER},
		ca.CertFile: {Type: "CERTIFICATE", Bytes: srvDER},
		ca.KeyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca
}

// RedisTLSArgs are the redis-server arguments for a TLS-only server on port that presents
// ca's server certificate and does not ask clients for one. Debian's redis-server is built
// with TLS; a build without it refuses --tls-port at start-up, and StartRedisServer then
// fails with the server's log.
func (ca CA) RedisTLSArgs(port int) []string {
	return []string{"--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", ca.CertFile, "--tls-key-file", ca.KeyFile, "--tls-ca-cert-file", ca.CAFile, "--tls-auth-clients", "no"}
}
