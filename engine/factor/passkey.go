package factor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/callgate/callgate/store"
)

// ErrMalformed reports input that does not parse: JSON, CBOR or base64 that is broken, an
// authenticator data structure cut short, a ceremony state this package did not write.
// The error wrapping it says what and where.
var ErrMalformed = errors.New("malformed")

// ErrRefused reports input that parses but does not verify: a signature, origin, RP ID,
// challenge, user, flag or counter that is not what the ceremony expects, or a ceremony
// that has expired. The error wrapping it says which check failed.
var ErrRefused = errors.New("refused")

// defaultPasskeyTimeout is how long a ceremony stays open when PasskeyConfig.Timeout is 0:
// the WebAuthn specification's recommended upper bound for user verification.
const defaultPasskeyTimeout = 5 * time.Minute

// PasskeyConfig is the relying party: the gateway as WebAuthn sees it.
type PasskeyConfig struct {
	// RPID is the relying party ID: the host of the gateway's public URL, or the cookie
	// domain when one is set so that passkeys work across its subdomains. Every passkey is
	// bound to it; changing it orphans every registered passkey.
	RPID string
	// RPName is the name authenticators show the user while registering ("callgate").
	RPName string
	// Origins are the origins the browser may report in client data: the gateway's public
	// URL (scheme, host and port), one entry for each URL it is reached at. At least one.
	Origins []string
	// Timeout is how long the browser may take, and how long a ceremony's state stays
	// valid. 0 means 5 minutes.
	Timeout time.Duration
}

// Passkeys runs WebAuthn registration and authentication ceremonies for one relying
// party. It keeps no state between Begin and Finish: the caller carries Ceremony.State
// (sealed, and recorded as used once finished) and hands it back. It is safe for
// concurrent use.
type Passkeys struct {
	wa      *webauthn.WebAuthn
	timeout time.Duration
}

// NewPasskeys checks the relying party's configuration and returns ceremonies for it.
func NewPasskeys(cfg PasskeyConfig) (*Passkeys, error) {
	if cfg.RPID == "" {
		return nil, errors.New("passkeys: the relying party ID is empty")
	}
	if cfg.RPName == "" {
		return nil, errors.New("passkeys: the relying party name is empty")
	}
	if len(cfg.Origins) == 0 {
		return nil, errors.New("passkeys: no origin is configured")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("passkeys: negative timeout %v", cfg.Timeout)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultPasskeyTimeout
	}
	// Enforce puts an expiry in every ceremony's state and makes go-webauthn refuse it
	// after that; Finish checks it first so that the refusal says so. The discouraged-UV
	// timeouts are set too, though no ceremony here discourages it, so that no default of
	// the library's decides how long a state lives.
	ceremony := webauthn.TimeoutConfig{Enforce: true, Timeout: timeout, TimeoutUVD: timeout}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          cfg.RPID,
		RPDisplayName: cfg.RPName,
		RPOrigins:     slices.Clone(cfg.Origins),
		// The gateway trusts no attestation roots: it asks for none, and a passkey's
		// worth is that it is bound to this origin, not who made the authenticator.
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationPreferred,
		},
		Timeouts: webauthn.TimeoutsConfig{Login: ceremony, Registration: ceremony},
	})
	if err != nil {
		return nil, fmt.Errorf("passkeys: %w", err)
	}
	return &Passkeys{wa: wa, timeout: timeout}, nil
}

// User is the account a ceremony is for, with the passkeys it already has. Its WebAuthn
// user handle is []byte(ID) (1 to 64 bytes): the authenticator stores it with a
// discoverable credential and returns it at sign-in, which is how a passwordless sign-in
// finds the account.
type User struct {
	ID          string
	Name        string
	DisplayName string
	Passkeys    []store.Passkey
}

// Ceremony is what a Begin call returns.
type Ceremony struct {
	// Options is what navigator.credentials.create() or get() takes: go-webauthn's
	// protocol.CredentialCreation or CredentialAssertion as JSON, {"publicKey": {...}},
	// with binary members in base64url.
	Options json.RawMessage
	// State is the ceremony's server side (webauthn.SessionData as JSON): the challenge,
	// the user and credentials it is for, and its expiry. It is not secret but must not
	// be alterable by the browser: the caller seals it and hands it back to Finish.
	State []byte
	// Challenge is the ceremony's challenge (base64url), for the caller's record that
	// each ceremony is finished at most once.
	Challenge string
}

