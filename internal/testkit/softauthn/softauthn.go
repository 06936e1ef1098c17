// Package softauthn is a software WebAuthn authenticator and the browser in front of it,
// for tests of the relying party: it reads the options a server returned as
// navigator.credentials.create() and get() do, and answers with the PublicKeyCredential
// JSON the browser would post (credential.toJSON()), built and signed with real ES256 over
// real CBOR. A test takes the answer as a value (Attestation, Assertion), changes what it
// wants to forge, and encodes it with Response. Only test code imports it.
package softauthn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// The authenticator data flags (WebAuthn §6.1).
const (
	FlagUP byte = 0x01 // user present
	FlagUV byte = 0x04 // user verified
	FlagBE byte = 0x08 // backup eligible
	FlagBS byte = 0x10 // backed up
	FlagAT byte = 0x40 // attested credential data included
)

// B64 is the encoding of every binary member of WebAuthn's JSON: base64url, no padding.
var B64 = base64.RawURLEncoding

// Authenticator holds one discoverable ES256 credential. It is not safe for concurrent use.
type Authenticator struct {
	// Origin is what the browser reports in client data.
	Origin string
	// RPID, when set, is the RP ID the authenticator hashes into its authenticator data
	// instead of the one the options name.
	RPID string
	// Counter is the signature counter of the last answer; Get increments it first.
	Counter uint32

	key    *ecdsa.PrivateKey
	id     []byte
	aaguid []byte
	// user is the user handle learnt at registration, returned with every assertion as a
	// discoverable credential does.
	user []byte
}

// New is an authenticator with a fresh key pair and credential ID, behind a browser at
// origin. rpID, when given, overrides the RP ID it hashes (see Authenticator.RPID).
func New(t testing.TB, origin string, rpID ...string) *Authenticator {
	t.Helper()
	a := &Authenticator{
		Origin: origin,
		key:    NewKey(t),
		id:     RandomBytes(t, 32),
		aaguid: RandomBytes(t, 16),
	}
	if len(rpID) > 0 {
		a.RPID = rpID[0]
	}
	return a
}

// CredentialID is the credential's ID (the raw bytes; B64 encodes it as the JSON's id).
func (a *Authenticator) CredentialID() []byte { return a.id }

// AAGUID is the authenticator model's identifier, as its attestation reports it.
func (a *Authenticator) AAGUID() []byte { return a.aaguid }

// PublicKey is the credential's public key.
func (a *Authenticator) PublicKey() *ecdsa.PublicKey { return &a.key.PublicKey }

// UserHandle is the user handle learnt by the last Create (nil before).
func (a *Authenticator) UserHandle() []byte { return a.user }

// NewKey is a fresh P-256 key: the way to sign an assertion with a key that is not the
// credential's (Assertion.SignedBy).
func NewKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

// RandomBytes is n bytes from crypto/rand.
func RandomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random bytes: %v", err)
	}
	return b
}

