package session

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/tidwall/sjson"

	"github.com/callgate/callgate/engine/script"
)

// jwtStrategy is the "jwt" strategy (the default): the session is the token in the cookie,
// a JWE (or JWS) of the jwt callback's result, re-encoded with a fresh expiry on every read.
type jwtStrategy struct {
	o Options
	// cache keeps decoded cookies for the proxy's hot path (cache.go).
	cache *cache
}

// signInToken is NextAuth's token for a user who has just signed in, in its key order:
// {name, email, picture, sub} from the user's name, email, image and String(id). A missing
// field is an undefined key, as in NextAuth, which the token's JSON leaves out.
func signInToken(in SignIn) script.Fields {
	sub := any(script.Undefined)
	if in.HasID {
		sub = in.UserID
	}
	return script.Fields{
		{Key: "name", Value: field(in.User, "name")},
		{Key: "email", Value: field(in.User, "email")},
		{Key: "picture", Value: field(in.User, "image")},
		{Key: "sub", Value: sub},
	}
}

// Read is NextAuth's JWT session read: decode, the revocation check, the OAuth refresh when
// due, jwt({token, session}) (trigger "update" with the client's data on POST), the default
// session from the decoded token, session({session, token}), re-encode with a fresh expiry.
//
// The token reaches jwt as the payload's JSON and its result comes back as JSON, so the
// script sees the claims in the order the token holds them and the new token and the
// /session body keep the order the script built, as NextAuth's do (script.JSON).
//
// A token that does not decode (expired, tampered, other secret), is revoked, or whose
// refresh ended it, ends the session: Clear. A callback that fails is different: it is the
// gateway's fault, not the user's, so it is an error and the cookie is kept — a broken or
// slow script never signs everyone out.
func (s *jwtStrategy) Read(ctx context.Context, gen *script.Generation, raw string, u Update) (Read, error) {
	if raw == "" {
		return Read{}, nil
	}
	decoded, payload, err := s.o.Keys.DecodePayload(raw)
	if err != nil {
		s.o.Log.InfoContext(ctx, "session token rejected", "code", "JWT_SESSION_ERROR", "reason", err.Error())
		return Read{Clear: true}, nil
	}
	if revoked, err := s.o.Revoked(ctx, decoded); err != nil {
		return Read{}, err
	} else if revoked {
		s.o.Log.InfoContext(ctx, "session token revoked", "code", "JWT_SESSION_ERROR", "reason", "revoked")
		return Read{Clear: true}, nil
	}
	cfg := gen.Config()
	signedIn := authTime(cfg.Session, decoded)
	life, ok := lifetime(cfg.Session, signedIn, s.o.Now())
	if !ok {
		s.o.Log.InfoContext(ctx, "session ended", "code", "JWT_SESSION_ERROR", "reason", "session.absoluteMaxAge has passed since sign-in")
		return Read{Clear: true}, nil
	}
	var refresh Refreshed
	if s.o.Refresh != nil {
		if refresh, err = s.o.Refresh(ctx, gen, decoded); err != nil {
			return Read{}, err
		}
	}
	if refresh.End {
		s.o.Log.InfoContext(ctx, "session ended by token refresh", "code", "JWT_SESSION_ERROR", "reason", refresh.Reason)
		return Read{Clear: true}, nil
	}
	expires := s.o.Now().Add(life)
	claims := s.keptClaims(decoded, lifetimeClaims(signedIn, refresh.Claims))
	defaults := defaultSession(sessionUser(decoded, "picture"), expires)
	tokenOut, body := script.JSON(payload), script.JSON(nil)
	if refresh.JWTArg != nil {
		// Refreshed: the new token, as a map (its order is the refresh's, not the cookie's).
		if tokenOut, err = json.Marshal(refresh.Token); err != nil {
			return Read{}, fmt.Errorf("encode refreshed token: %w", err)
		}
	}
	if gen.Defines(script.CallbackJWT) || gen.Defines(script.CallbackSession) {
		arg := script.JWTArgs{Token: tokenOut, Session: orNull(u.Data)}
		if u.Update {
			arg.Trigger = "update"
		}
		if refresh.JWTArg != nil {
			arg = *refresh.JWTArg
		}
		res, err := gen.ReadSession(ctx, script.ReadArgs{JWT: arg, Session: defaults, Claims: claims, Removed: s.unowned(claims)})
		if err != nil {
			return Read{}, err
		}
		if res.Token == nil {
			// jwt returned null: the script ended the session.
			return Read{Clear: true}, nil
		}
		tokenOut, body = res.Token, res.Session
	} else {
		if body, err = defaults.MarshalJSON(); err != nil {
			return Read{}, fmt.Errorf("encode session: %w", err)
		}
		if tokenOut, err = withClaims(tokenOut, claims); err != nil {
			return Read{}, fmt.Errorf("encode session token: %w", err)
		}
	}
	// A revocation may have come in while the refresh and the callbacks ran (a sign-out
	// everywhere, a provider's logout by subject: both cut off by issue time), and the new
	// token has a new iat: the token it replaces is checked again before it is issued.
	if revoked, err := s.o.Revoked(ctx, decoded); err != nil {
		return Read{}, fmt.Errorf("check revocations: %w", err)
	} else if revoked {
		return Read{Clear: true}, nil
	}
	tok, err := s.o.Keys.EncodeJSON(tokenOut, life)
	if err != nil {
		return Read{}, fmt.Errorf("encode session token: %w", err)
	}
	inspectEncoded(ctx, "session read", tokenOut, tok)
	return Read{
		Active: true, Body: body, Set: &Cookie{Value: tok, Expires: expires},
		Event: map[string]any{"session": body, "token": tokenOut},
	}, nil
}

