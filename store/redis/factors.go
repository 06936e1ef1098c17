package redis

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callgate/callgate/store"
)

// Factors are stored as
//
//	{p}:passkey:<credential id hex>  hash: u user id, d the passkeyDocument (JSON, never
//	                                 rewritten), n name, c signature counter, l last use ms
//	                                 (0: never)
//	{p}:user_passkeys:<userId>       sorted set of credential ids (hex) scored by creation ms
//	{p}:totp:<userId>                hash: s sealed secret, l last accepted step, c creation ms
//	{p}:recovery_codes:<userId>      set of code hashes (raw bytes)
//
// What a script changes (counter, last use, name, step) is a field of its own, so no
// script decodes and re-encodes JSON: cjson would turn an empty list into an object.
// Every key is under the prefix's hash tag, so the scripts that touch a credential and its
// user's index, or all of a user's factors, run on Cluster too.

type passkeyDocument struct {
	PublicKey       []byte   `json:"k"`
	AttestationType string   `json:"a,omitempty"`
	AAGUID          []byte   `json:"g,omitempty"`
	Transports      []string `json:"t,omitempty"`
	BackupEligible  bool     `json:"be,omitempty"`
	BackupState     bool     `json:"bs,omitempty"`
	CreatedAt       int64    `json:"c"`
}

// createPasskeyScript: KEYS credential, user index; ARGV user id, document, name, counter,
// last use ms, creation ms, credential id hex. It returns 0 when the id is taken.
var createPasskeyScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'd', ARGV[2], 'n', ARGV[3], 'c', ARGV[4], 'l', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7])
return 1
`)

// usePasskeyScript: KEYS credential; ARGV new counter, use ms. It returns {1} when
// recorded, {0} for no such credential, {-1, stored counter} for a counter that did not
// increase.
var usePasskeyScript = goredis.NewScript(`
local stored = redis.call('HGET', KEYS[1], 'c')
if not stored then return {0} end
local old, new = tonumber(stored), tonumber(ARGV[1])
if (old ~= 0 or new ~= 0) and new <= old then return {-1, stored} end
redis.call('HSET', KEYS[1], 'c', ARGV[1], 'l', ARGV[2])
return {1}
`)

// renamePasskeyScript: KEYS credential; ARGV owner, name. 0: not the owner's, or none.
var renamePasskeyScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'u') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'n', ARGV[2])
return 1
`)

// deletePasskeyScript: KEYS credential, owner's index; ARGV owner, credential id hex.
var deletePasskeyScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'u') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`)

// useTOTPStepScript: KEYS enrolment; ARGV step. It returns {1} when accepted, {0} for no
// enrolment, {-1, last step} for a step at or before the last one.
var useTOTPStepScript = goredis.NewScript(`
local last = redis.call('HGET', KEYS[1], 'l')
if not last then return {0} end
if tonumber(ARGV[1]) <= tonumber(last) then return {-1, last} end
redis.call('HSET', KEYS[1], 'l', ARGV[1])
return {1}
`)

// deleteFactorsLua defines deleteFactors(index, totp, recovery, credential key prefix,
// user id) for the scripts that remove a user's factors. A credential is deleted only if
// it is the user's, so an index entry can never remove another user's.
const deleteFactorsLua = `
local function deleteFactors(index, totp, recovery, prefix, user)
  for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    local k = prefix .. id
    if redis.call('HGET', k, 'u') == user then redis.call('DEL', k) end
  end
  redis.call('DEL', index, totp, recovery)
