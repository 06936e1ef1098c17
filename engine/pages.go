package engine

import (
	"bytes"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
)

//go:embed pages
var pageFiles embed.FS

// pageTemplates are parsed once; html/template escapes every value, so nothing a request
// carries (an error code, a callback URL) can inject markup.
var pageTemplates = template.Must(template.ParseFS(pageFiles, "pages/*.html"))

// pages renders the gateway's built-in HTML pages (sign-in, sign-out, verify-request,
// error, home) from pageTemplates and the request's theme. It owns what the pages link to
// (the origin and the auth base) and the log a failed render goes to.
type pages struct {
	origin string // e.g. "http://localhost:3000"
	base   string // origin + BasePath
	log    *slog.Logger
	// scriptETag is the factor script's (factor_pages.go), computed once.
	scriptOnce sync.Once
	scriptETag string
}

// signinMessages are NextAuth v4's sign-in page error texts (docs/wire.md §7.2).
var signinMessages = map[string]string{
	"Signin":                "Try signing in with a different account.",
	"OAuthSignin":           "Try signing in with a different account.",
	"OAuthCallback":         "Try signing in with a different account.",
	"OAuthCreateAccount":    "Try signing in with a different account.",
	"EmailCreateAccount":    "Try signing in with a different account.",
	"Callback":              "Try signing in with a different account.",
	"OAuthAccountNotLinked": "To confirm your identity, sign in with the same account you used originally.",
	"EmailSignin":           "The e-mail could not be sent.",
	"CredentialsSignin":     "Sign in failed. Check the details you provided are correct.",
	"SessionRequired":       "Please sign in to access this page.",
}

type pageData struct {
	Title       string
	ColorScheme string
	BrandColor  string
	Logo        string
	ButtonText  string
	Base        string
	Origin      string
	CSRFToken   string
	CallbackURL string
	Error       string
	Heading     string
	Message     string
	Providers   []providerView
	SignedIn    bool
	User        map[string]any
	SessionJSON string
	// Factor is set on the factor pages (factor_pages.go).
	Factor *factorView
}

type providerView struct {
	ID, Name, Type string
	Action         string
	Fields         []fieldView
}

type fieldView struct {
	Name, Label, Type, Placeholder, InputID string
}

func (pg *pages) basePage(a *authRequest, title string) pageData {
	scheme := a.cfg.Theme.ColorScheme
	if scheme == "" {
		scheme = "auto"
	}
	return pageData{
		Title:       title,
		ColorScheme: scheme,
		BrandColor:  a.cfg.Theme.BrandColor,
		Logo:        a.cfg.Theme.Logo,
		ButtonText:  a.cfg.Theme.ButtonText,
		Base:        pg.base,
		Origin:      pg.origin,
		CSRFToken:   a.csrfToken,
		CallbackURL: a.callbackURL,
	}
}

func (pg *pages) render(name string, d pageData) []byte {
	var b bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&b, name, d); err != nil {
		pg.log.Error("render page", "page", name, "error", err.Error())
		return []byte("<!DOCTYPE html><title>Error</title><p>The page could not be rendered.</p>")
	}
	return b.Bytes()
}

func (pg *pages) renderSignin(a *authRequest, errCode string) []byte {
	d := pg.basePage(a, "Sign In")
	if errCode != "" {
		msg, ok := signinMessages[errCode]
		if !ok {
			msg = "Unable to sign in."
		}
		d.Error = msg
	}
	for _, p := range a.cfg.Providers {
		v := providerView{ID: p.ID, Name: p.Name, Type: p.Type, Action: pg.base + "/callback/" + p.ID}
		if p.OAuth != nil || p.Email != nil {
			v.Action = pg.base + "/signin/" + p.ID // OAuth and e-mail start at signinUrl, as NextAuth's page does
		}
		for _, f := range p.Credentials {
			label := f.Label
			if label == "" {
				label = f.Name
			}
			typ := f.Type
			if typ == "" {
				typ = "text"
			}
			v.Fields = append(v.Fields, fieldView{
				Name: f.Name, Label: label, Type: typ, Placeholder: f.Placeholder,
				InputID: "input-" + f.Name + "-for-" + p.ID + "-provider",
			})
		}
		d.Providers = append(d.Providers, v)
	}
	return pg.render("signin.html", d)
}

func (pg *pages) renderSignout(a *authRequest) []byte {
	return pg.render("signout.html", pg.basePage(a, "Sign Out"))
}

func (pg *pages) renderVerifyRequest(a *authRequest) []byte {
	d := pg.basePage(a, "Verify Request")
	d.Heading = "Check your email"
	d.Message = "A sign in link has been sent to your email address."
	return pg.render("message.html", d)
}

// serverError answers a failure of the gateway itself (not of the user's input): the error
// page on the page routes, NextAuth's configuration JSON elsewhere.
func (pg *pages) serverError(a *authRequest, err error) response {
	a.logScriptError("", err)
	if a.r.Method == http.MethodGet && (a.action == "signin" || a.action == "signout" || a.action == "error" || a.action == "verify-request" || a.action == "challenge" || a.action == "factors") {
		return htmlResponse(500, pg.renderError(a, "configuration"))
	}
	return jsonResponse(500, configErrorBody)
}

// renderError is NextAuth's error page: a heading and message per error code.
func (pg *pages) renderError(a *authRequest, code string) []byte {
	d := pg.basePage(a, "Error")
	switch strings.ToLower(code) {
	case "configuration":
		d.Heading = "Server error"
		d.Message = "There is a problem with the server configuration. Check the server logs for more information."
	case "accessdenied":
		d.Heading = "Access Denied"
		d.Message = "You do not have permission to sign in."
	case "verification":
		d.Heading = "Unable to sign in"
		d.Message = "The sign in link is no longer valid. It may have been used already or it may have expired."
	default:
		d.Heading = "Error"
		d.Message = "Unable to sign in."
		if code != "" && !signinErrorCodes[code] && code != "Default" {
			// A message the script threw on purpose for the end user (NextAuth passes it as error=).
			d.Error = code
		}
	}
	return pg.render("message.html", d)
}
