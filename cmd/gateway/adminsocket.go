package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/callgate/callgate/store"
)

// The admin socket lets `gateway users` and `gateway sessions` manage a running gateway's
// embedded store, which only one process may hold open (bbolt's file lock): a Unix socket
// in the data directory, mode 0600, so only the user the gateway runs as can reach it. It
// carries the store operations those commands need, as JSON over HTTP; the commands use it
// when a gateway answers on it and open the store themselves when none does.
//
// A Redis store needs no socket: every process opens it, and revocations reach every
// replica through its announcements.

// adminSocketName is the socket's file name in the data directory.
const adminSocketName = "callgate.sock"

// adminBodyLimit bounds a request to the socket: a users import of some 50,000 records.
const adminBodyLimit = 64 << 20

// cliStore is what the users and sessions commands need of a store: the store itself, or
// a running gateway's, through its admin socket (socketStore).
type cliStore interface {
	store.Users
	ListSessions(ctx context.Context, userID string) ([]store.Session, error)
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
	Revoke(ctx context.Context, r store.Revocation) error
	Close() error
}

// adminOp is one store operation the socket serves: its arguments decoded from the
// request, its result encoded into the answer.
type adminOp func(ctx context.Context, st cliStore, args json.RawMessage) (any, error)

// adminOps are the operations, by name. Each decodes exactly the arguments its store
// method takes.
var adminOps = map[string]adminOp{
	"FindUser": func(ctx context.Context, st cliStore, args json.RawMessage) (any, error) {
		var q store.UserQuery
		if err := decodeArgs(args, &q); err != nil {
			return nil, err
		}
		return st.FindUser(ctx, q)
	},
	"ListUsers": func(ctx context.Context, st cliStore, _ json.RawMessage) (any, error) {
		return st.ListUsers(ctx)
	},
	"CountUsers": func(ctx context.Context, st cliStore, _ json.RawMessage) (any, error) {
		return st.CountUsers(ctx)
	},
	"CreateUser": func(ctx context.Context, st cliStore, args json.RawMessage) (any, error) {
		var u store.User
		if err := decodeArgs(args, &u); err != nil {
			return nil, err
		}
		return st.CreateUser(ctx, u)
	},
	"ImportUsers": func(ctx context.Context, st cliStore, args json.RawMessage) (any, error) {
		var users []store.User
		if err := decodeArgs(args, &users); err != nil {
			return nil, err
		}
		return nil, st.ImportUsers(ctx, users)
	},
	"UpdateUser": func(ctx context.Context, st cliStore, args json.RawMessage) (any, error) {
		var a updateArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		return st.UpdateUser(ctx, a.ID, a.Patch)
	},
	"DeleteUser": func(ctx context.Context, st cliStore, args json.RawMessage) (any, error) {
		var q store.UserQuery
		if err := decodeArgs(args, &q); err != nil {
			return nil, err
		}
		return nil, st.DeleteUser(ctx, q)
	},
	"ListSessions": func(ctx context.Context, st cliStore, args json.RawMessage) (any, error) {
		var userID string
		if err := decodeArgs(args, &userID); err != nil {
			return nil, err
		}
		return st.ListSessions(ctx, userID)
	},
	"DeleteUserSessions": func(ctx context.Context, st cliStore, args json.RawMessage) (any, error) {
		var userID string
		if err := decodeArgs(args, &userID); err != nil {
			return nil, err
		}
		return st.DeleteUserSessions(ctx, userID)
	},
	"Revoke": func(ctx context.Context, st cliStore, args json.RawMessage) (any, error) {
		var r store.Revocation
		if err := decodeArgs(args, &r); err != nil {
			return nil, err
		}
		return nil, st.Revoke(ctx, r)
	},
}

// updateArgs are UpdateUser's arguments on the socket.
type updateArgs struct {
	ID    string          `json:"id"`
	Patch store.UserPatch `json:"patch"`
}

// errBadAdminRequest marks a request the socket could not read.
var errBadAdminRequest = errors.New("bad admin request")

func decodeArgs(args json.RawMessage, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(args)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: arguments: %w", errBadAdminRequest, err)
	}
	return nil
}

