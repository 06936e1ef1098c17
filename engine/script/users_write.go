package script

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/dop251/goja"
	"golang.org/x/crypto/bcrypt"

	"github.com/callgate/callgate/store"
)

// users.create and users.update of `callgate/store`: writes with NextAuth's adapter
// semantics. The store enforces the unique username and e-mail; the host hashes plain
// passwords and fires events.createUser / events.updateUser once the write succeeded.
//
// Those events run on the writing call's own runtime, inside its deadline, and the write's
// promise settles after the handler did (NextAuth awaits its events too). Firing them
// through Generation.Emit instead would need a second runtime of the sign-in lane while
// this call holds one, and could wait on itself when the lane is full. A handler's failure
// is logged (CREATEUSER_EVENT_ERROR, UPDATEUSER_EVENT_ERROR, as the engine logs its own
// events) and never fails the write.

// maxUserEvents bounds the events script writes may fire in one call, so that a handler
// that writes the user it is told about (events.updateUser calling users.update) ends
// instead of running until the deadline. A write past it is refused before it is made.
const maxUserEvents = 16

// passwordCost is the bcrypt cost of passwords set from scripts: bcryptjs's default, so a
// script's own bcrypt.compare verifies them as fast as hashes it made.
const passwordCost = bcryptDefaultRounds

// userWrite is a create or update read from the script's arguments: the store's fields,
// and a plain password to hash off the runtime goroutine.
type userWrite struct {
	user     store.User      // create
	patch    store.UserPatch // update
	password *string         // plain; nil when not given, "" never
}

// addUserWrites installs users.create and users.update on the users object.
func (v *vm) addUserWrites(users *goja.Object) {
	_ = users.Set("create", func(fc goja.FunctionCall) goja.Value {
		const fn = "users.create"
		st := v.writableUsers(fn)
		w := v.readUserDoc(fn, fc.Argument(0))
		fire := v.reserveUserEvent(fn, EventCreateUser)
		return v.goWork(func(ctx context.Context) (any, error) {
			if err := w.hashPassword(fn); err != nil {
				return nil, err
			}
			if err := store.ValidateUser(w.user); err != nil {
				return nil, fmt.Errorf("%s: %w", fn, err)
			}
			u, err := st.CreateUser(ctx, w.user)
			if err != nil {
				return nil, storeWriteError(fn, err)
			}
			return u, nil
		}, v.userWritten(fire))
	})
	_ = users.Set("update", func(fc goja.FunctionCall) goja.Value {
		const fn = "users.update"
		st := v.writableUsers(fn)
		q := v.userQueryFor(fn, fc.Argument(0))
		w := v.readUserChanges(fn, fc.Argument(1))
		fire := eventCount // nothing changes: nothing to tell
		if !w.patch.IsZero() || w.password != nil {
			fire = v.reserveUserEvent(fn, EventUpdateUser)
		}
		return v.goWork(func(ctx context.Context) (any, error) {
			cur, err := st.FindUser(ctx, q)
			if errors.Is(err, store.ErrNotFound) {
				return nil, fmt.Errorf("%s: no user matches %s", fn, describeQuery(q))
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", fn, err)
			}
			// Refused here with the store's own rules, for a message without the store's
			// wrapping; the store checks again, atomically with the write.
			if _, err := w.patch.Apply(cur); err != nil {
				return nil, fmt.Errorf("%s: %w", fn, err)
			}
			if err := w.hashPassword(fn); err != nil {
				return nil, err
			}
			u, err := st.UpdateUser(ctx, cur.ID, w.patch)
			if errors.Is(err, store.ErrNotFound) {
				return nil, fmt.Errorf("%s: no user matches %s (deleted meanwhile)", fn, describeQuery(q))
			}
			if err != nil {
				return nil, storeWriteError(fn, err)
			}
			return u, nil
		}, v.userWritten(fire))
	})
}