// LoginResult is a verified authentication.
type LoginResult struct {
	CredentialID []byte
	UserID       string
	// SignCount is the authenticator's new signature counter, for store.UsePasskey (which
	// refuses one that did not increase, atomically across replicas).
	SignCount uint32
	// BackupState is the assertion's BS flag: the credential is synced to other devices.
	BackupState bool
	// UserVerified is the assertion's UV flag: the authenticator verified the user (PIN,
	// biometric), so the passkey alone is two factors.
	UserVerified bool
}

// BeginRegistration starts adding a passkey to u: a discoverable credential (so it can
// sign in without a username), user verification preferred, no attestation, and u's
// existing passkeys excluded so that one authenticator is not registered twice.
func (p *Passkeys) BeginRegistration(u User) (Ceremony, error) {
	exclude := make([]protocol.CredentialDescriptor, len(u.Passkeys))
	for i, pk := range u.Passkeys {
		c := credential(pk)
		exclude[i] = c.Descriptor()
	}
	creation, session, err := p.wa.BeginRegistration(webauthnUser{u}, webauthn.WithExclusions(exclude))
	if err != nil {
		return Ceremony{}, fmt.Errorf("begin passkey registration for %s: %w", u.ID, err)
	}
	return ceremony(creation, session)
}

// FinishRegistration verifies the browser's answer (the PublicKeyCredential from
// navigator.credentials.create(), as JSON) to the ceremony whose state this is, for the
// same user, and returns the passkey to store, named name and created at now. It refuses
// a ceremony older than the timeout at now, and a credential u already has; one that
// another user has is for store.CreatePasskey to refuse (ErrDuplicate).
func (p *Passkeys) FinishRegistration(u User, state, response []byte, name string, now time.Time) (store.Passkey, error) {
	session, err := p.session(state, now)
	if err != nil {
		return store.Passkey{}, fmt.Errorf("passkey registration: %w", err)
	}
	if len(session.CredParams) == 0 || len(session.UserID) == 0 {
		return store.Passkey{}, fmt.Errorf("passkey registration: %w: the state is not a registration's", ErrMalformed)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return store.Passkey{}, fmt.Errorf("passkey registration: %w", failed(ErrMalformed, "parse response", attestationCause(response, err)))
	}
	cred, err := p.wa.CreateCredential(webauthnUser{u}, session, parsed)
	if err != nil {
		return store.Passkey{}, fmt.Errorf("passkey registration: %w", failed(ErrRefused, "verify attestation", err))
	}
	for _, pk := range u.Passkeys {
		if bytes.Equal(pk.ID, cred.ID) {
			return store.Passkey{}, fmt.Errorf("passkey registration: %w: the credential is already registered", ErrRefused)
		}
	}
	transports := make([]string, len(cred.Transport))
	for i, t := range cred.Transport {
		transports[i] = string(t)
	}
	return store.Passkey{
		ID:              cred.ID,
		UserID:          u.ID,
		Name:            name,
		PublicKey:       cred.PublicKey,
		AttestationType: cred.AttestationType,
		AAGUID:          cred.Authenticator.AAGUID,
		SignCount:       cred.Authenticator.SignCount,
		Transports:      transports,
		BackupEligible:  cred.Flags.BackupEligible,
		BackupState:     cred.Flags.BackupState,
		CreatedAt:       now,
	}, nil
}

// BeginLogin starts an authentication. With u nil it is a passwordless sign-in: the
// browser offers every passkey it holds for this relying party (no allowCredentials), the
// answer's user handle says whose it is, and user verification is required. With u it is a second factor or a step-up
// for that user: only u's passkeys are allowed, and u must have one.
func (p *Passkeys) BeginLogin(u *User) (Ceremony, error) {
	if u == nil {
		// Without a password, the passkey is the whole sign-in: the authenticator must verify
		// the user (a PIN or a biometric), not only their presence.
		assertion, session, err := p.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
		if err != nil {
			return Ceremony{}, fmt.Errorf("begin passkey sign-in: %w", err)
		}
		return ceremony(assertion, session)
	}
	if len(u.Passkeys) == 0 {
		return Ceremony{}, fmt.Errorf("begin passkey sign-in for %s: the user has no passkey", u.ID)
	}
	assertion, session, err := p.wa.BeginLogin(webauthnUser{*u})
	if err != nil {
		return Ceremony{}, fmt.Errorf("begin passkey sign-in for %s: %w", u.ID, err)
	}
	return ceremony(assertion, session)
}