// adminAnswer is the socket's answer: the result, or the error with the kind the client
// turns back into the store's sentinel (errors.Is works across the socket).
type adminAnswer struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *adminError     `json:"error,omitempty"`
}

type adminError struct {
	Kind    string `json:"kind"` // not_found, duplicate, unavailable, conflict, bad_request, error
	Message string `json:"message"`
}

// errorKinds pairs the store's sentinels with their names on the wire.
var errorKinds = []struct {
	kind string
	err  error
}{
	{"not_found", store.ErrNotFound},
	{"duplicate", store.ErrDuplicate},
	{"unavailable", store.ErrUnavailable},
	{"conflict", store.ErrConflict},
	{"bad_request", errBadAdminRequest},
}

// adminSocketHandler serves POST /v1/{op} on st.
func adminSocketHandler(st cliStore, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/{op}", func(w http.ResponseWriter, r *http.Request) {
		op, ok := adminOps[r.PathValue("op")]
		if !ok {
			writeAdminAnswer(w, http.StatusNotFound, adminAnswer{Error: &adminError{Kind: "bad_request", Message: "unknown operation " + r.PathValue("op")}})
			return
		}
		args, err := io.ReadAll(http.MaxBytesReader(w, r.Body, adminBodyLimit))
		if err != nil {
			writeAdminAnswer(w, http.StatusRequestEntityTooLarge, adminAnswer{Error: &adminError{Kind: "bad_request", Message: err.Error()}})
			return
		}
		if len(args) == 0 {
			args = []byte("null")
		}
		res, err := op(r.Context(), st, args)
		if err != nil {
			kind := "error"
			for _, k := range errorKinds {
				if errors.Is(err, k.err) {
					kind = k.kind
					break
				}
			}
			logger.InfoContext(r.Context(), "admin socket operation failed", "code", "ADMIN_SOCKET", "op", r.PathValue("op"), "error", err.Error())
			writeAdminAnswer(w, http.StatusOK, adminAnswer{Error: &adminError{Kind: kind, Message: err.Error()}})
			return
		}
		b, err := json.Marshal(res)
		if err != nil {
			writeAdminAnswer(w, http.StatusInternalServerError, adminAnswer{Error: &adminError{Kind: "error", Message: "encode the result: " + err.Error()}})
			return
		}
		logger.InfoContext(r.Context(), "admin socket operation", "code", "ADMIN_SOCKET", "op", r.PathValue("op"))
		writeAdminAnswer(w, http.StatusOK, adminAnswer{Result: b})
	})
	return mux
}

func writeAdminAnswer(w http.ResponseWriter, status int, a adminAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(a)
}

// listenAdminSocket binds the socket in dataDir, replacing a stale one (a file nobody
// answers on: a gateway that was killed), and refusing when another gateway answers.
func listenAdminSocket(dataDir string) (net.Listener, error) {
	path := filepath.Join(dataDir, adminSocketName)
	if _, err := os.Lstat(path); err == nil {
		if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
			conn.Close()
			return nil, fmt.Errorf("admin socket %s: another gateway is serving it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("admin socket %s: remove the stale socket: %w", path, err)
		}
	}
	// The data directory is 0700; the socket is made 0600 before anyone is told of it.
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	return ln, nil
}

// sameUserListener accepts only connections from this process's user or root (the
// kernel's peer credentials): the socket's mode already keeps others out, and this closes
// the moment between binding the socket and making it 0600, and any mistake in the data
// directory's permissions.
type sameUserListener struct {
	net.Listener
	log *slog.Logger
}

func (l sameUserListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if errors.Is(err, errors.ErrUnsupported) || (err == nil && (uid == os.Getuid() || uid == 0)) {
			return c, nil
		}
		l.log.Warn("admin socket connection refused: another user", "code", "ADMIN_SOCKET", "peer_uid", uid, "error", fmt.Sprint(err))
		c.Close()
	}
}

