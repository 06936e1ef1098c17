package session

import (
	"context"
	"testing"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store"
)

// argScripts report the argument object each callback receives: its keys as the script
// sees them (Object.keys, in NextAuth's order) and each value's typeof, with null told apart from
// objects. jwt keeps its report in the token under jwt_<trigger>; session reports its own
// in session.arg and passes the token it was given on as session.token.
const argScripts = `import Credentials from "callgate/providers/credentials";
const describe = (arg) => Object.keys(arg).map((k) => k + ":" + (arg[k] === null ? "null" : typeof arg[k])).join(",");
export default {
  session: { strategy: "STRATEGY", maxAge: 3600, updateAge: 600 },
  providers: [Credentials({ credentials: {}, async authorize() { return null; } })],
  callbacks: {
    async jwt(arg) {
      const token = arg.token;
      token["jwt_" + (arg.trigger || "read")] = describe(arg);
      return token;
    },
    async session(arg) {
      const session = arg.session;
      session.arg = describe(arg);
      if (arg.token) session.token = arg.token;
      return session;
    },
  },
};
`

// loadArgs loads argScripts for the strategy, with the Sessions options o (Keys, Store and
// Now are filled in).
func loadArgs(t *testing.T, strategy string, st store.Store, o Options) (*script.Generation, Strategy) {
	t.Helper()
	gen, s, _ := loadScripts(t, argScripts, strategy, st, o)
	return gen, s
}

func reported(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("no %s reported in %v", key, m)
	}
	return s
}

// TestJWTCallbackArgs pins the argument objects of the jwt strategy's callbacks: the key
// sets, null versus undefined and the values' types of jwt on issue (credentials, OAuth
// with a profile, a sign-up with no user or account maps), on a read (GET /session: session
// undefined; a read with no data, the home page's: session null), on an update (with data,
// with null data) and on a token refresh (the refresh hook's argument), and of session on
// each read and on the proxy's read (Session.Auth).
func TestJWTCallbackArgs(t *testing.T) {
	ctx := context.Background()
	refreshing := false
	gen, strategy := loadArgs(t, "jwt", nil, Options{Refresh: func(ctx context.Context, gen *script.Generation, tok map[string]any) (Refreshed, error) {
		if !refreshing {
			return Refreshed{Token: tok}, nil
		}
		account := map[string]any{"provider": "hydra", "type": "oauth", "providerAccountId": "a1", "access_token": "new"}
		return Refreshed{Token: tok, JWTArg: &script.JWTArgs{Token: tok, Account: account, Trigger: "refresh"}}, nil
	}})
	user := map[string]any{"id": "u1", "name": "Jane", "email": "jane@example.com"}
	account := map[string]any{"provider": "credentials", "type": "credentials", "providerAccountId": script.Undefined}

	const sessionArg = "session:object,token:object"
	issues := []struct {
		name string
		in   SignIn
		want string
	}{
		{"credentials", SignIn{User: user, Account: account, UserID: "u1", HasID: true},
			"token:object,user:object,account:object,isNewUser:boolean,trigger:string"},
		{"oauth", SignIn{User: user, Account: account, Profile: map[string]any{"sub": "p1"}, WithProfile: true, IsNewUser: true, UserID: "u1", HasID: true},
			"token:object,user:object,account:object,profile:object,isNewUser:boolean,trigger:string"},
		{"nil maps", SignIn{WithProfile: true, IsNewUser: true},
			"token:object,user:object,account:object,profile:object,isNewUser:boolean,trigger:string"},
	}
	for _, c := range issues {
		t.Run("issue/"+c.name, func(t *testing.T) {
			issued, err := strategy.Issue(ctx, gen, c.in)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			rd, err := strategy.Read(ctx, gen, issued.Value, Update{Data: script.Undefined})
			if err != nil || !rd.Active {
				t.Fatalf("Read: %+v, %v", rd, err)
			}
			tok := bodyOf(t, rd)["token"].(map[string]any)
			trigger := "signIn"
			if c.in.IsNewUser {
				trigger = "signUp"
			}
			if got := reported(t, tok, "jwt_"+trigger); got != c.want {
				t.Errorf("jwt on issue: got {%s}, want {%s}", got, c.want)
			}
		})
	}

	issued, err := strategy.Issue(ctx, gen, SignIn{User: user, Account: account, UserID: "u1", HasID: true})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	reads := []struct {
		name      string
		u         Update
		refresh   bool
		key, want string
	}{
		{"read", Update{Data: script.Undefined}, false, "jwt_read", "token:object,session:undefined"},
		{"read without data", Update{}, false, "jwt_read", "token:object,session:null"},
		{"update", Update{Update: true, Data: map[string]any{"x": 1.0}}, false, "jwt_update", "token:object,trigger:string,session:object"},
		{"update with null", Update{Update: true}, false, "jwt_update", "token:object,trigger:string,session:null"},
		{"update without data", Update{Update: true, Data: script.Undefined}, false, "jwt_update", "token:object,trigger:string,session:undefined"},
		{"refresh", Update{Data: script.Undefined}, true, "jwt_refresh", "token:object,account:object,trigger:string"},
	}
	for _, c := range reads {
		t.Run(c.name, func(t *testing.T) {
			refreshing = c.refresh
			defer func() { refreshing = false }()
			rd, err := strategy.Read(ctx, gen, issued.Value, c.u)
			if err != nil || !rd.Active {
				t.Fatalf("Read: %+v, %v", rd, err)
			}
			if got := reported(t, bodyOf(t, rd)["token"].(map[string]any), c.key); got != c.want {
				t.Errorf("jwt: got {%s}, want {%s}", got, c.want)
			}
			if got := reported(t, bodyOf(t, rd), "arg"); got != sessionArg {
				t.Errorf("session: got {%s}, want {%s}", got, sessionArg)
			}
		})
	}

	t.Run("proxy", func(t *testing.T) {
		sess, err := strategy.Lookup(ctx, issued.Value)
		if err != nil || sess == nil {
			t.Fatalf("Lookup: %v, %v", sess, err)
		}
		body, err := sess.Auth(ctx, gen)
		if err != nil {
			t.Fatalf("Auth: %v", err)
		}
		if got := reported(t, body, "arg"); got != sessionArg {
			t.Errorf("session: got {%s}, want {%s}", got, sessionArg)
		}
	})
}

