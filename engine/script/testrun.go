package script

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
	"golang.org/x/crypto/bcrypt"

	"github.com/callgate/callgate/store"
)

//go:embed builtin/test.js
var testModuleSource string

// TestResult is the outcome of one test of a *.test.js / *.test.ts file.
type TestResult struct {
	File string // relative to the scripts directory, slash-separated
	Name string // "describe › test"; "(load)" when the file could not run at all
	Err  *Error // nil when the test passed
	// Errs is every problem of a "(load)" failure (a file with several bundler errors);
	// Err is the first of them.
	Errs     []*Error
	Duration time.Duration
}

// Passed reports whether the test passed.
func (r TestResult) Passed() bool { return r.Err == nil }

// IsTestFile reports whether a file name is a callback test.
func IsTestFile(name string) bool {
	return strings.HasSuffix(name, ".test.js") || strings.HasSuffix(name, ".test.ts")
}

// FindTests lists the test files under dir, relative and sorted. Hidden directories
// (.git, Kubernetes' ..data) and node_modules are skipped.
func FindTests(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != dir && (strings.HasPrefix(name, ".") || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if IsTestFile(name) && !strings.HasPrefix(name, ".") {
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find tests in %s: %w", dir, err)
	}
	sort.Strings(out)
	return out, nil
}

// RunTests runs every test file in opts.Dir, each in a fresh runtime with the same host
// APIs and limits as the gateway's callbacks (each test has the callback deadline). report,
// when set, sees each result as it finishes. A file that does not bundle or throws at load
// is one failed result named "(load)". The error is for a directory that cannot be read.
func RunTests(ctx context.Context, opts Options, report func(TestResult)) ([]TestResult, error) {
	dir, err := filepath.Abs(opts.Dir)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("scripts directory %q: %w", opts.Dir, err)
	}
	files, err := FindTests(dir)
	if err != nil {
		return nil, err
	}
	var out []TestResult
	emit := func(r TestResult) {
		out = append(out, r)
		if report != nil {
			report(r)
		}
	}
	for _, f := range files {
		runTestFile(ctx, dir, f, opts, emit)
	}
	return out, nil
}

// registeredTest is one test() call of the runtime in use.
type registeredTest struct {
	name string
	fn   goja.Callable
}

// testRegistry is the Go side of callgate/test for one test file.
type testRegistry struct {
	tests []registeredTest
	users memUsers
}

func runTestFile(ctx context.Context, dir, file string, opts Options, emit func(TestResult)) {
	start := time.Now()
	loadFailed := func(err error) {
		errs := Errors(err)
		if len(errs) == 0 {
			errs = []*Error{{Kind: KindInternal, Message: err.Error(), Err: err}}
		}
		emit(TestResult{File: file, Name: "(load)", Err: errs[0], Errs: errs, Duration: time.Since(start)})
	}
	defer func() {
		if r := recover(); r != nil {
			loadFailed(fmt.Errorf("host panic: %v", r))
		}
	}()
	b, err := buildBundle(dir, filepath.FromSlash(file))
	if err != nil {
		loadFailed(err)
		return
	}
	g := newGeneration(b, opts)
	g.testing = &testRegistry{}
	g.users = &g.testing.users
	// A test sees only the users it mocks, so it must not read the live store's factors
	// either (a self-test during a reload runs with the serving options).
	g.factors = nil
	if g.program, err = compile(b); err != nil {
		loadFailed(err)
		return
	}
	// fresh starts a runtime: running the file registers its tests again, in the same order.
	fresh := func() (*vm, error) {
		g.testing.tests = nil
		v, _, err := g.newVM(ctx, nil, func(*vm) error { return nil })
		return v, err
	}
	v, err := fresh()
	if err != nil {
		loadFailed(err)
		return
	}
	if len(g.testing.tests) == 0 {
		loadFailed(&Error{Kind: KindThrown, Message: "the file defines no test (call test(name, fn) from callgate/test)", File: file})
		return
	}
	defer func() {
		if v != nil {
			v.stop()
		}
	}()
	for i := 0; i < len(g.testing.tests); i++ {
		if v == nil {
			if v, err = fresh(); err != nil {
				loadFailed(err)
				return
			}
		}
		t := g.testing.tests[i]
		began := time.Now()
		// On the runtime's goroutine, like a callback: a test stuck where the deadline's
		// interrupt cannot reach fails instead of hanging the run.
		abandoned, err := v.exec(job{ctx: ctx, name: "test", start: time.Now(), timeout: g.timeout("test"), f: func() (goja.Value, error) {
			return t.fn(goja.Undefined())
		}, use: func(goja.Value) error { return nil }})
		res := TestResult{File: file, Name: t.name, Duration: time.Since(began)}
		if err != nil {
			se := &Error{Kind: KindInternal, Message: err.Error(), Err: err}
			errors.As(err, &se)
			res.Err = se
			if se.Kind != KindThrown {
				// An interrupted or overflowed runtime is not reused, in tests either.
				if !abandoned {
					v.stop()
				}
				v = nil
			}
		}
		if v != nil {
			v.broken = false
		}
		emit(res)
	}
}