// writableUsers is the configured store, or a throw naming the function.
func (v *vm) writableUsers(fn string) store.Users {
	if v.gen.users == nil {
		v.throw("Error", fn+": no user store is configured")
	}
	return v.gen.users
}

// reserveUserEvent counts an event a write will fire when the script handles it, and
// refuses the write past maxUserEvents. eventCount stands for "fire nothing".
func (v *vm) reserveUserEvent(fn string, e Event) Event {
	if _, ok := v.fns[e.String()]; !ok {
		return eventCount
	}
	c := v.call
	if c == nil {
		v.throw("Error", "asynchronous host functions can only run inside a callback")
	}
	if c.userEvents >= maxUserEvents {
		v.throw("Error", fmt.Sprintf("%s: refused: this call has already fired %s %d times (does the handler write the user it is given?)", fn, e, maxUserEvents))
	}
	c.userEvents++
	return e
}

// hashPassword replaces the plain password with its bcrypt hash (bcryptjs truncates to 72
// bytes; so does the host, so that bcryptjs.compare agrees).
func (w *userWrite) hashPassword(fn string) error {
	if w.password == nil {
		return nil
	}
	h, err := bcrypt.GenerateFromPassword(truncatePassword(*w.password), passwordCost)
	if err != nil {
		return fmt.Errorf("%s: hash password: %w", fn, err)
	}
	hash := string(h)
	w.user.PasswordHash, w.patch.PasswordHash = hash, &hash
	return nil
}

// readUserDoc reads users.create's document: {username, name?, email?, role?, password?,
// passwordHash?, _id?, ...extra}.
func (v *vm) readUserDoc(fn string, arg goja.Value) userWrite {
	fields := v.plainObject(fn, "the user", arg)
	var w userWrite
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		val := fields[k]
		switch k {
		case "_id", "id":
			id := v.optString(fn, k, val)
			if w.user.ID != "" && id != w.user.ID {
				v.throw("TypeError", fn+": _id and id differ")
			}
			w.user.ID = id
		case "username":
			w.user.Username = v.optString(fn, k, val)
		case "name":
			w.user.Name = v.optString(fn, k, val)
		case "email":
			w.user.Email = v.optString(fn, k, val)
		case "role":
			w.user.Role = v.optString(fn, k, val)
		case "password":
			w.password = v.optPassword(fn, val)
		case "passwordHash":
			w.user.PasswordHash = v.optString(fn, k, val)
		default:
			v.checkExtraKey(fn, k)
			if w.user.Extra == nil {
				w.user.Extra = map[string]any{}
			}
			w.user.Extra[k] = val
		}
	}
	if w.user.Username == "" {
		v.throw("TypeError", fn+": username is required")
	}
	if w.password != nil && w.user.PasswordHash != "" {
		v.throw("TypeError", fn+": give password (plain) or passwordHash (bcrypt), not both")
	}
	return w
}