// FinishLogin verifies the browser's answer (the PublicKeyCredential from
// navigator.credentials.get(), as JSON) to the ceremony whose state this is. lookup
// returns the user the credential belongs to: for a passwordless sign-in it finds them by
// credential ID (and the user handle the authenticator returned, which must be their
// ID); for a second factor it returns the user the ceremony was begun for, and the
// credential must be one of theirs. An error from lookup is returned wrapped as it is,
// so the caller can tell an unknown credential (its own not-found) from a store that is
// down; every other failure wraps ErrMalformed or ErrRefused.
//
// The counter returned is not compared with the stored one beyond go-webauthn's check
// (a counter that did not increase is refused); store.UsePasskey makes that check
// atomic.
func (p *Passkeys) FinishLogin(state, response []byte, lookup func(credentialID, userHandle []byte) (User, error)) (LoginResult, error) {
	if lookup == nil {
		return LoginResult{}, errors.New("passkey sign-in: no credential lookup")
	}
	// go-webauthn checks the expiry against the wall clock too, so this one uses it.
	session, err := p.session(state, time.Now())
	if err != nil {
		return LoginResult{}, fmt.Errorf("passkey sign-in: %w", err)
	}
	if len(session.CredParams) != 0 {
		return LoginResult{}, fmt.Errorf("passkey sign-in: %w: the state is a registration's", ErrMalformed)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return LoginResult{}, fmt.Errorf("passkey sign-in: %w", failed(ErrMalformed, "parse response", err))
	}

	var (
		user      User
		lookupErr error
		cred      *webauthn.Credential
	)
	find := func(credentialID, userHandle []byte) (webauthn.User, error) {
		user, lookupErr = lookup(credentialID, userHandle)
		if lookupErr != nil {
			return nil, lookupErr
		}
		return webauthnUser{user}, nil
	}
	if len(session.UserID) == 0 {
		// Passwordless: go-webauthn requires a user handle, asks find for its owner and
		// checks that the handle is that user's ID and the credential one of theirs.
		cred, err = p.wa.ValidateDiscoverableLogin(find, session, parsed)
	} else if _, err = find(parsed.RawID, parsed.Response.UserHandle); err == nil {
		// Second factor: the ceremony names the user; the credential must be theirs and
		// among those the ceremony allowed.
		if user.ID != string(session.UserID) {
			return LoginResult{}, fmt.Errorf("passkey sign-in: %w: the ceremony was begun for another user", ErrRefused)
		}
		cred, err = p.wa.ValidateLogin(webauthnUser{user}, session, parsed)
	}
	if lookupErr != nil {
		return LoginResult{}, fmt.Errorf("passkey sign-in: look up credential: %w", lookupErr)
	}
	if err != nil {
		return LoginResult{}, fmt.Errorf("passkey sign-in: %w", failed(ErrRefused, "verify assertion", err))
	}
	if cred.Authenticator.CloneWarning {
		// A counter that did not increase is a cloned authenticator or a replayed
		// assertion; go-webauthn only flags it, the gateway refuses it.
		return LoginResult{}, fmt.Errorf("passkey sign-in: %w: signature counter did not increase (%d)", ErrRefused, parsed.Response.AuthenticatorData.Counter)
	}
	flags := parsed.Response.AuthenticatorData.Flags
	return LoginResult{
		CredentialID: cred.ID,
		UserID:       user.ID,
		SignCount:    parsed.Response.AuthenticatorData.Counter,
		BackupState:  flags.HasBackupState(),
		UserVerified: flags.HasUserVerified(),
	}, nil
}

// session decodes a ceremony state and refuses it once expired at now. go-webauthn checks
// the expiry again against its own clock; checking here first gives the refusal its
// reason and lets registration use the caller's clock.
func (p *Passkeys) session(state []byte, now time.Time) (webauthn.SessionData, error) {
	var s webauthn.SessionData
	if err := json.Unmarshal(state, &s); err != nil {
		return webauthn.SessionData{}, fmt.Errorf("%w: ceremony state: %v", ErrMalformed, err)
	}
	if s.Challenge == "" || s.Expires.IsZero() {
		return webauthn.SessionData{}, fmt.Errorf("%w: ceremony state without challenge or expiry", ErrMalformed)
	}
	if !now.Before(s.Expires) {
		return webauthn.SessionData{}, fmt.Errorf("%w: the ceremony expired at %s", ErrRefused, s.Expires.UTC().Format(time.RFC3339))
	}
	return s, nil
}

