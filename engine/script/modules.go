package script

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/dop251/goja"
	"golang.org/x/crypto/bcrypt"

	"github.com/callgate/callgate/store"
)

// bcryptMaxPassword is how much of a password bcrypt uses; bcryptjs silently truncates to it,
// and so do we, so hashes made by bcryptjs for longer passwords still verify.
const bcryptMaxPassword = 72

// bcryptDefaultRounds is bcryptjs's default cost.
const bcryptDefaultRounds = 10

// bcryptEncoding is bcrypt's own base64 alphabet, used to spell the salt of genSalt.
var bcryptEncoding = base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)

// goWork runs fn off the runtime goroutine and returns a JS promise of its result. The
// result is converted on the runtime goroutine, through the call's event loop.
func (v *vm) goWork(fn func(ctx context.Context) (any, error), toJS func(any) goja.Value) goja.Value {
	c := v.call
	if c == nil {
		v.throw("Error", "asynchronous host functions can only run inside a callback")
	}
	p, resolve, reject := v.rt.NewPromise()
	settle := c.async().start()
	ctx := c.context()
	go func() {
		res, err := fn(ctx)
		settle(func() {
			if err != nil {
				_ = reject(v.newError("Error", err.Error()))
				return
			}
			_ = resolve(toJS(res))
		})
	}()
	return v.rt.ToValue(p)
}