end
`

// deleteFactorsScript: KEYS user index, enrolment, recovery codes; ARGV credential key
// prefix, user id.
var deleteFactorsScript = goredis.NewScript(deleteFactorsLua + `
deleteFactors(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
return 1
`)

func (s *Store) passkeyKey(id []byte) string { return s.key("passkey", hex.EncodeToString(id)) }

// factorKeys are the keys holding a user's passkey index, TOTP enrolment and recovery
// codes, in the order deleteFactors takes them.
func (s *Store) factorKeys(userID string) []string {
	return []string{s.key("user_passkeys", userID), s.key("totp", userID), s.key("recovery_codes", userID)}
}

// CreatePasskey stores the credential and its index entry atomically, refusing a
// credential ID any user already has.
func (s *Store) CreatePasskey(ctx context.Context, p store.Passkey) error {
	if err := store.CheckPasskey(p); err != nil {
		return fmt.Errorf("create passkey: %w", err)
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	doc, err := json.Marshal(passkeyDocument{PublicKey: p.PublicKey, AttestationType: p.AttestationType, AAGUID: p.AAGUID,
		Transports: p.Transports, BackupEligible: p.BackupEligible, BackupState: p.BackupState, CreatedAt: p.CreatedAt.UnixMilli()})
	if err != nil {
		return fmt.Errorf("create passkey: encode: %w", err)
	}
	lastUsed := "0"
	if !p.LastUsedAt.IsZero() {
		lastUsed = ms(p.LastUsedAt)
	}
	n, err := createPasskeyScript.Run(ctx, s.rdb, []string{s.passkeyKey(p.ID), s.key("user_passkeys", p.UserID)},
		p.UserID, string(doc), p.Name, strconv.FormatUint(uint64(p.SignCount), 10), lastUsed, ms(p.CreatedAt),
		hex.EncodeToString(p.ID)).Int()
	if err != nil {
		return fmt.Errorf("create passkey: %w", wrap("write", err))
	}
	if n == 0 {
		return fmt.Errorf("create passkey: credential id: %w", store.ErrDuplicate)
	}
	return nil
}

// decodePasskey builds a passkey from the fields of its hash; an empty hash is a missing
// credential.
func decodePasskey(id []byte, f map[string]string) (store.Passkey, error) {
	if len(f) == 0 {
		return store.Passkey{}, store.ErrNotFound
	}
	var d passkeyDocument
	if err := json.Unmarshal([]byte(f["d"]), &d); err != nil {
		return store.Passkey{}, fmt.Errorf("decode passkey %x: %w", id, err)
	}
	count, err := strconv.ParseUint(f["c"], 10, 32)
	if err != nil {
		return store.Passkey{}, fmt.Errorf("decode passkey %x: counter %q: %w", id, f["c"], err)
	}
	lastUsed, err := strconv.ParseInt(f["l"], 10, 64)
	if err != nil {
		return store.Passkey{}, fmt.Errorf("decode passkey %x: last use %q: %w", id, f["l"], err)
	}
	p := store.Passkey{ID: bytes.Clone(id), UserID: f["u"], Name: f["n"], PublicKey: d.PublicKey,
		AttestationType: d.AttestationType, AAGUID: d.AAGUID, SignCount: uint32(count), Transports: d.Transports,
		BackupEligible: d.BackupEligible, BackupState: d.BackupState, CreatedAt: time.UnixMilli(d.CreatedAt).UTC()}
	if lastUsed != 0 {
		p.LastUsedAt = time.UnixMilli(lastUsed).UTC()
	}
	return p, nil
}

// Passkey returns the credential with this ID.
func (s *Store) Passkey(ctx context.Context, credentialID []byte) (store.Passkey, error) {
	if len(credentialID) == 0 {
		return store.Passkey{}, fmt.Errorf("get passkey: %w", store.ErrNotFound)
	}
	f, err := s.rdb.HGetAll(ctx, s.passkeyKey(credentialID)).Result()
	if err != nil {
		return store.Passkey{}, fmt.Errorf("get passkey: %w", wrap("read", err))
	}
	p, err := decodePasskey(credentialID, f)
	if err != nil {
		return store.Passkey{}, fmt.Errorf("get passkey: %w", err)
	}
	return p, nil
}

// ListPasskeys reads the user's index and its credentials in one pipeline, oldest first
// (credential ID breaks a tie).
func (s *Store) ListPasskeys(ctx context.Context, userID string) ([]store.Passkey, error) {
	ids, err := s.rdb.ZRange(ctx, s.key("user_passkeys", userID), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", wrap("read index", err))
	}
	list := []store.Passkey{}
	if len(ids) == 0 {
		return list, nil
	}
	cmds := make([]*goredis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, h := range ids {
			cmds[i] = p.HGetAll(ctx, s.key("passkey", h))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", wrap("read passkeys", err))
	}
	for i, h := range ids {
		id, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("list passkeys: index entry %q: %w", h, err)
		}
		p, err := decodePasskey(id, cmds[i].Val())
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted between the two reads
		}
		if err != nil {
			return nil, fmt.Errorf("list passkeys: %w", err)
		}
		if p.UserID != userID {
			continue // deleted and registered again by someone else meanwhile
		}
		list = append(list, p)
	}
	slices.SortFunc(list, func(a, b store.Passkey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.ID, b.ID)
	})
	return list, nil
}

// UsePasskey checks and moves the signature counter in one script, so two replicas
// handed the same assertion cannot both accept it.
func (s *Store) UsePasskey(ctx context.Context, credentialID []byte, signCount uint32, at time.Time) error {
	if len(credentialID) == 0 {
		return fmt.Errorf("use passkey: %w", store.ErrNotFound)
	}
	if at.IsZero() {
		at = time.Now()
	}
	res, err := usePasskeyScript.Run(ctx, s.rdb, []string{s.passkeyKey(credentialID)},
		strconv.FormatUint(uint64(signCount), 10), ms(at)).Slice()
	if err != nil {
		return fmt.Errorf("use passkey: %w", wrap("write", err))
	}
	if len(res) == 0 {
		return fmt.Errorf("use passkey: empty reply")
	}
	switch code, _ := res[0].(int64); code {
	case 1:
		return nil
	case 0:
		return fmt.Errorf("use passkey: %w", store.ErrNotFound)
	default:
		return fmt.Errorf("use passkey: signature counter %d after %v: %w", signCount, res[1:], store.ErrConflict)
	}
}

// RenamePasskey sets the name of one of the user's credentials.
func (s *Store) RenamePasskey(ctx context.Context, userID string, credentialID []byte, name string) error {
	n, err := renamePasskeyScript.Run(ctx, s.rdb, []string{s.passkeyKey(credentialID)}, userID, name).Int()
	if err != nil {
		return fmt.Errorf("rename passkey: %w", wrap("write", err))
	}
	if n == 0 {
		return fmt.Errorf("rename passkey: %w", store.ErrNotFound)
	}
	return nil
}

// DeletePasskey removes one of the user's credentials and its index entry atomically.
func (s *Store) DeletePasskey(ctx context.Context, userID string, credentialID []byte) error {
	n, err := deletePasskeyScript.Run(ctx, s.rdb, []string{s.passkeyKey(credentialID), s.key("user_passkeys", userID)},
		userID, hex.EncodeToString(credentialID)).Int()
	if err != nil {
		return fmt.Errorf("delete passkey: %w", wrap("write", err))
	}
	if n == 0 {
		return fmt.Errorf("delete passkey: %w", store.ErrNotFound)
	}
	return nil
}

// SetTOTP stores the enrolment with one HSET of every field, replacing an earlier one
// with its last step in one command.
func (s *Store) SetTOTP(ctx context.Context, t store.TOTPSecret) error {
	if err := store.CheckTOTPSecret(t); err != nil {
		return fmt.Errorf("set TOTP: %w", err)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	err := s.rdb.HSet(ctx, s.key("totp", t.UserID), "s", t.Sealed, "l", strconv.FormatInt(t.LastStep, 10), "c", ms(t.CreatedAt)).Err()
	if err != nil {
		return fmt.Errorf("set TOTP: %w", wrap("write", err))
	}
	return nil
}

// TOTP returns the user's enrolment.
func (s *Store) TOTP(ctx context.Context, userID string) (store.TOTPSecret, error) {
	f, err := s.rdb.HGetAll(ctx, s.key("totp", userID)).Result()
	if err != nil {
		return store.TOTPSecret{}, fmt.Errorf("get TOTP: %w", wrap("read", err))
	}
	if len(f) == 0 {
		return store.TOTPSecret{}, fmt.Errorf("get TOTP: %w", store.ErrNotFound)
	}
	step, err := strconv.ParseInt(f["l"], 10, 64)
	if err != nil {
		return store.TOTPSecret{}, fmt.Errorf("get TOTP: last step %q: %w", f["l"], err)
	}
	created, err := strconv.ParseInt(f["c"], 10, 64)
	if err != nil {
		return store.TOTPSecret{}, fmt.Errorf("get TOTP: creation time %q: %w", f["c"], err)
	}
	return store.TOTPSecret{UserID: userID, Sealed: []byte(f["s"]), LastStep: step, CreatedAt: time.UnixMilli(created).UTC()}, nil
}

// UseTOTPStep checks and moves the last accepted step in one script, so a code passes
// once across every replica.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	if err := store.CheckTOTPStep(step); err != nil {
		return fmt.Errorf("use TOTP step: %w", err)
	}
	res, err := useTOTPStepScript.Run(ctx, s.rdb, []string{s.key("totp", userID)}, strconv.FormatInt(step, 10)).Slice()
	if err != nil {
		return fmt.Errorf("use TOTP step: %w", wrap("write", err))
	}
	if len(res) == 0 {
		return fmt.Errorf("use TOTP step: empty reply")
	}
	switch code, _ := res[0].(int64); code {
	case 1:
		return nil
	case 0:
		return fmt.Errorf("use TOTP step: %w", store.ErrNotFound)
	default:
		return fmt.Errorf("use TOTP step: step %d at or before %v: %w", step, res[1:], store.ErrConflict)
	}
}

// DeleteTOTP removes the user's enrolment.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	n, err := s.rdb.Del(ctx, s.key("totp", userID)).Result()
	if err != nil {
		return fmt.Errorf("delete TOTP: %w", wrap("write", err))
	}
	if n == 0 {
		return fmt.Errorf("delete TOTP: %w", store.ErrNotFound)
	}
	return nil
}

// SetRecoveryCodes replaces the user's code hashes in one MULTI: the old codes stop
// working in the same instant the new ones start.
func (s *Store) SetRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error {
	if err := store.CheckFactorUserID(userID); err != nil {
		return fmt.Errorf("set recovery codes: %w", err)
	}
	if err := store.CheckRecoveryHashes(hashes); err != nil {
		return fmt.Errorf("set recovery codes: %w", err)
	}
	key := s.key("recovery_codes", userID)
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, key)
		if len(hashes) > 0 {
			members := make([]any, len(hashes))
			for i, h := range hashes {
				members[i] = h
			}
			p.SAdd(ctx, key, members...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set recovery codes: %w", wrap("write", err))
	}
	return nil
}

// UseRecoveryCode removes the code's hash with SREM, which reports whether it was there:
// of several replicas removing the same hash, one sees 1.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hash []byte) error {
	if len(hash) == 0 {
		return fmt.Errorf("use recovery code: %w", store.ErrNotFound)
	}
	n, err := s.rdb.SRem(ctx, s.key("recovery_codes", userID), hash).Result()
	if err != nil {
		return fmt.Errorf("use recovery code: %w", wrap("write", err))
	}
	if n == 0 {
		return fmt.Errorf("use recovery code: %w", store.ErrNotFound)
	}
	return nil
}

// CountRecoveryCodes counts the user's unused code hashes.
func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	n, err := s.rdb.SCard(ctx, s.key("recovery_codes", userID)).Result()
	if err != nil {
		return 0, fmt.Errorf("count recovery codes: %w", wrap("read", err))
	}
	return int(n), nil
}

// DeleteFactors removes every factor of the user in one script.
func (s *Store) DeleteFactors(ctx context.Context, userID string) error {
	if err := store.CheckFactorUserID(userID); err != nil {
		return fmt.Errorf("delete factors: %w", err)
	}
	if err := deleteFactorsScript.Run(ctx, s.rdb, s.factorKeys(userID), s.key("passkey", ""), userID).Err(); err != nil {
		return fmt.Errorf("delete factors: %w", wrap("write", err))
	}
	return nil
}
