package factor

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
	flagUP byte = 0x01
	flagUV byte = 0x04
	flagBE byte = 0x08
	flagBS byte = 0x10
	flagAT byte = 0x40
)

// authenticator is a software WebAuthn authenticator and the browser in front of it: it
// reads the options a Begin call returned as navigator.credentials.create() and get() do,
// and answers with the PublicKeyCredential JSON the browser would post, built and signed
// with real ES256 over real CBOR. A test takes the answer as a value (attestation,
// assertion), changes what it wants to forge, and encodes it.
type authenticator struct {
	key     *ecdsa.PrivateKey
	id      []byte
	aaguid  []byte
	origin  string
	counter uint32
	// user is the user handle learnt at registration, returned with every assertion as a
	// discoverable credential does.
	user []byte
}

func newAuthenticator(t testing.TB, origin string) *authenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return &authenticator{
		key:    key,
		id:     randomBytes(t, 32),
		aaguid: randomBytes(t, 16),
		origin: origin,
	}
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random bytes: %v", err)
	}
	return b
}

var b64 = base64.RawURLEncoding

// clientData is the CollectedClientData the browser signs over (by hash).
type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// creationOptions and requestOptions are the parts of Ceremony.Options a browser reads.
type creationOptions struct {
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

type requestOptions struct {
	PublicKey struct {
		RPID      string `json:"rpId"`
		Challenge string `json:"challenge"`
		Allow     []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		UserVerification string `json:"userVerification"`
	} `json:"publicKey"`
}

func decodeOptions(t testing.TB, options []byte, into any) {
	t.Helper()
	if err := json.Unmarshal(options, into); err != nil {
		t.Fatalf("decode options %s: %v", options, err)
	}
}

// attestation is the answer to navigator.credentials.create(), before encoding.
type attestation struct {
	ClientData   clientData
	RPID         string
	Flags        byte
	Counter      uint32
	CredentialID []byte
	AAGUID       []byte
	PublicKey    *ecdsa.PublicKey
	// AttestationObject, when set, replaces the encoded attestation object.
	AttestationObject []byte
}

// create answers registration options: a new credential for the options' user, with
// "none" attestation. It remembers the user handle as a discoverable credential does.
func (a *authenticator) create(t testing.TB, options []byte) attestation {
	t.Helper()
	var o creationOptions
	decodeOptions(t, options, &o)
	user, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		t.Fatalf("user.id %q: %v", o.PublicKey.User.ID, err)
	}
	a.user = user
	return attestation{
		ClientData:   clientData{Type: "webauthn.create", Challenge: o.PublicKey.Challenge, Origin: a.origin},
		RPID:         o.PublicKey.RP.ID,
		Flags:        flagUP | flagUV | flagAT | flagBE,
		Counter:      a.counter,
		CredentialID: a.id,
		AAGUID:       a.aaguid,
		PublicKey:    &a.key.PublicKey,
	}
}

// coseKey is an EC2 P-256 ES256 public key in COSE form (RFC 9053 §7.1).
func coseKey(t testing.TB, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatalf("public key bytes: %v", err)
	}
	key := map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]}
	return ctap2Marshal(t, key)
}

func ctap2Marshal(t testing.TB, v any) []byte {
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

func authData(rpID string, flags byte, counter uint32) []byte {
	hash := sha256.Sum256([]byte(rpID))
	d := append(hash[:], flags)
	return binary.BigEndian.AppendUint32(d, counter)
}

func (at attestation) authData(t testing.TB) []byte {
	d := authData(at.RPID, at.Flags, at.Counter)
	if at.Flags&flagAT == 0 {
		return d
	}
	d = append(d, at.AAGUID...)
	d = binary.BigEndian.AppendUint16(d, uint16(len(at.CredentialID)))
	d = append(d, at.CredentialID...)
	return append(d, coseKey(t, at.PublicKey)...)
}

func (at attestation) response(t testing.TB) []byte {
	t.Helper()
	cdj, err := json.Marshal(at.ClientData)
	if err != nil {
		t.Fatalf("client data: %v", err)
	}
	object := at.AttestationObject
	if object == nil {
		object = ctap2Marshal(t, map[string]any{
			"fmt":      "none",
			"attStmt":  map[string]any{},
			"authData": at.authData(t),
		})
	}
	return credentialJSON(t, at.CredentialID, map[string]any{
		"clientDataJSON":    b64.EncodeToString(cdj),
		"attestationObject": b64.EncodeToString(object),
		"transports":        []string{"internal", "hybrid"},
	})
}

func credentialJSON(t testing.TB, id []byte, response map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"id":                      b64.EncodeToString(id),
		"rawId":                   b64.EncodeToString(id),
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

// assertion is the answer to navigator.credentials.get(), before encoding.
type assertion struct {
	ClientData   clientData
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

// get answers request options with this credential, its counter one higher than last
// time. It does not check allowCredentials: a test decides whether to present it.
func (a *authenticator) get(t testing.TB, options []byte) assertion {
	t.Helper()
	var o requestOptions
	decodeOptions(t, options, &o)
	a.counter++
	return assertion{
		ClientData:   clientData{Type: "webauthn.get", Challenge: o.PublicKey.Challenge, Origin: a.origin},
		RPID:         o.PublicKey.RPID,
		Flags:        flagUP | flagUV | flagBE,
		Counter:      a.counter,
		CredentialID: a.id,
		UserHandle:   a.user,
		Signer:       a.key,
	}
}

func (as assertion) response(t testing.TB) []byte {
	t.Helper()
	cdj, err := json.Marshal(as.ClientData)
	if err != nil {
		t.Fatalf("client data: %v", err)
	}
	data := as.AuthData
	if data == nil {
		data = authData(as.RPID, as.Flags, as.Counter)
	}
	cdHash := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(append([]byte(nil), data...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, as.Signer, digest[:])
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	response := map[string]any{
		"clientDataJSON":    b64.EncodeToString(cdj),
		"authenticatorData": b64.EncodeToString(data),
		"signature":         b64.EncodeToString(sig),
	}
	if as.UserHandle != nil {
		response["userHandle"] = b64.EncodeToString(as.UserHandle)
	}
	return credentialJSON(t, as.CredentialID, response)
}

// withResponseField returns the credential JSON with response[field] set to value: the
// way to hand the server a member no authenticator would produce.
func withResponseField(t testing.TB, credential []byte, field string, value any) []byte {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal(credential, &c); err != nil {
		t.Fatalf("decode credential: %v", err)
	}
	c["response"].(map[string]any)[field] = value
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("encode credential: %v", err)
	}
	return b
}