// testModule is the bridge object behind callgate/test.
func (v *vm) testModule() *goja.Object {
	reg := v.gen.testing
	m := v.rt.NewObject()
	_ = m.Set("register", func(name string, fn goja.Value) {
		f, ok := goja.AssertFunction(fn)
		if !ok {
			v.throw("TypeError", "test: fn must be a function")
		}
		reg.tests = append(reg.tests, registeredTest{name: name, fn: f})
	})
	_ = m.Set("setUsers", func(list goja.Value) {
		raw, err := v.exportJSON(list)
		if err != nil {
			v.throw("TypeError", "mockUsers: "+err.Error())
		}
		items, ok := raw.([]any)
		if !ok {
			v.throw("TypeError", "mockUsers: the argument must be an array of users")
		}
		users := make([]store.User, 0, len(items))
		for i, it := range items {
			o, _ := it.(map[string]any)
			s := func(k string) string { x, _ := o[k].(string); return x }
			u := store.User{ID: s("id"), Username: s("username"), Email: s("email"), Name: s("name"), Role: s("role")}
			if u.ID == "" {
				u.ID = s("_id")
			}
			if u.ID == "" {
				u.ID = fmt.Sprintf("user-%d", i+1)
			}
			if p := s("password"); p != "" {
				h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
				if err != nil {
					v.throw("Error", "mockUsers: hash password: "+err.Error())
				}
				u.PasswordHash = string(h)
			}
			users = append(users, u)
		}
		reg.users.set(users)
	})
	return m
}

// memUsers is the user store of a test file: what mockUsers set, read-only for scripts.
type memUsers struct {
	mu    sync.Mutex
	users []store.User
}

var errTestStore = errors.New("not available in tests: only users.findOne is")

func (m *memUsers) set(u []store.User) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users = u
}

func (m *memUsers) FindUser(_ context.Context, q store.UserQuery) (store.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.users {
		if (q.ID == "" || q.ID == u.ID) && (q.Username == "" || q.Username == u.Username) && (q.Email == "" || q.Email == u.Email) {
			return u, nil
		}
	}
	return store.User{}, store.ErrNotFound
}

func (m *memUsers) CreateUser(context.Context, store.User) (store.User, error) {
	return store.User{}, errTestStore
}
func (m *memUsers) UpdateUser(context.Context, string, store.UserPatch) (store.User, error) {
	return store.User{}, errTestStore
}
func (m *memUsers) ImportUsers(context.Context, []store.User) error   { return errTestStore }
func (m *memUsers) ListUsers(context.Context) ([]store.User, error)   { return nil, errTestStore }
func (m *memUsers) DeleteUser(context.Context, store.UserQuery) error { return errTestStore }
func (m *memUsers) CountUsers(context.Context) (int, error)           { return 0, errTestStore }