// ClientData is the CollectedClientData the browser signs over (by hash).
type ClientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// CreationOptions and RequestOptions are the parts of the options a browser reads, for
// navigator.credentials.create() and get().
type CreationOptions struct {
	PublicKey struct {
		RP        struct{ ID string } `json:"rp"`
		User      struct{ ID string } `json:"user"`
		Challenge string              `json:"challenge"`
		Exclude   []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
		Selection struct {
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		Attestation string `json:"attestation"`
		Timeout     int    `json:"timeout"`
	} `json:"publicKey"`
}

type RequestOptions struct {
	PublicKey struct {
		RPID      string `json:"rpId"`
		Challenge string `json:"challenge"`
		Allow     []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		UserVerification string `json:"userVerification"`
		Timeout          int    `json:"timeout"`
	} `json:"publicKey"`
}

// DecodeOptions decodes options JSON into a CreationOptions or RequestOptions.
func DecodeOptions(t testing.TB, options []byte, into any) {
	t.Helper()
	if err := json.Unmarshal(options, into); err != nil {
		t.Fatalf("decode options %s: %v", options, err)
	}
}

// Attestation is the answer to navigator.credentials.create(), before encoding.
type Attestation struct {
	ClientData   ClientData
	RPID         string
	Flags        byte
	Counter      uint32
	CredentialID []byte
	AAGUID       []byte
	PublicKey    *ecdsa.PublicKey
	// AttestationObject, when set, replaces the encoded attestation object.
	AttestationObject []byte
}

// Create answers registration options: a new credential for the options' user, with
// "none" attestation. It remembers the user handle as a discoverable credential does.
func (a *Authenticator) Create(t testing.TB, options []byte) Attestation {
	t.Helper()
	var o CreationOptions
	DecodeOptions(t, options, &o)
	user, err := B64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		t.Fatalf("user.id %q: %v", o.PublicKey.User.ID, err)
	}
	a.user = user
	rpID := o.PublicKey.RP.ID
	if a.RPID != "" {
		rpID = a.RPID
	}
	return Attestation{
		ClientData:   ClientData{Type: "webauthn.create", Challenge: o.PublicKey.Challenge, Origin: a.Origin},
		RPID:         rpID,
		Flags:        FlagUP | FlagUV | FlagAT | FlagBE,
		Counter:      a.Counter,
		CredentialID: a.id,
		AAGUID:       a.aaguid,
		PublicKey:    &a.key.PublicKey,
	}
}

// WithOrigin is the attestation as a browser at another origin would report it.
func (at Attestation) WithOrigin(origin string) Attestation {
	at.ClientData.Origin = origin
	return at
}

// COSEKey is an EC2 P-256 ES256 public key in COSE form (RFC 9053 §7.1).
func COSEKey(t testing.TB, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatalf("public key bytes: %v", err)
	}
	key := map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]}
	return CTAP2Marshal(t, key)
}

// CTAP2Marshal encodes v in CTAP2's canonical CBOR, as authenticators do.
func CTAP2Marshal(t testing.TB, v any) []byte {
	t.Helper()
	mode, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		t.Fatalf("cbor mode: %v", err)
	}
	b, err := mode.Marshal(v)
	if err != nil {
		t.Fatalf("cbor marshal: %v", err)
	}
	return b
}

// AuthData is authenticator data without attested credential data or extensions:
// SHA-256(rpID) || flags || counter (big-endian).
func AuthData(rpID string, flags byte, counter uint32) []byte {
	hash := sha256.Sum256([]byte(rpID))
	d := append(hash[:], flags)
	return binary.BigEndian.AppendUint32(d, counter)
}

// AuthData is the attestation's authenticator data, with the attested credential data
// when FlagAT is set.
func (at Attestation) AuthData(t testing.TB) []byte {
	t.Helper()
	d := AuthData(at.RPID, at.Flags, at.Counter)
	if at.Flags&FlagAT == 0 {
		return d
	}
	d = append(d, at.AAGUID...)
	d = binary.BigEndian.AppendUint16(d, uint16(len(at.CredentialID)))
	d = append(d, at.CredentialID...)
	return append(d, COSEKey(t, at.PublicKey)...)
}

// Response is the PublicKeyCredential JSON the browser posts for this attestation.
func (at Attestation) Response(t testing.TB) []byte {
	t.Helper()
	cdj, err := json.Marshal(at.ClientData)
	if err != nil {
		t.Fatalf("client data: %v", err)
	}
	object := at.AttestationObject
	if object == nil {
		object = CTAP2Marshal(t, map[string]any{
			"fmt":      "none",
			"attStmt":  map[string]any{},
			"authData": at.AuthData(t),
		})
	}
	return credentialJSON(t, at.CredentialID, map[string]any{
		"clientDataJSON":    B64.EncodeToString(cdj),
		"attestationObject": B64.EncodeToString(object),
		"transports":        []string{"internal", "hybrid"},
	})
}

