package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

// selfSignedCert writes a P-256 certificate for 127.0.0.1 and its key as PEM files, and
// returns their paths and the certificate for the client to trust.
func selfSignedCert(t *testing.T) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "callgate test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// TestServeTLS starts serve with server.tls_cert and server.tls_key and an https URL: the
// client negotiates HTTP/2, the cookies carry the __Secure-/__Host- prefixes and Secure,
// and a signed-in request is proxied to the app.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, cert := selfSignedCert(t)
	up := echoUpstream(t)
	cfgFile := writeConfig(t, "server:\n  tls_cert: "+certFile+"\n  tls_key: "+keyFile+"\nroutes:\n  - {name: app, path: /app, upstream: \""+up.URL+"\"}\n")

	logs := &syncBuffer{}
	c := &cli{stdin: strings.NewReader(""), stdout: logs, stderr: logs, getenv: func(key string) string {
		if key == "AUTH_SECRET" {
			return testGatewaySecret
		}
		return ""
	}}
	data := t.TempDir()
	if err := c.run(t.Context(), []string{"users", "import", "--data", data, repoPath("testdata", "users.json")}); err != nil {
		t.Fatalf("users import: %v\n%s", err, logs)
	}
	addr := freeLoopbackAddr(t)
	origin := "https://" + addr
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan struct{})
	var serveErr error
	go func() {
		defer close(served)
		serveErr = c.run(ctx, append([]string{"serve", "--listen", addr, "--url", origin, "--data", data, "--scripts", repoPath("scripts")}, patientAuthorize(t, []string{"--config", cfgFile})...))
	}()
	t.Cleanup(func() {
		stop()
		<-served
		if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
			t.Errorf("serve returned %v, want nil after its context is cancelled", serveErr)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	})

	roots := x509.NewCertPool()
	roots.AddCert(cert)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(client.CloseIdleConnections)
	fetch := func(method, path string, form url.Values) (*http.Response, []byte) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(t.Context(), method, origin+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}

	var csrfRes *http.Response
	var csrfBody []byte
	testkit.WaitFor(t, "GET "+origin+"/api/auth/csrf answers 200", 15*time.Second, func() error {
		select {
		case <-served:
			t.Fatalf("serve returned before answering: %v\n%s", serveErr, logs)
		default:
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, origin+"/api/auth/csrf", nil)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		csrfBody, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d\n%s", res.StatusCode, logs)
		}
		csrfRes = res
		return nil
	})
	if csrfRes.ProtoMajor != 2 {
		t.Errorf("GET /api/auth/csrf over TLS: got %s, want HTTP/2", csrfRes.Proto)
	}
	if csrfRes.TLS == nil || csrfRes.TLS.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN: got %+v, want h2", csrfRes.TLS)
	}
	var csrf struct{ CSRFToken string }
	if err := json.Unmarshal(csrfBody, &csrf); err != nil || csrf.CSRFToken == "" {
		t.Fatalf("GET /api/auth/csrf: got %s", csrfBody)
	}
	signIn, body := fetch(http.MethodPost, "/api/auth/callback/credentials",
		url.Values{"username": {"jatin"}, "password": {"secret"}, "csrfToken": {csrf.CSRFToken}, "json": {"true"}})
	if signIn.StatusCode != http.StatusOK {
		t.Fatalf("sign in over TLS: got %d %s", signIn.StatusCode, body)
	}

	setCookies := append(csrfRes.Header.Values("Set-Cookie"), signIn.Header.Values("Set-Cookie")...)
	for _, name := range []string{"__Host-next-auth.csrf-token", "__Secure-next-auth.callback-url", "__Secure-next-auth.session-token"} {
		var found string
		for _, sc := range setCookies {
			if strings.HasPrefix(sc, name+"=") {
				found = sc
			}
		}
		if found == "" {
			t.Errorf("cookie %s: not set over https; got Set-Cookie %q", name, setCookies)
			continue
		}
		if !strings.Contains(found, "; Secure") {
			t.Errorf("cookie %s: got %q, want the Secure attribute", name, found)
		}
	}
	for _, sc := range setCookies {
		if strings.HasPrefix(sc, "next-auth.") {
			t.Errorf("got unprefixed cookie %q over https, want only __Secure-/__Host- names", sc)
		}
	}

	// The session cookie works through the proxy over HTTP/2.
	res, body := fetch(http.MethodGet, "/app/x", nil)
	var s seen
	if err := json.Unmarshal(body, &s); err != nil || res.StatusCode != http.StatusOK || s.Headers["X-Callgate-Email"] != "jatin@example.com" {
		t.Errorf("GET /app/x signed in over TLS: got %d %s, want 200 from the app with X-Callgate-Email", res.StatusCode, body)
	}
	if res.ProtoMajor != 2 {
		t.Errorf("GET /app/x: got %s, want HTTP/2", res.Proto)
	}
}