// unowned are the core's kept claims that claims (what the core sets on a token) does not
// hold: removed from the jwt callback's result, so a script cannot add them.
func (s *jwtStrategy) unowned(claims map[string]any) []string {
	var out []string
	for _, name := range s.o.KeptClaims {
		if _, ok := claims[name]; !ok {
			out = append(out, name)
		}
	}
	return out
}

// owned is claims with the core's kept claims it does not hold marked for removal
// (removedClaim), for withClaims.
func (s *jwtStrategy) owned(claims map[string]any) map[string]any {
	removed := s.unowned(claims)
	if len(removed) == 0 {
		return claims
	}
	out := make(map[string]any, len(claims)+len(removed))
	for k, v := range claims {
		out[k] = v
	}
	for _, name := range removed {
		out[name] = removedClaim{}
	}
	return out
}

// removedClaim marks a claim withClaims deletes.
type removedClaim struct{}

// keptClaims are the claims put on the jwt callback's result: the refresh's, and the
// core's kept claims as the decoded token holds them.
func (s *jwtStrategy) keptClaims(decoded, refreshed map[string]any) map[string]any {
	var out map[string]any
	for _, name := range s.o.KeptClaims {
		v, ok := decoded[name]
		if _, set := refreshed[name]; !ok || set {
			continue
		}
		if out == nil {
			// refreshed is the caller's: add to a copy.
			out = make(map[string]any, len(refreshed)+len(s.o.KeptClaims))
			for k, rv := range refreshed {
				out[k] = rv
			}
		}
		out[name] = v
	}
	if out == nil {
		return refreshed
	}
	return out
}

// Issue builds the new token from the user ({name, email, picture, sub}), runs jwt({token,
// user, account, [profile,] isNewUser, trigger: "signIn" | "signUp"}) and encodes its result
// for jwt.maxAge; the cookie lives for session.maxAge.
func (s *jwtStrategy) Issue(ctx context.Context, gen *script.Generation, in SignIn) (Cookie, error) {
	tokenIn := signInToken(in)
	var tokenOut script.JSON
	if gen.Defines(script.CallbackJWT) {
		trigger := "signIn"
		if in.IsNewUser {
			trigger = "signUp"
		}
		arg := script.JWTArgs{Token: tokenIn, User: present(in.User), Account: present(in.Account), IsNewUser: in.IsNewUser, Trigger: trigger}
		if in.WithProfile {
			arg.Profile = present(in.Profile)
		}
		res, err := gen.JWT(ctx, arg)
		if err != nil {
			return Cookie{}, &CallbackError{Callback: "callbacks.jwt", Err: err}
		}
		if res == nil {
			return Cookie{}, ErrDenied
		}
		tokenOut = res
	} else {
		b, err := tokenIn.MarshalJSON()
		if err != nil {
			return Cookie{}, fmt.Errorf("%w: %w", ErrEncode, err)
		}
		tokenOut = b
	}
	return s.encodeSignedIn(ctx, gen.Config(), tokenOut, in.AMR, in.Claims)
}