func credentialJSON(t testing.TB, id []byte, response map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"id":                      B64.EncodeToString(id),
		"rawId":                   B64.EncodeToString(id),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response":                response,
	})
	if err != nil {
		t.Fatalf("encode credential: %v", err)
	}
	return b
}

// Assertion is the answer to navigator.credentials.get(), before encoding.
type Assertion struct {
	ClientData   ClientData
	RPID         string
	Flags        byte
	Counter      uint32
	CredentialID []byte
	UserHandle   []byte
	// Signer signs authenticatorData || SHA-256(clientDataJSON); AuthData, when set,
	// replaces the authenticator data (and is what is signed).
	Signer   *ecdsa.PrivateKey
	AuthData []byte
}

// Get answers request options with this credential, its counter one higher than last
// time. It does not check allowCredentials: a test decides whether to present it.
func (a *Authenticator) Get(t testing.TB, options []byte) Assertion {
	t.Helper()
	var o RequestOptions
	DecodeOptions(t, options, &o)
	a.Counter++
	rpID := o.PublicKey.RPID
	if a.RPID != "" {
		rpID = a.RPID
	}
	return Assertion{
		ClientData:   ClientData{Type: "webauthn.get", Challenge: o.PublicKey.Challenge, Origin: a.Origin},
		RPID:         rpID,
		Flags:        FlagUP | FlagUV | FlagBE,
		Counter:      a.Counter,
		CredentialID: a.id,
		UserHandle:   a.user,
		Signer:       a.key,
	}
}

// SignedBy is the assertion signed with another key than the credential's: a forgery.
func (as Assertion) SignedBy(key *ecdsa.PrivateKey) Assertion {
	as.Signer = key
	return as
}

// WithCounter is the assertion with another signature counter (a regression, a replay).
func (as Assertion) WithCounter(n uint32) Assertion {
	as.Counter = n
	return as
}

// WithOrigin is the assertion as a browser at another origin would report it.
func (as Assertion) WithOrigin(origin string) Assertion {
	as.ClientData.Origin = origin
	return as
}

// WithRPID is the assertion with the authenticator data hashing another RP ID.
func (as Assertion) WithRPID(rpID string) Assertion {
	as.RPID = rpID
	return as
}

// WithoutUserPresence is the assertion with the UP flag cleared: no one touched the
// authenticator.
func (as Assertion) WithoutUserPresence() Assertion {
	as.Flags &^= FlagUP
	return as
}

// Response is the PublicKeyCredential JSON the browser posts for this assertion.
func (as Assertion) Response(t testing.TB) []byte {
	t.Helper()
	cdj, err := json.Marshal(as.ClientData)
	if err != nil {
		t.Fatalf("client data: %v", err)
	}
	data := as.AuthData
	if data == nil {
		data = AuthData(as.RPID, as.Flags, as.Counter)
	}
	cdHash := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(append([]byte(nil), data...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, as.Signer, digest[:])
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	response := map[string]any{
		"clientDataJSON":    B64.EncodeToString(cdj),
		"authenticatorData": B64.EncodeToString(data),
		"signature":         B64.EncodeToString(sig),
	}
	if as.UserHandle != nil {
		response["userHandle"] = B64.EncodeToString(as.UserHandle)
	}
	return credentialJSON(t, as.CredentialID, response)
}

// WithResponseField returns the credential JSON with response[field] set to value: the
// way to hand the server a member no authenticator would produce.
func WithResponseField(t testing.TB, credential []byte, field string, value any) []byte {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal(credential, &c); err != nil {
		t.Fatalf("decode credential: %v", err)
	}
	r, ok := c["response"].(map[string]any)
	if !ok {
		t.Fatalf("credential without a response object: %s", credential)
	}
	r[field] = value
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("encode credential: %v", err)
	}
	return b
}
