package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"html"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/callgate/callgate/engine/script"
)

// The default sendVerificationRequest: NextAuth's e-mail (subject, text and HTML), sent
// through the provider's SMTP server with net/smtp. TLS is from the first byte when the
// server is "secure" (smtps, port 465); otherwise the connection is upgraded with STARTTLS
// whenever the server offers it, as nodemailer does, and credentials are sent only over
// TLS or to a server on this machine (net/smtp's PLAIN rule).

// smtpTimeout bounds one delivery when the request has no earlier deadline: a stalled
// server must not hold a sign-in for ever.
const smtpTimeout = 30 * time.Second

// sendSignInMail sends the sign-in e-mail of r through ep.Server.
func sendSignInMail(ctx context.Context, ep *script.EmailProvider, r script.VerificationRequest, theme script.Theme) error {
	from, err := mail.ParseAddress(ep.From)
	if err != nil {
		return fmt.Errorf("from %q: %w", ep.From, err)
	}
	msg, err := signInMessage(from, r, theme)
	if err != nil {
		return err
	}
	return smtpDeliver(ctx, ep.Server, from.Address, r.Identifier, msg)
}

// signInMessage is the e-mail as NextAuth's default sends it: "Sign in to <host>", a text
// part and an HTML part with the theme's colours.
func signInMessage(from *mail.Address, r script.VerificationRequest, theme script.Theme) ([]byte, error) {
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, fmt.Errorf("sign-in link: %w", err)
	}
	host := u.Host
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct{ typ, content string }{
		{"text/plain", "Sign in to " + host + "\n" + r.URL + "\n\n"},
		{"text/html", signInHTML(r.URL, host, theme)},
	} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(part.content)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	var msg bytes.Buffer
	for _, h := range [][2]string{
		{"From", from.String()},
		{"To", (&mail.Address{Address: r.Identifier}).String()},
		{"Subject", mime.QEncoding.Encode("utf-8", "Sign in to "+host)},
		{"Date", time.Now().Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id) + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "multipart/alternative; boundary=" + mw.Boundary()},
	} {
		msg.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

// signInHTML is NextAuth's default HTML e-mail. The host's dots are broken with a
// zero-width space so that mail clients do not turn it into a link of their own.
func signInHTML(link, host string, theme script.Theme) string {
	brand, buttonText := theme.BrandColor, theme.ButtonText
	if brand == "" {
		brand = "#346df1"
	}
	if buttonText == "" {
		buttonText = "#fff"
	}
	esc := html.EscapeString
	h := strings.ReplaceAll(esc(host), ".", "&#8203;.")
	return `
<body style="background: #f9f9f9;">
  <table width="100%" border="0" cellspacing="20" cellpadding="0"
    style="background: #fff; max-width: 600px; margin: auto; border-radius: 10px;">
    <tr>
      <td align="center"
        style="padding: 10px 0px; font-size: 22px; font-family: Helvetica, Arial, sans-serif; color: #444;">
        Sign in to <strong>` + h + `</strong>
      </td>
    </tr>
    <tr>
      <td align="center" style="padding: 20px 0;">
        <table border="0" cellspacing="0" cellpadding="0">
          <tr>
            <td align="center" style="border-radius: 5px;" bgcolor="` + esc(brand) + `"><a href="` + esc(link) + `"
                target="_blank"
                style="font-size: 18px; font-family: Helvetica, Arial, sans-serif; color: ` + esc(buttonText) + `; text-decoration: none; border-radius: 5px; padding: 10px 20px; border: 1px solid ` + esc(brand) + `; display: inline-block; font-weight: bold;">Sign
                in</a></td>
          </tr>
        </table>
      </td>
    </tr>
    <tr>
      <td align="center"
        style="padding: 0px 0px 10px 0px; font-size: 16px; line-height: 22px; font-family: Helvetica, Arial, sans-serif; color: #444;">
        If you did not request this email you can safely ignore it.
      </td>
    </tr>
  </table>
</body>
`
}

// smtpDeliver sends msg from sender to rcpt through s.
func smtpDeliver(ctx context.Context, s script.EmailServer, sender, rcpt string, msg []byte) (err error) {
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, smtpTimeout)
		defer cancel()
	}
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	tlsConfig := &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	var conn net.Conn
	if s.Secure {
		conn, err = (&tls.Dialer{Config: tlsConfig}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	// The whole conversation ends with the context: net/smtp has no context of its own.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	defer func() { _ = c.Close() }()
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("smtp %s: %s: %w", addr, what, err)
		}
		return nil
	}
	if err := step("HELO", c.Hello("localhost")); err != nil {
		return err
	}
	if !s.Secure {
		// The message is a sign-in link: it must not cross a network in the clear. A server
		// that offers no STARTTLS (or a man in the middle who strips the offer) is refused,
		// but for one on this machine's loopback.
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := step("STARTTLS", c.StartTLS(tlsConfig)); err != nil {
				return err
			}
		} else if !loopbackHost(s.Host) {
			return fmt.Errorf("smtp %s: the server offers no STARTTLS; the sign-in link is not sent in the clear (use smtps:// or a server with STARTTLS)", addr)
		}
	}
	if s.User != "" {
		// Credentials configured and no AUTH offered is a server (or a man in the middle)
		// that would accept the link unauthenticated: refuse rather than send it anyway.
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("smtp %s: a user is configured but the server offers no AUTH", addr)
		}
		if err := step("AUTH", c.Auth(smtp.PlainAuth("", s.User, s.Password, s.Host))); err != nil {
			return err
		}
	}
	if err := step("MAIL FROM", c.Mail(sender)); err != nil {
		return err
	}
	if err := step("RCPT TO", c.Rcpt(rcpt)); err != nil {
		return err
	}
	w, err := c.Data()
	if err := step("DATA", err); err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return step("DATA", err)
	}
	if err := step("DATA", w.Close()); err != nil {
		return err
	}
	return step("QUIT", c.Quit())
}

// loopbackHost reports whether host is this machine: localhost, or a loopback address.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
