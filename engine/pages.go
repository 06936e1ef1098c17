package engine

import (
	"bytes"
	"embed"
	"html/template"
	"strings"
)

//go:embed pages/*.html
var pageFiles embed.FS

// pages are parsed once; html/template escapes every value, so nothing a request carries
// (an error code, a callback URL) can inject markup.
var pages = template.Must(template.ParseFS(pageFiles, "pages/*.html"))

// signinMessages are NextAuth v4's sign-in page error texts (§7.2).
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
}

type providerView struct {
	ID, Name, Type string
	Action         string
	Fields         []fieldView
}

type fieldView struct {
	Name, Label, Type, Placeholder, InputID string
}

func (e *Engine) basePage(a *authRequest, title string) pageData {
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
		Base:        e.base,
		Origin:      e.origin,
		CSRFToken:   a.csrfToken,
		CallbackURL: a.callbackURL,
	}
}

func (e *Engine) render(name string, d pageData) []byte {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, d); err != nil {
		e.log.Error("render page", "page", name, "error", err.Error())
		return []byte("<!DOCTYPE html><title>Error</title><p>The page could not be rendered.</p>")
	}
	return b.Bytes()
}

func (e *Engine) renderSignin(a *authRequest, errCode string) []byte {
	d := e.basePage(a, "Sign In")
	if errCode != "" {
		msg, ok := signinMessages[errCode]
		if !ok {
			msg = "Unable to sign in."
		}
		d.Error = msg
	}
	for _, p := range a.cfg.Providers {
		v := providerView{ID: p.ID, Name: p.Name, Type: p.Type, Action: e.base + "/callback/" + p.ID}
		if p.OAuth != nil {
			v.Action = e.base + "/signin/" + p.ID // OAuth starts at signinUrl, as NextAuth's page does
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
	return e.render("signin.html", d)
}

func (e *Engine) renderSignout(a *authRequest) []byte {
	return e.render("signout.html", e.basePage(a, "Sign Out"))
}

func (e *Engine) renderVerifyRequest(a *authRequest) []byte {
	d := e.basePage(a, "Verify Request")
	d.Heading = "Check your email"
	d.Message = "A sign in link has been sent to your email address."
	return e.render("message.html", d)
}

// renderError is NextAuth's error page: a heading and message per error code.
func (e *Engine) renderError(a *authRequest, code string) []byte {
	d := e.basePage(a, "Error")
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
	return e.render("message.html", d)
}
