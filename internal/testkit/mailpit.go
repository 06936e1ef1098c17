package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"testing"
)

// MailpitBinary returns the Mailpit binary the e-mail sign-in tests send through:
// CALLGATE_MAILPIT, else testdata/mailpit/bin/mailpit under repoRoot (test.sh builds it
// there). Without it the test skips, except in CI, where it fails.
func MailpitBinary(t testing.TB, repoRoot string) string {
	t.Helper()
	return peerBinary(t, repoRoot, "CALLGATE_MAILPIT", "mailpit", "Mailpit")
}

// Mailpit is one running Mailpit: an SMTP server that keeps every message it accepts in
// memory, and the HTTP API that lists them.
type Mailpit struct {
	SMTPHost string // 127.0.0.1
	SMTPPort int
	API      string // http://127.0.0.1:<port>
}

// StartMailpit runs Mailpit until the test ends and returns once its API answers. args are
// added to the command line (an SMTP password file, say). The process is stopped, and
// waited for, at cleanup; its output is logged if the test failed.
func StartMailpit(t testing.TB, binary string, args ...string) *Mailpit {
	t.Helper()
	m := &Mailpit{SMTPHost: "127.0.0.1", SMTPPort: FreePort(t, false)}
	httpPort := FreePort(t, false)
	m.API = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, append([]string{
		"--smtp", fmt.Sprintf("127.0.0.1:%d", m.SMTPPort), "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--smtp-disable-rdns", "--disable-version-check", "--quiet",
	}, args...)...)
	// No --database: the messages live in a temporary database Mailpit deletes on exit.
	cmd.Env = append(os.Environ(), "MP_DATABASE=")
	runPeer(t, "mailpit", cmd, cancel, m.API+"/readyz")
	return m
}

// MailpitSummary is one message of Mailpit's list (GET /api/v1/messages).
type MailpitSummary struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	To      []struct {
		Address string `json:"Address"`
	} `json:"To"`
}

// MailpitMessage is one message in full (GET /api/v1/message/{id}).
type MailpitMessage struct {
	ID   string `json:"ID"`
	From struct {
		Name    string `json:"Name"`
		Address string `json:"Address"`
	} `json:"From"`
	To []struct {
		Address string `json:"Address"`
	} `json:"To"`
	Subject string `json:"Subject"`
	Text    string `json:"Text"`
	HTML    string `json:"HTML"`
}

// Messages lists what Mailpit received, newest first.
func (m *Mailpit) Messages(t testing.TB) []MailpitSummary {
	t.Helper()
	var list struct {
		Messages []MailpitSummary `json:"messages"`
	}
	m.get(t, "/api/v1/messages", &list)
	return list.Messages
}

// Message reads one message.
func (m *Mailpit) Message(t testing.TB, id string) MailpitMessage {
	t.Helper()
	var msg MailpitMessage
	m.get(t, "/api/v1/message/"+id, &msg)
	return msg
}

func (m *Mailpit) get(t testing.TB, path string, into any) {
	t.Helper()
	resp, err := http.Get(m.API + path)
	if err != nil {
		t.Fatalf("mailpit GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit GET %s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("mailpit GET %s: %v: %s", path, err, body)
	}
}