// TestDatabaseCallbackArgs pins the session callback's argument objects with the database
// strategy: on a read (newSession undefined; with no data, null), on an update (trigger and
// the data; null data) and on the proxy's read.
func TestDatabaseCallbackArgs(t *testing.T) {
	ctx := context.Background()
	st, u := storeWithUser(t, store.User{Username: "jane", Name: "Jane"})
	gen, strategy := loadArgs(t, "database", st, Options{})
	issued, err := strategy.Issue(ctx, gen, SignIn{User: u.AdapterUser(), UserID: u.ID, HasID: true})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	reads := []struct {
		name string
		u    Update
		want string
	}{
		{"read", Update{Data: script.Undefined}, "session:object,user:object,newSession:undefined"},
		{"read without data", Update{}, "session:object,user:object,newSession:null"},
		{"update", Update{Update: true, Data: map[string]any{"x": 1.0}}, "session:object,user:object,newSession:object,trigger:string"},
		{"update with null", Update{Update: true}, "session:object,user:object,newSession:null,trigger:string"},
		{"update without data", Update{Update: true, Data: script.Undefined}, "session:object,user:object,newSession:undefined,trigger:string"},
	}
	for _, c := range reads {
		t.Run(c.name, func(t *testing.T) {
			rd, err := strategy.Read(ctx, gen, issued.Value, c.u)
			if err != nil || !rd.Active {
				t.Fatalf("Read: %+v, %v", rd, err)
			}
			if got := reported(t, bodyOf(t, rd), "arg"); got != c.want {
				t.Errorf("session: got {%s}, want {%s}", got, c.want)
			}
		})
	}
	t.Run("proxy", func(t *testing.T) {
		sess, err := strategy.Lookup(ctx, issued.Value)
		if err != nil || sess == nil {
			t.Fatalf("Lookup: %v, %v", sess, err)
		}
		body, err := sess.Auth(ctx, gen)
		if err != nil {
			t.Fatalf("Auth: %v", err)
		}
		if got, want := reported(t, body, "arg"), "session:object,user:object,newSession:undefined"; got != want {
			t.Errorf("session: got {%s}, want {%s}", got, want)
		}
	})
}