// await runs fn off the runtime goroutine and waits for it, giving up when the call's
// context ends (the synchronous host functions must not outlive the deadline either).
func (v *vm) await(fn func(ctx context.Context) (any, error)) (any, error) {
	ctx := context.Background()
	if v.call != nil {
		ctx = v.call.context()
	}
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := fn(ctx)
		done <- result{r, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// withCallback implements bcryptjs's optional node-style callback: with a function as the
// last argument the operation calls it with (err, result) and returns undefined; without,
// it returns a promise.
func (v *vm) withCallback(cb goja.Value, promise goja.Value) goja.Value {
	fn, ok := goja.AssertFunction(cb)
	if !ok {
		return promise
	}
	p := promise.(*goja.Object)
	then, _ := goja.AssertFunction(p.Get("then"))
	onOK := v.rt.ToValue(func(fc goja.FunctionCall) goja.Value {
		_, err := fn(goja.Undefined(), goja.Null(), fc.Argument(0))
		if err != nil {
			panic(err)
		}
		return goja.Undefined()
	})
	onErr := v.rt.ToValue(func(fc goja.FunctionCall) goja.Value {
		_, err := fn(goja.Undefined(), fc.Argument(0))
		if err != nil {
			panic(err)
		}
		return goja.Undefined()
	})
	if _, err := then(p, onOK, onErr); err != nil {
		panic(err)
	}
	return goja.Undefined()
}

// bcryptModule is the Go-backed `bcryptjs`.
func (v *vm) bcryptModule() *goja.Object {
	rt := v.rt
	m := rt.NewObject()
	str := func(fc goja.FunctionCall, fn string, n int) []string {
		out := make([]string, n)
		for i := range n {
			a := fc.Argument(i)
			s, ok := a.Export().(string)
			if !ok || isObject(a) {
				v.throw("Error", fmt.Sprintf("Illegal arguments to %s: argument %d must be a string, got %s", fn, i+1, v.typeOf(a)))
			}
			out[i] = s
		}
		return out
	}
	compare := func(password, hash string) bool {
		return bcrypt.CompareHashAndPassword([]byte(hash), truncatePassword(password)) == nil
	}
	set := func(name string, fn func(goja.FunctionCall) goja.Value) {
		_ = m.Set(name, fn)
	}
	set("compareSync", func(fc goja.FunctionCall) goja.Value {
		a := str(fc, "compareSync", 2)
		ok, err := v.await(func(context.Context) (any, error) { return compare(a[0], a[1]), nil })
		if err != nil {
			panic(err)
		}
		return rt.ToValue(ok)
	})
	set("compare", func(fc goja.FunctionCall) goja.Value {
		a := str(fc, "compare", 2)
		p := v.goWork(func(context.Context) (any, error) { return compare(a[0], a[1]), nil }, func(r any) goja.Value { return rt.ToValue(r) })
		return v.withCallback(fc.Argument(2), p)
	})
	costOf := func(fn string, salt goja.Value) int {
		if isNullish(salt) {
			return bcryptDefaultRounds
		}
		if s, ok := salt.Export().(string); ok && !isObject(salt) {
			cost, err := bcrypt.Cost([]byte(s + "......................................."))
			if err != nil {
				v.throw("Error", fmt.Sprintf("%s: invalid salt %q", fn, s))
			}
			return cost
		}
		if n, ok := salt.Export().(int64); ok {
			return clampRounds(int(n))
		}
		if f, ok := salt.Export().(float64); ok {
			return clampRounds(int(f))
		}
		v.throw("Error", fmt.Sprintf("Illegal arguments to %s: salt must be a string or a number of rounds, got %s", fn, v.typeOf(salt)))
		return 0
	}
	hash := func(password string, cost int) (any, error) {
		h, err := bcrypt.GenerateFromPassword(truncatePassword(password), cost)
		if err != nil {
			return nil, fmt.Errorf("bcrypt hash: %w", err)
		}
		return string(h), nil
	}
	set("hashSync", func(fc goja.FunctionCall) goja.Value {
		a := str(fc, "hashSync", 1)
		cost := costOf("hashSync", fc.Argument(1))
		h, err := v.await(func(context.Context) (any, error) { return hash(a[0], cost) })
		if err != nil {
			panic(err)
		}
		return rt.ToValue(h)
	})
	set("hash", func(fc goja.FunctionCall) goja.Value {
		a := str(fc, "hash", 1)
		salt, cb := fc.Argument(1), fc.Argument(2)
		if _, ok := goja.AssertFunction(salt); ok {
			salt, cb = goja.Undefined(), salt
		}
		cost := costOf("hash", salt)
		p := v.goWork(func(context.Context) (any, error) { return hash(a[0], cost) }, func(r any) goja.Value { return rt.ToValue(r) })
		return v.withCallback(cb, p)
	})
	genSalt := func(rounds goja.Value) string {
		cost := bcryptDefaultRounds
		if !isNullish(rounds) {
			cost = clampRounds(int(rounds.ToInteger()))
		}
		raw := make([]byte, 16)
		_, _ = rand.Read(raw)
		return fmt.Sprintf("$2a$%02d$%s", cost, bcryptEncoding.EncodeToString(raw))
	}
	set("genSaltSync", func(fc goja.FunctionCall) goja.Value {
		return rt.ToValue(genSalt(fc.Argument(0)))
	})
	set("genSalt", func(fc goja.FunctionCall) goja.Value {
		rounds, cb := fc.Argument(0), goja.Value(goja.Undefined())
		for i := len(fc.Arguments) - 1; i >= 0; i-- {
			if _, ok := goja.AssertFunction(fc.Arguments[i]); ok {
				cb = fc.Arguments[i]
				if i == 0 {
					rounds = goja.Undefined()
				}
				break
			}
		}
		p, resolve, _ := rt.NewPromise()
		_ = resolve(genSalt(rounds))
		return v.withCallback(cb, rt.ToValue(p))
	})
	set("getRounds", func(fc goja.FunctionCall) goja.Value {
		a := str(fc, "getRounds", 1)
		cost, err := bcrypt.Cost([]byte(a[0]))
		if err != nil {
			v.throw("Error", "getRounds: not a bcrypt hash")
		}
		return rt.ToValue(cost)
	})
	set("getSalt", func(fc goja.FunctionCall) goja.Value {
		a := str(fc, "getSalt", 1)
		if len(a[0]) != 60 {
			v.throw("Error", "getSalt: not a bcrypt hash")
		}
		return rt.ToValue(a[0][:29])
	})
	freeze(rt, m)
	return m
}

func clampRounds(n int) int {
	return min(max(n, bcrypt.MinCost), bcrypt.MaxCost)
}

func truncatePassword(p string) []byte {
	b := []byte(p)
	if len(b) > bcryptMaxPassword {
		b = b[:bcryptMaxPassword]
	}
	return b
}

// storeModule is the Go-backed `callgate/store`.
func (v *vm) storeModule() *goja.Object {
	rt := v.rt
	users := rt.NewObject()
	_ = users.Set("findOne", func(fc goja.FunctionCall) goja.Value {
		q := v.userQueryFor("users.findOne", fc.Argument(0))
		st := v.gen.users
		if st == nil {
			v.throw("Error", "users.findOne: no user store is configured")
		}
		return v.goWork(func(ctx context.Context) (any, error) {
			u, err := st.FindUser(ctx, q)
			if errors.Is(err, store.ErrNotFound) {
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("users.findOne: %w", err)
			}
			return u, nil
		}, func(r any) goja.Value {
			if r == nil {
				return goja.Null()
			}
			return v.userDocument(r.(store.User))
		})
	})
	v.addUserWrites(users)
	freeze(rt, users)
	factors := rt.NewObject()
	_ = factors.Set("list", func(fc goja.FunctionCall) goja.Value {
		userID := fc.Argument(0)
		id, ok := userID.Export().(string)
		if !ok || isObject(userID) || id == "" {
			v.throw("TypeError", "factors.list: userId must be a non-empty string (the user's id), got "+v.typeOf(userID))
		}
		st := v.gen.factors
		if st == nil {
			v.throw("Error", "factors.list: no store is configured")
		}
		return v.goWork(func(ctx context.Context) (any, error) {
			return listFactors(ctx, st, id)
		}, func(r any) goja.Value {
			return v.factorList(r.(userFactors))
		})
	})
	freeze(rt, factors)
	m := rt.NewObject()
	_ = m.Set("users", users)
	_ = m.Set("factors", factors)
	freeze(rt, m)
	return m
}

// userFactors is what factors.list reads from the store for one user.
type userFactors struct {
	passkeys []store.Passkey
	totp     *store.TOTPSecret
	recovery int
}

// listFactors reads a user's factors. A user with none (or with no such user) has an
// empty list; a store failure is an error, never an empty list, so a policy that requires
// a second factor fails closed.
func listFactors(ctx context.Context, st store.Factors, userID string) (userFactors, error) {
	var f userFactors
	var err error
	if f.passkeys, err = st.ListPasskeys(ctx, userID); err != nil {
		return userFactors{}, fmt.Errorf("factors.list: passkeys: %w", err)
	}
	switch t, err := st.TOTP(ctx, userID); {
	case err == nil:
		f.totp = &t
	case !errors.Is(err, store.ErrNotFound):
		return userFactors{}, fmt.Errorf("factors.list: TOTP: %w", err)
	}
	if f.recovery, err = st.CountRecoveryCodes(ctx, userID); err != nil {
		return userFactors{}, fmt.Errorf("factors.list: recovery codes: %w", err)
	}
	return f, nil
}

// factorList builds factors.list's array, fresh for every call: the passkeys oldest first
// as the store lists them, then TOTP, then the recovery codes when any are left. Secrets,
// public keys and counters stay in Go.
func (v *vm) factorList(f userFactors) goja.Value {
	rt := v.rt
	items := make([]any, 0, len(f.passkeys)+2)
	for _, p := range f.passkeys {
		o := rt.NewObject()
		_ = o.Set("type", "passkey")
		_ = o.Set("id", base64.RawURLEncoding.EncodeToString(p.ID))
		_ = o.Set("name", p.Name)
		_ = o.Set("createdAt", v.toJS(p.CreatedAt))
		lastUsed := goja.Null()
		if !p.LastUsedAt.IsZero() {
			lastUsed = v.toJS(p.LastUsedAt)
		}
		_ = o.Set("lastUsedAt", lastUsed)
		items = append(items, o)
	}
	if f.totp != nil {
		o := rt.NewObject()
		_ = o.Set("type", "totp")
		_ = o.Set("createdAt", v.toJS(f.totp.CreatedAt))
		items = append(items, o)
	}
	if f.recovery > 0 {
		o := rt.NewObject()
		_ = o.Set("type", "recovery")
		_ = o.Set("remaining", f.recovery)
		items = append(items, o)
	}
	return rt.NewArray(items...)
}

// userQueryFor reads the query of users.findOne or users.update (fn, for errors): one or
// more of username, email, _id and id (strings).
func (v *vm) userQueryFor(fn string, arg goja.Value) store.UserQuery {
	o, ok := arg.(*goja.Object)
	if !ok || v.typeOf(arg) != "object" {
		v.throw("TypeError", fn+": the query must be an object such as {username}, got "+v.typeOf(arg))
	}
	var q store.UserQuery
	n := 0
	for _, k := range o.Keys() {
		val := o.Get(k)
		if goja.IsUndefined(val) {
			continue // {username: credentials?.username} with nothing typed
		}
		s, isStr := val.Export().(string)
		if !isStr || isObject(val) {
			v.throw("TypeError", fmt.Sprintf("%s: %s must be a string, got %s", fn, k, v.typeOf(val)))
		}
		switch k {
		case "username":
			q.Username = s
		case "email":
			q.Email = s
		case "_id", "id":
			if q.ID != "" && q.ID != s {
				v.throw("TypeError", fn+": _id and id differ")
			}
			q.ID = s
		default:
			v.throw("TypeError", fmt.Sprintf("%s: unknown query field %q (use username, email, _id or id)", fn, k))
		}
		n++
	}
	if n == 0 {
		v.throw("TypeError", fn+": the query needs at least one of username, email, _id or id")
	}
	return q
}

// userDocument builds the MongoDB-style shape scripts see, fresh for every lookup:
// {_id, username, name, email, role, password, ...extra}.
func (v *vm) userDocument(u store.User) goja.Value {
	doc := v.rt.NewObject()
	for _, kv := range [...]struct{ k, v string }{
		{"_id", u.ID}, {"username", u.Username}, {"name", u.Name},
		{"email", u.Email}, {"role", u.Role}, {"password", u.PasswordHash},
	} {
		_ = doc.Set(kv.k, kv.v)
	}
	extra := v.toJS(u.Extra)
	if eo, ok := extra.(*goja.Object); ok {
		for _, k := range eo.Keys() {
			if doc.Get(k) == nil {
				_ = doc.Set(k, eo.Get(k))
			}
		}
	}
	return doc
}

func freeze(rt *goja.Runtime, o *goja.Object) {
	if f, ok := goja.AssertFunction(rt.Get("Object").ToObject(rt).Get("freeze")); ok {
		_, _ = f(goja.Undefined(), o)
	}
}