// encodeSignedIn encodes the token of an authentication that happens now (a sign-in, a
// step-up) with the core's claims (extra, and amr and auth_time when amr is set), for
// jwt.maxAge, cut short by session.absoluteMaxAge, which counts from now.
func (s *jwtStrategy) encodeSignedIn(ctx context.Context, cfg script.Config, tokenOut script.JSON, amr []string, extra map[string]any) (Cookie, error) {
	now := s.o.Now()
	var signedIn time.Time
	tokenAge := cfg.JWT.MaxAge
	if cfg.Session.AbsoluteMaxAge > 0 {
		signedIn, tokenAge = now, min(tokenAge, cfg.Session.AbsoluteMaxAge)
	}
	tokenOut, err := withClaims(tokenOut, s.owned(authenticationClaims(amr, now, lifetimeClaims(signedIn, extra))))
	if err != nil {
		return Cookie{}, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	tok, err := s.o.Keys.EncodeJSON(tokenOut, tokenAge)
	if err != nil {
		return Cookie{}, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	inspectEncoded(ctx, "sign-in", tokenOut, tok)
	life, _ := lifetime(cfg.Session, signedIn, now)
	return Cookie{Value: tok, Expires: now.Add(life)}, nil
}

// withClaims sets the core's claims on a token the jwt callback made (the OAuth refresh
// claim), in place when the token has them and appended when not, as a JS assignment
// would. Their names are the core's own, plain keys (sjson paths need no escaping).
func withClaims(token script.JSON, claims map[string]any) (script.JSON, error) {
	if len(claims) == 0 {
		return token, nil
	}
	names := make([]string, 0, len(claims))
	for name := range claims {
		names = append(names, name)
	}
	slices.Sort(names)
	out := []byte(token)
	for _, name := range names {
		var err error
		if _, remove := claims[name].(removedClaim); remove {
			if out, err = sjson.DeleteBytes(out, name); err != nil {
				return nil, fmt.Errorf("remove claim %s: %w", name, err)
			}
			continue
		}
		if out, err = sjson.SetBytes(out, name, claims[name]); err != nil {
			return nil, fmt.Errorf("set claim %s: %w", name, err)
		}
	}
	return out, nil
}

// End reports the decoded token for events.signOut; there is nothing to delete.
func (s *jwtStrategy) End(ctx context.Context, raw string) (map[string]any, error) {
	decoded, err := s.o.Keys.Decode(raw)
	if err != nil {
		s.o.Log.InfoContext(ctx, "sign-out with an invalid session token", "code", "SIGNOUT_ERROR", "reason", err.Error())
		return nil, nil
	}
	return map[string]any{"token": decoded}, nil
}

// Lookup decodes the cookie (decrypts the JWE or verifies the JWS), with no store round
// trip, and caches the result (bounded, keyed by the cookie value, expiring with the token
// and after at most cacheTTL), because decrypting a JWE or verifying a signature costs more
// than the rest of a proxied request's gateway work together.
// The revocation check runs on every request, cached or not: it is in memory.
func (s *jwtStrategy) Lookup(ctx context.Context, raw string) (*Session, error) {
	now := s.o.Now()
	sess := s.cache.get(raw, now)
	if sess == nil {
		claims, payload, err := s.o.Keys.DecodePayload(raw)
		if err != nil {
			s.o.Log.DebugContext(ctx, "session token rejected", "code", "JWT_SESSION_ERROR", "reason", err.Error())
			return nil, nil
		}
		sess = s.newSession(claims, payload)
		s.cache.put(raw, sess, now)
	}
	revoked, err := s.o.Revoked(ctx, sess.token)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, nil
	}
	return sess, nil
}

// newSession is the proxy's Session of a decoded token.
func (s *jwtStrategy) newSession(claims map[string]any, payload []byte) *Session {
	sess := &Session{token: claims, payload: payload, now: s.o.Now}
	if exp, ok := claims["exp"].(float64); ok {
		sess.expires = time.Unix(int64(exp), 0)
	}
	return sess
}

// EndProvider revokes the tokens started from the provider session, through the
// revocation list every replica holds in memory: the tokens themselves are in the browsers.
func (s *jwtStrategy) EndProvider(ctx context.Context, l ProviderLogout) ([]map[string]any, error) {
	if s.o.RevokeProvider == nil {
		return nil, ErrNoStore
	}
	if err := s.o.RevokeProvider(ctx, l); err != nil {
		return nil, err
	}
	return []map[string]any{{"token": l.Token}}, nil
}

// Reauthenticate re-encodes the token of raw with the new authentication (amr, and
// auth_time now) and a full lifetime from now. The jwt callback does not run: nothing about
// the user changed, only how recently they proved who they are. The old token stays valid
// until it expires, as after any renewal.
func (s *jwtStrategy) Reauthenticate(ctx context.Context, gen *script.Generation, raw string, amr []string) (Cookie, error) {
	decoded, payload, err := s.o.Keys.DecodePayload(raw)
	if err != nil {
		return Cookie{}, ErrNoSession
	}
	if revoked, err := s.o.Revoked(ctx, decoded); err != nil {
		return Cookie{}, fmt.Errorf("check revocations: %w", err)
	} else if revoked {
		return Cookie{}, ErrNoSession
	}
	// The core's other kept claims (the provider session of single logout) stay as the
	// token holds them; amr and auth_time are the new authentication's.
	return s.encodeSignedIn(ctx, gen.Config(), payload, amr, s.keptClaims(decoded, nil))
}
