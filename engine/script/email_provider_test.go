package script

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeEntry(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestEmailProviderConfig(t *testing.T) {
	tests := []struct {
		name, options string
		wantID        string
		want          EmailProvider
	}{
		{"defaults", `{from: "a@example.com"}`, "email", EmailProvider{
			From: "a@example.com", MaxAge: 24 * time.Hour, Server: EmailServer{Host: "localhost", Port: 25}}},
		{"NextAuth's default sender", `{}`, "email", EmailProvider{
			From: "NextAuth <no-reply@example.com>", MaxAge: 24 * time.Hour, Server: EmailServer{Host: "localhost", Port: 25}}},
		{"smtp URL", `{from: "a@example.com", server: "smtp://user%40x:p%3Ass@mail.example.com:587", maxAge: 600}`, "email", EmailProvider{
			From: "a@example.com", MaxAge: 10 * time.Minute,
			Server: EmailServer{Host: "mail.example.com", Port: 587, User: "user@x", Password: "p:ss"}}},
		{"smtps URL", `{from: "a@example.com", server: "smtps://mail.example.com"}`, "email", EmailProvider{
			From: "a@example.com", MaxAge: 24 * time.Hour, Server: EmailServer{Host: "mail.example.com", Port: 465, Secure: true}}},
		{"nodemailer object", `{id: "magic", from: "a@example.com", secret: "s2", server: {host: "smtp.example.com", port: 2525, secure: true, auth: {user: "u", pass: "p"}}}`, "magic", EmailProvider{
			From: "a@example.com", MaxAge: 24 * time.Hour, Secret: "s2",
			Server: EmailServer{Host: "smtp.example.com", Port: 2525, Secure: true, User: "u", Password: "p"}}},
		{"own sender", `{from: "a@example.com", async sendVerificationRequest() {}}`, "email", EmailProvider{
			From: "a@example.com", MaxAge: 24 * time.Hour, Server: EmailServer{Host: "localhost", Port: 25}, Send: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeEntry(t, `import Email from "callgate/providers/email"; export default {providers: [Email(`+tt.options+`)]}`)
			gen, err := Load(context.Background(), Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer gen.Close()
			p := gen.Config().Providers[0]
			if p.ID != tt.wantID || p.Type != "email" || p.Name != "Email" || p.Email == nil {
				t.Fatalf("provider %+v", p)
			}
			if !reflect.DeepEqual(*p.Email, tt.want) {
				t.Errorf("got %+v, want %+v", *p.Email, tt.want)
			}
			if got := gen.Has("sendVerificationRequest:" + p.ID); got != tt.want.Send {
				t.Errorf("sendVerificationRequest bound: %v, want %v", got, tt.want.Send)
			}
		})
	}
}

func TestEmailProviderConfigErrors(t *testing.T) {
	tests := []struct {
		name, options, want string
	}{
		{"bad from", `{from: "not an address"}`, "providers[0].from"},
		{"maxAge not a number", `{maxAge: "1d"}`, "maxAge must be a positive number of seconds"},
		{"maxAge zero", `{maxAge: 0}`, "maxAge must be a positive number of seconds"},
		{"server scheme", `{server: "http://mail.example.com"}`, `server must be an "smtp://`},
		{"server URL port", `{server: "smtp://mail.example.com:99999"}`, "invalid port"},
		{"server type", `{server: 25}`, "server must be an SMTP URL or an object"},
		{"port", `{server: {host: "h", port: 1.5}}`, "server.port must be a port number"},
		{"secure", `{server: {host: "h", secure: "yes"}}`, "server.secure must be a boolean"},
		{"auth", `{server: {host: "h", auth: "u:p"}}`, "server.auth must be an object"},
		{"sender not a function", `{sendVerificationRequest: "smtp"}`, "sendVerificationRequest must be a function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := loadErr(t, writeEntry(t, `import Email from "callgate/providers/email"; export default {providers: [Email(`+tt.options+`)]}`))
			if !strings.Contains(se.Message, tt.want) {
				t.Errorf("error %q, want it to contain %q", se.Message, tt.want)
			}
			if strings.Contains(se.Message, "99999") {
				t.Errorf("error %q repeats the server URL, which may hold a password", se.Message)
			}
		})
	}
}

func TestSendVerificationRequestThrows(t *testing.T) {
	dir := writeEntry(t, `import Email from "callgate/providers/email";
export default {providers: [Email({from: "a@example.com", async sendVerificationRequest({identifier}) { throw new Error("no route to " + identifier); }})]}`)
	gen, err := Load(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	err = gen.SendVerificationRequest(context.Background(), "email", VerificationRequest{Identifier: "x@example.com", Expires: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "no route to x@example.com") {
		t.Fatalf("got %v, want the thrown message", err)
	}
	if err := gen.SendVerificationRequest(context.Background(), "other", VerificationRequest{}); err == nil {
		t.Fatal("an unknown provider: want an error")
	}
}