// readUserChanges reads users.update's changes: the fields to set ({name: "x"}, null
// clearing one of the user's own fields), or MongoDB's {$set: {...}, $unset: {...}}.
func (v *vm) readUserChanges(fn string, arg goja.Value) userWrite {
	fields := v.plainObject(fn, "the changes", arg)
	set, unset := fields, map[string]any{}
	isOp := func(k string) bool { return strings.HasPrefix(k, "$") }
	if keys := slices.Collect(maps.Keys(fields)); slices.ContainsFunc(keys, isOp) {
		if slices.ContainsFunc(keys, func(k string) bool { return !isOp(k) }) {
			v.throw("TypeError", fn+": the changes mix update operators ($set, $unset) with fields")
		}
		set = map[string]any{}
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			o, ok := fields[k].(map[string]any)
			switch {
			case k != "$set" && k != "$unset":
				v.throw("TypeError", fmt.Sprintf("%s: unknown update operator %q (use $set and $unset, or a plain object of fields)", fn, k))
			case !ok:
				v.throw("TypeError", fmt.Sprintf("%s: %s must be an object of fields", fn, k))
			case k == "$set":
				set = o
			default:
				unset = o
			}
		}
	}
	var w userWrite
	p := &w.patch
	for _, k := range slices.Sorted(maps.Keys(set)) {
		val := set[k]
		switch k {
		case "_id", "id":
			v.throw("TypeError", fn+": _id cannot be changed")
		case "username":
			if val == nil {
				v.throw("TypeError", fn+": username cannot be removed")
			}
			p.Username = ptrTo(v.optString(fn, k, val))
		case "name":
			p.Name = ptrTo(v.optString(fn, k, val))
		case "email":
			p.Email = ptrTo(v.optString(fn, k, val))
		case "role":
			p.Role = ptrTo(v.optString(fn, k, val))
		case "password":
			if w.password = v.optPassword(fn, val); w.password == nil {
				p.PasswordHash = ptrTo("") // null: no password sign-in any more
			}
		case "passwordHash":
			p.PasswordHash = ptrTo(v.optString(fn, k, val))
		default:
			v.checkExtraKey(fn, k)
			if p.SetExtra == nil {
				p.SetExtra = map[string]any{}
			}
			p.SetExtra[k] = val
		}
	}
	if _, both := set["password"]; both {
		if _, hash := set["passwordHash"]; hash {
			v.throw("TypeError", fn+": give password (plain) or passwordHash (bcrypt), not both")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(unset)) {
		switch k {
		case "_id", "id", "username":
			v.throw("TypeError", fmt.Sprintf("%s: %s cannot be removed", fn, k))
		case "name":
			p.Name = ptrTo("")
		case "email":
			p.Email = ptrTo("")
		case "role":
			p.Role = ptrTo("")
		case "password", "passwordHash":
			p.PasswordHash = ptrTo("")
		default:
			v.checkExtraKey(fn, k)
			p.UnsetExtra = append(p.UnsetExtra, k)
		}
		if _, both := set[k]; both {
			v.throw("TypeError", fmt.Sprintf("%s: %s is both set and unset", fn, k))
		}
	}
	return w
}

// plainObject exports a document argument with JSON semantics (undefined values vanish).
func (v *vm) plainObject(fn, what string, arg goja.Value) map[string]any {
	if !isObject(arg) || v.typeOf(arg) != "object" {
		v.throw("TypeError", fmt.Sprintf("%s: %s must be an object, got %s", fn, what, v.typeOf(arg)))
	}
	raw, err := v.exportJSON(arg)
	if err != nil {
		v.throw("TypeError", fmt.Sprintf("%s: %s: %v", fn, what, err))
	}
	m, ok := raw.(map[string]any)
	if !ok {
		v.throw("TypeError", fmt.Sprintf("%s: %s must be a plain object", fn, what))
	}
	return m
}

// optString reads a string field; null is "".
func (v *vm) optString(fn, k string, val any) string {
	if val == nil {
		return ""
	}
	s, ok := val.(string)
	if !ok {
		v.throw("TypeError", fmt.Sprintf("%s: %s must be a string, got %s", fn, k, jsonType(val)))
	}
	return s
}

// optPassword reads a plain password: null is none, "" is refused (it would be a password
// anyone can type).
func (v *vm) optPassword(fn string, val any) *string {
	s := v.optString(fn, "password", val)
	if val == nil {
		return nil
	}
	if s == "" {
		v.throw("TypeError", fn+": password is empty (use null for no password)")
	}
	return &s
}

// checkExtraKey refuses keys that look like MongoDB operators where a field is expected.
func (v *vm) checkExtraKey(fn, k string) {
	if strings.HasPrefix(k, "$") {
		v.throw("TypeError", fmt.Sprintf("%s: unknown field %q (operators are $set and $unset, in users.update only)", fn, k))
	}
}

