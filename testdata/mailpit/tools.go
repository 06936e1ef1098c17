//go:build tools

// Package mailpittool pins Mailpit, the SMTP server (with an HTTP API to read what it received)
// the e-mail sign-in tests send through. It lives in a module of its own so that the gateway's
// go.mod never carries Mailpit's dependency graph.
package mailpittool

import _ "github.com/axllent/mailpit"
