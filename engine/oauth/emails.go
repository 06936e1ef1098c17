package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/oauth2"

	"github.com/callgate/callgate/engine/script"
)

// GitHub leaves `email` null in /user when the account keeps its address private, and
// lists the addresses at /user/emails instead (readable with the user:email scope that
// the preset asks for). NextAuth's GitHub provider reads that list in its userinfo
// request; the preset names the URL (`userinfo: {emails}`) and this package reads it here.

// githubEmail is one entry of GitHub's /user/emails response.
type githubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// fillProfileEmail sets profile["email"] from the provider's e-mail list when the profile
// has none. It never fails the sign-in: without the list the profile keeps no e-mail, as
// NextAuth's provider does when the request is refused.
func (c *Client) fillProfileEmail(ctx context.Context, p script.Provider, tok *oauth2.Token, profile map[string]any) {
	if p.OAuth.UserinfoEmailsURL == "" {
		return
	}
	if s, _ := profile["email"].(string); s != "" {
		return
	}
	email, err := c.primaryEmail(ctx, p.OAuth.UserinfoEmailsURL, tok)
	if err != nil {
		c.log.WarnContext(ctx, "read the provider's e-mail addresses", "code", "OAUTH_USERINFO_EMAILS_ERROR", "provider", p.ID, "error", err.Error())
		return
	}
	if email != "" {
		profile["email"] = email
	}
}

// primaryEmail returns the primary address when it is verified, else the first verified
// one, else "". NextAuth takes the primary (or first) address whether verified or not; an
// unverified address is not taken here because it would let someone claim, and with
// allowDangerousEmailAccountLinking sign in to, an account by an address they do not own.
func (c *Client) primaryEmail(ctx context.Context, u string, tok *oauth2.Token) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("e-mail list request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "callgate") // GitHub's API refuses requests without one
	tok.SetAuthHeader(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("e-mail list: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read e-mail list: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("e-mail list: HTTP %d", resp.StatusCode)
	}
	var emails []githubEmail
	if err := json.Unmarshal(body, &emails); err != nil {
		return "", fmt.Errorf("e-mail list is not a JSON array of addresses: %w", err)
	}
	first := ""
	for _, m := range emails {
		if !m.Verified || m.Email == "" {
			continue
		}
		if m.Primary {
			return m.Email, nil
		}
		if first == "" {
			first = m.Email
		}
	}
	if first == "" && len(emails) > 0 {
		return "", errors.New("no verified address in the e-mail list")
	}
	return first, nil
}