func jsonType(x any) string {
	switch x.(type) {
	case bool:
		return "boolean"
	case float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", x)
}

func ptrTo(s string) *string { return &s }

// describeQuery renders a query as the script wrote it, for "no user matches".
func describeQuery(q store.UserQuery) string {
	m := map[string]string{}
	for k, s := range map[string]string{"_id": q.ID, "username": q.Username, "email": q.Email} {
		if s != "" {
			m[k] = s
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// storeWriteError words a refused or failed write for the script: a taken field as
// `username "jatin" is already taken`, anything else with the store's own message.
func storeWriteError(fn string, err error) error {
	msg := err.Error()
	if errors.Is(err, store.ErrDuplicate) {
		// Backends name the field first: `<op>: username "jatin": already exists`.
		for _, field := range []string{"username", "email", "id"} {
			if i := strings.Index(msg, field+` "`); i >= 0 && (i == 0 || msg[i-1] == ' ') {
				what := strings.TrimSuffix(msg[i:], ": "+store.ErrDuplicate.Error())
				return fmt.Errorf("%s: %s is already taken: %w", fn, what, store.ErrDuplicate)
			}
		}
	}
	return fmt.Errorf("%s: %w", fn, err)
}

// userWritten turns a write's result into the stored user's document, for the write's
// promise, after the event e (unless eventCount) has been fired with the adapter user.
func (v *vm) userWritten(e Event) func(any) goja.Value {
	return func(r any) goja.Value {
		u := r.(store.User)
		doc := v.userDocument(u)
		if e == eventCount {
			return doc
		}
		return v.fireUserEvent(e, u, doc)
	}
}

// fireUserEvent calls the script's handler of e with {user} on this runtime and returns
// what the write's promise resolves to: doc, once the handler has settled.
func (v *vm) fireUserEvent(e Event, u store.User, doc goja.Value) goja.Value {
	b, ok := v.fns[e.String()]
	if !ok {
		return doc
	}
	arg := v.rt.NewObject()
	_ = arg.Set("user", v.toJS(adapterUser(u)))
	res, err := b.fn(b.this, arg)
	if err != nil {
		var ex *goja.Exception
		if !errors.As(err, &ex) {
			panic(err) // an interrupt: the call ends with it
		}
		v.logEventError(e, ex.Value(), ex.Stack())
		return doc
	}
	o, isObj := res.(*goja.Object)
	if !isObj {
		return doc
	}
	then, ok := goja.AssertFunction(o.Get("then"))
	if !ok {
		return doc
	}
	onOK := v.rt.ToValue(func(goja.FunctionCall) goja.Value { return doc })
	onErr := v.rt.ToValue(func(fc goja.FunctionCall) goja.Value {
		v.logEventError(e, fc.Argument(0), nil)
		return doc
	})
	chained, err := then(o, onOK, onErr)
	if err != nil {
		panic(err)
	}
	return chained
}

// logEventError logs a failed handler as the engine logs its own events' failures.
func (v *vm) logEventError(e Event, thrown goja.Value, frames []goja.StackFrame) {
	se := v.thrownError(e.String(), thrown, frames)
	ctx := context.Background()
	if v.call != nil {
		ctx = v.call.parent
	}
	v.gen.logger.Log(ctx, slog.LevelError, "callback failed",
		"code", strings.ToUpper(e.Key())+"_EVENT_ERROR", "callback", se.Callback, "kind", se.Kind.String(),
		"error", se.Name+": "+se.Message, "at", fmt.Sprintf("%s:%d:%d", se.File, se.Line, se.Column), "stack", se.Stack)
}

// adapterUser is the user as events see it: NextAuth's AdapterUser ({id, name, email,
// image}) plus callgate's username, role and extra fields, never the password hash. It is
// the shape the engine passes to events.createUser after an OAuth sign-in.
func adapterUser(u store.User) map[string]any {
	m := u.AdapterUser()
	if _, ok := m["image"]; !ok {
		m["image"] = nil
	}
	return m
}