// attestationCause finds why a registration response did not parse. go-webauthn reports
// a broken attestation (its CBOR, its authenticator data, the COSE key in it) only as
// "Error parsing attestation response" and drops the cause; parsing that part again
// recovers it for the error message. Nothing of this second parse is used otherwise.
func attestationCause(response []byte, err error) error {
	var ccr protocol.CredentialCreationResponse
	if json.Unmarshal(response, &ccr) != nil {
		return err
	}
	if _, cause := ccr.AttestationResponse.Parse(); cause != nil {
		return cause
	}
	return err
}

// ceremony encodes what a Begin call of go-webauthn returned.
func ceremony(options any, session *webauthn.SessionData) (Ceremony, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return Ceremony{}, fmt.Errorf("encode ceremony options: %w", err)
	}
	state, err := json.Marshal(session)
	if err != nil {
		return Ceremony{}, fmt.Errorf("encode ceremony state: %w", err)
	}
	return Ceremony{Options: opts, State: state, Challenge: session.Challenge}, nil
}

// failure is a parse or verification failure: its class (ErrMalformed or ErrRefused), the
// step, and go-webauthn's error, whose details and debug information become the reason.
type failure struct {
	class error
	step  string
	cause error
}

func failed(class error, step string, cause error) error {
	return &failure{class: class, step: step, cause: cause}
}

func (f *failure) Error() string {
	return f.class.Error() + ": " + f.step + ": " + reason(f.cause)
}

func (f *failure) Unwrap() []error { return []error{f.class, f.cause} }

// reason spells out a go-webauthn error: protocol.Error's message is only its Details,
// while what failed and why is often in DevInfo and the wrapped error.
func reason(err error) string {
	var unknown *protocol.ErrorUnknownCredential
	if errors.As(err, &unknown) && unknown.Err != nil {
		err = unknown.Err
	}
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return err.Error()
	}
	// Some details end in a formatted nil error, and some debug information spans lines.
	msg := strings.TrimSuffix(pe.Details, ": <nil>")
	info := strings.Join(strings.Fields(strings.ReplaceAll(pe.DevInfo, "\n", "; ")), " ")
	info = strings.TrimSuffix(info, ";")
	if info != "" {
		msg += " (" + info + ")"
	}
	if pe.Err != nil && !strings.Contains(msg, pe.Err.Error()) {
		msg += ": " + pe.Err.Error()
	}
	return msg
}

// webauthnUser is a User as go-webauthn sees it.
type webauthnUser struct{ u User }

func (w webauthnUser) WebAuthnID() []byte          { return []byte(w.u.ID) }
func (w webauthnUser) WebAuthnName() string        { return w.u.Name }
func (w webauthnUser) WebAuthnDisplayName() string { return w.u.DisplayName }

func (w webauthnUser) WebAuthnCredentials() []webauthn.Credential {
	creds := make([]webauthn.Credential, len(w.u.Passkeys))
	for i, pk := range w.u.Passkeys {
		creds[i] = credential(pk)
	}
	return creds
}

// credential is a stored passkey as go-webauthn's credential record. The flags carry BE
// and BS only: go-webauthn compares BE with the assertion's (it must never change) and
// reads nothing else of them here.
func credential(pk store.Passkey) webauthn.Credential {
	var flags protocol.AuthenticatorFlags
	if pk.BackupEligible {
		flags |= protocol.FlagBackupEligible
	}
	if pk.BackupState {
		flags |= protocol.FlagBackupState
	}
	transports := make([]protocol.AuthenticatorTransport, len(pk.Transports))
	for i, t := range pk.Transports {
		transports[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID:              pk.ID,
		PublicKey:       pk.PublicKey,
		AttestationType: pk.AttestationType,
		Transport:       transports,
		Flags:           webauthn.NewCredentialFlags(flags),
		Authenticator: webauthn.Authenticator{
			AAGUID:    pk.AAGUID,
			SignCount: pk.SignCount,
		},
	}
}
