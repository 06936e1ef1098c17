// Package factor holds the primitives of second factors and passkeys: the sealing of TOTP
// secrets at rest and the hashing of recovery codes (sealer.go), TOTP enrolment and
// verification (totp.go), and the WebAuthn registration and login ceremonies (passkey.go).
//
// It is the cryptography and nothing around it. The engine runs the ceremonies: it decides
// when a factor is asked for, keeps ceremony state and counters in the store (refusing a
// replayed TOTP step or a signature counter that went back), counts failed attempts and
// writes the pages and cookies. This package keeps no state between calls, does no I/O and
// knows no HTTP request, cookie or script: every function takes plain values and returns
// plain values or a typed error, and none of them panics on any input.
package factor