// adminSocketComponent serves the admin socket of an embedded store for serve's lifecycle.
func adminSocketComponent(dataDir string, st cliStore, logger *slog.Logger) component {
	var ln net.Listener
	srv := &http.Server{Handler: adminSocketHandler(st, logger), ReadHeaderTimeout: 10 * time.Second}
	return component{
		name: "admin socket",
		start: func(context.Context) error {
			var err error
			ln, err = listenAdminSocket(dataDir)
			return err
		},
		run: func(ctx context.Context) error {
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(sameUserListener{Listener: ln, log: logger}) }()
			select {
			case err := <-errc:
				return fmt.Errorf("admin socket: %w", err)
			case <-ctx.Done():
			}
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdownCtx) // closes the listener, which removes the socket file
			<-errc
			return nil
		},
	}
}

// socketStore is a running gateway's store, reached through its admin socket.
type socketStore struct {
	path   string
	client *http.Client
}

// dialAdminSocket returns the store of the gateway serving dataDir's admin socket, or
// false when none answers there.
func dialAdminSocket(dataDir string) (*socketStore, bool) {
	path := filepath.Join(dataDir, adminSocketName)
	// Only a socket this user (or root) made is a gateway of ours: a command sends it
	// password hashes, and a data directory others can write to must not lure them away.
	info, err := os.Lstat(path)
	if err != nil || info.Mode()&os.ModeSocket == 0 {
		return nil, false
	}
	if owner, known := fileOwner(info); known && owner != os.Getuid() && owner != 0 {
		return nil, false
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, false
	}
	conn.Close()
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	return &socketStore{path: path, client: &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		}},
	}}, true
}

// call runs op with args on the gateway and decodes its result into out (when not nil).
func (s *socketStore) call(ctx context.Context, op string, args, out any) error {
	body, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://gateway/v1/"+op, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	res, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s through the running gateway (%s): %w", op, s.path, err)
	}
	defer res.Body.Close()
	var a adminAnswer
	if err := json.NewDecoder(res.Body).Decode(&a); err != nil {
		return fmt.Errorf("%s through the running gateway: read the answer (HTTP %d): %w", op, res.StatusCode, err)
	}
	if a.Error != nil {
		for _, k := range errorKinds {
			if k.kind == a.Error.Kind {
				return fmt.Errorf("%w (the running gateway said: %s)", k.err, a.Error.Message)
			}
		}
		return errors.New(a.Error.Message)
	}
	if out != nil && len(a.Result) > 0 {
		if err := json.Unmarshal(a.Result, out); err != nil {
			return fmt.Errorf("%s through the running gateway: decode the result: %w", op, err)
		}
	}
	return nil
}

func (s *socketStore) FindUser(ctx context.Context, q store.UserQuery) (u store.User, err error) {
	return u, s.call(ctx, "FindUser", q, &u)
}

func (s *socketStore) ListUsers(ctx context.Context) (us []store.User, err error) {
	return us, s.call(ctx, "ListUsers", nil, &us)
}

func (s *socketStore) CountUsers(ctx context.Context) (n int, err error) {
	return n, s.call(ctx, "CountUsers", nil, &n)
}

func (s *socketStore) CreateUser(ctx context.Context, u store.User) (out store.User, err error) {
	return out, s.call(ctx, "CreateUser", u, &out)
}

func (s *socketStore) ImportUsers(ctx context.Context, users []store.User) error {
	return s.call(ctx, "ImportUsers", users, nil)
}

func (s *socketStore) UpdateUser(ctx context.Context, id string, p store.UserPatch) (u store.User, err error) {
	return u, s.call(ctx, "UpdateUser", updateArgs{ID: id, Patch: p}, &u)
}

func (s *socketStore) DeleteUser(ctx context.Context, q store.UserQuery) error {
	return s.call(ctx, "DeleteUser", q, nil)
}

func (s *socketStore) ListSessions(ctx context.Context, userID string) (list []store.Session, err error) {
	return list, s.call(ctx, "ListSessions", userID, &list)
}

func (s *socketStore) DeleteUserSessions(ctx context.Context, userID string) (n int, err error) {
	return n, s.call(ctx, "DeleteUserSessions", userID, &n)
}

func (s *socketStore) Revoke(ctx context.Context, r store.Revocation) error {
	return s.call(ctx, "Revoke", r, nil)
}

func (s *socketStore) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
