// Package reload keeps the gateway's script generation in step with the scripts directory:
// it watches the directory, builds and self-tests a new generation beside the live one,
// and swaps only when the new one is good.
//
// File events are hints, never facts: every reload first compares a content hash of the
// directory (so a burst of events, or an event that changed nothing, costs one cheap scan),
// and a periodic rescan catches what the watcher missed. The directory is watched, not
// single files, so editors that save by rename, `git checkout` and Kubernetes ConfigMap
// volumes (a `..data` symlink swapped atomically) all reload.
//
// This package must never replace a working generation with one that failed to build,
// failed validation or failed its tests, and never close a generation that requests still
// use: a retired generation drains (script.Generation.Retire) and releases its runtimes
// once its last call has finished.
package reload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/callgate/callgate/engine/script"
)

// Target holds the live generation: engine.Engine satisfies it.
type Target interface {
	Generation() *script.Generation
	SetGeneration(*script.Generation)
}

// Recorder is told the outcome of every reload attempt (metrics). Outcomes are "swapped",
// "unchanged" and "failed".
type Recorder interface {
	ReloadDone(outcome string, d time.Duration)
}

// Outcome of one reload attempt.
type Outcome string

// Outcomes.
const (
	Swapped   Outcome = "swapped"
	Unchanged Outcome = "unchanged"
	Failed    Outcome = "failed"
	// Superseded is a build the directory changed under: neither swapped nor reported,
	// since it may have read a file half-written; the change's own events reload again.
	Superseded Outcome = "superseded"
)

// Options configure a Reloader.
type Options struct {
	// Script builds each generation; Script.Dir is the directory watched.
	Script script.Options
	// Target receives the new generations.
	Target Target
	// Watch turns the file watcher (and the periodic rescan) on. Without it only Reload
	// (SIGHUP, the admin command) reloads.
	Watch bool
	// TestOnReload runs the *.test.js / *.test.ts files of the directory against every new
	// generation; a failing test refuses it. When only the tests changed (the bundle is the
	// live one) they run all the same, and a failure is reported as a refused reload.
	TestOnReload bool
	// Debounce is how long the directory must be quiet after an event before a reload;
	// 0 means 10 ms. An editor's save (write a temporary file, rename it over the old one)
	// is a burst well under a millisecond long, and ends with the file complete: after a
	// file is created (renamed into place) a fifth of Debounce is enough (quiet). A build
	// that read a file still being written is caught by the content hash taken again after
	// it (Superseded).
	Debounce time.Duration
	// Rescan is the period of the safety-net scan when watching; 0 means 2 s, negative
	// turns it off.
	Rescan time.Duration
	// Logger receives one line per reload, and the error with file:line:column.
	Logger *slog.Logger
	// Recorder, when set, counts reloads.
	Recorder Recorder
	// Checks, when set, adds other components' health to /-/status under "checks" (for
	// example the store's state); it must answer quickly.
	Checks func(ctx context.Context) map[string]any
	// PublicChecks is Checks for RedactedStatusHandler: the same health without details an
	// anonymous client must not read (a store's error text names hosts and users). nil shows
	// no checks there.
	PublicChecks func(ctx context.Context) map[string]any
}

// ErrorInfo is a refused reload, in the user's own terms.
type ErrorInfo struct {
	At         time.Time `json:"at"`
	Message    string    `json:"message"`
	File       string    `json:"file,omitempty"`
	Line       int       `json:"line,omitempty"`
	Column     int       `json:"column,omitempty"`
	SourceLine string    `json:"source_line,omitempty"`
	Test       string    `json:"test,omitempty"` // the failing test, when a test refused it
	// More counts the problems found beside this one (other files' errors, other config
	// mistakes, other failing tests); `gateway check` lists them all.
	More int `json:"more_errors,omitempty"`
}

// Status is what the status endpoint reports.
type Status struct {
	Hash      string     `json:"hash"`
	LoadedAt  time.Time  `json:"loaded_at"`
	Watching  bool       `json:"watching"`
	Reloads   int        `json:"reloads"`
	Failures  int        `json:"failed_reloads"`
	LastError *ErrorInfo `json:"last_error,omitempty"` // the latest refused reload, until one succeeds
}

// Reloader builds, tests and swaps generations. Reload may be called from any goroutine;
// attempts run one at a time.
type Reloader struct {
	o   Options
	dir string
	log *slog.Logger

	run sync.Mutex // one attempt at a time
	// Guarded by run:
	dirHash string
	// built, when set (tests), runs once a build is ready, before the directory is hashed
	// again.
	built func()

	mu       sync.Mutex
	reloads  int
	failures int
	lastErr  *ErrorInfo
	watching bool
}

// New returns a Reloader for a target already serving its first generation, built from
// the directory as it is now.
func New(o Options) (*Reloader, error) {
	if o.Target == nil || o.Target.Generation() == nil {
		return nil, errors.New("reload: a target serving a generation is required")
	}
	dir, err := filepath.Abs(o.Script.Dir)
	if err != nil {
		return nil, fmt.Errorf("reload: scripts directory: %w", err)
	}
	if o.Debounce <= 0 {
		o.Debounce = 10 * time.Millisecond
	}
	if o.Rescan == 0 {
		o.Rescan = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{o: o, dir: dir, log: o.Logger}
	r.dirHash, _ = hashDir(dir)
	return r, nil
}

// Status reports the live generation and the last refused reload.
func (r *Reloader) Status() Status {
	g := r.o.Target.Generation()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Status{Hash: g.Hash(), LoadedAt: g.LoadedAt(), Watching: r.watching, Reloads: r.reloads, Failures: r.failures}
	if r.lastErr != nil {
		e := *r.lastErr
		s.LastError = &e
	}
	return s
}

// Reload builds a generation from the directory now, tests it and swaps it in. It builds
// even when the directory looks unchanged (an operator asked for it), but swaps only when
// the bundle differs from the live one. A refused generation is returned as the error.
func (r *Reloader) Reload(ctx context.Context) (Outcome, error) {
	return r.attempt(ctx, true, time.Time{})
}

// phases is where the time of one attempt went, for its log line: from the first file
// event of the burst to the attempt (the debounce), the build of the generation (bundle,
// compile, first runtime, validation) and the self-tests.
type phases struct {
	wait, load, tests time.Duration
}

// attempt is one reload. Without force, a directory whose content hash has not changed
// since the last attempt is left alone. since is when the first file event of the burst
// arrived (zero when no event started the attempt).
func (r *Reloader) attempt(ctx context.Context, force bool, since time.Time) (Outcome, error) {
	r.run.Lock()
	defer r.run.Unlock()
	start := time.Now()
	h, herr := hashDir(r.dir)
	if !force && herr == nil && h == r.dirHash {
		return Unchanged, nil
	}
	prev := r.dirHash
	// Remember the hash even when the build fails, so a broken file is reported once, not
	// on every rescan; the next change tries again.
	r.dirHash = h
	var ph phases
	if !since.IsZero() {
		ph.wait = start.Sub(since)
	}
	outcome, err := r.build(ctx, &ph, func() bool {
		if r.built != nil {
			r.built()
		}
		now, err := hashDir(r.dir)
		if err != nil || herr != nil || now == h {
			return false
		}
		if force {
			return false // an operator's reload has no file event to follow it: it stands
		}
		r.dirHash = prev // the next attempt compares with what the live generation came from
		return true
	})
	d := time.Since(start)
	if r.o.Recorder != nil {
		r.o.Recorder.ReloadDone(string(outcome), d)
	}
	r.mu.Lock()
	switch outcome {
	case Swapped:
		r.reloads++
		r.lastErr = nil
	case Unchanged:
		// Built and tested (the unchanged-hash shortcut returned above): the directory is
		// the live generation again, with passing tests, so no refusal stands.
		r.lastErr = nil
	case Failed:
		r.failures++
		r.lastErr = errorInfo(err)
	}
	r.mu.Unlock()
	switch outcome {
	case Superseded:
		r.log.DebugContext(ctx, "scripts changed during the reload; reloading again", "wait", ph.wait.String(), "duration", d.String())
	case Swapped:
		g := r.o.Target.Generation()
		attrs := []any{"generation", g.Hash()[:12], "duration", d.String(), "load", ph.load.String()}
		if r.o.TestOnReload {
			attrs = append(attrs, "tests", ph.tests.String())
		}
		if !since.IsZero() {
			// The debounce is not part of duration (the reload's own work); save→live is
			// wait + duration.
			attrs = append(attrs, "wait", ph.wait.String())
		}
		r.log.InfoContext(ctx, "scripts reloaded", attrs...)
	case Failed:
		r.logFailure(ctx, err)
	}
	return outcome, err
}

// build builds, tests and swaps in a generation. changed reports, once the generation is
// ready, whether the directory changed since the attempt hashed it: the build may then
// have read a file half-written (an editor writing in place, a slow copy) and stands for
// no version anyone saved, so it is dropped, failed or not.
func (r *Reloader) build(ctx context.Context, ph *phases, changed func() bool) (Outcome, error) {
	// The self-tests bundle and run the directory on their own, so they run beside the
	// build instead of after it: on a gateway with a core to spare, save→live is the
	// longer of the two instead of their sum. Their verdict is only read once the build has
	// succeeded, so a broken config is reported as such, not as the tests it breaks.
	var tests chan error
	tctx, cancelTests := context.WithCancel(ctx)
	defer cancelTests()
	if r.o.TestOnReload {
		tests = make(chan error, 1)
		go func() {
			t0 := time.Now()
			err := runTests(tctx, r.o.Script)
			ph.tests = time.Since(t0)
			tests <- err
		}()
	}
	// testsFailed waits for the tests, unless the build has made them moot (cancel).
	testsFailed := func(cancel bool) error {
		if tests == nil {
			return nil
		}
		if cancel {
			cancelTests()
		}
		return <-tests
	}
	t0 := time.Now()
	gen, err := script.Load(ctx, r.o.Script)
	ph.load = time.Since(t0)
	if err != nil {
		_ = testsFailed(true)
		if changed() {
			return Superseded, nil
		}
		return Failed, err
	}
	live := r.o.Target.Generation()
	if gen.Hash() == live.Hash() {
		gen.Close()
		// The bundle is the live one, but a test file may be what changed: its verdict is
		// reported now, on save, not at the next config edit it would then refuse. The
		// live generation stays either way.
		err := testsFailed(false)
		if changed() {
			return Superseded, nil
		}
		if err != nil {
			return Failed, err
		}
		return Unchanged, nil
	}
	err = testsFailed(false)
	if changed() {
		gen.Close()
		return Superseded, nil
	}
	if err != nil {
		gen.Close()
		return Failed, err
	}
	r.o.Target.SetGeneration(gen)
	// Requests that started on the old generation finish on it; it releases its runtimes
	// after the last of them.
	live.Retire()
	return Swapped, nil
}

// TestFailure is a reload refused by a failing test.
type TestFailure struct {
	File, Name string
	Err        *script.Error
	Failed     int // how many tests failed
}

func (e *TestFailure) Error() string {
	return fmt.Sprintf("test %q in %s failed (%d failed in all): %v", e.Name, e.File, e.Failed, e.Err)
}

func (e *TestFailure) Unwrap() error { return e.Err }

func runTests(ctx context.Context, opts script.Options) error {
	results, err := script.RunTests(ctx, opts, nil)
	if err != nil {
		return fmt.Errorf("run tests: %w", err)
	}
	var first *TestFailure
	for _, res := range results {
		if res.Passed() {
			continue
		}
		if first == nil {
			first = &TestFailure{File: res.File, Name: res.Name, Err: res.Err}
		}
		first.Failed++
	}
	if first != nil {
		return first
	}
	return nil
}

func errorInfo(err error) *ErrorInfo {
	info := &ErrorInfo{At: time.Now(), Message: err.Error()}
	var tf *TestFailure
	if errors.As(err, &tf) {
		info.Test = tf.File + " › " + tf.Name
	}
	if tf != nil {
		info.More = tf.Failed - 1
	} else if n := len(script.Errors(err)); n > 1 {
		info.More = n - 1
	}
	var se *script.Error
	if errors.As(err, &se) {
		info.Message = se.Message
		if se.Name != "" && !strings.HasPrefix(se.Message, se.Name) {
			info.Message = se.Name + ": " + se.Message
		}
		info.File, info.Line, info.Column, info.SourceLine = se.File, se.Line, se.Column, se.SourceLine
	}
	return info
}

func (r *Reloader) logFailure(ctx context.Context, err error) {
	info := errorInfo(err)
	attrs := []any{"code", "SCRIPT_RELOAD_REFUSED", "error", info.Message, "live_generation", r.o.Target.Generation().Hash()[:12]}
	if info.File != "" {
		attrs = append(attrs, "at", fmt.Sprintf("%s:%d:%d", info.File, info.Line, info.Column))
	}
	if info.SourceLine != "" {
		attrs = append(attrs, "source", info.SourceLine)
	}
	if info.Test != "" {
		attrs = append(attrs, "test", info.Test)
	}
	if info.More > 0 {
		attrs = append(attrs, "more_errors", info.More)
	}
	r.log.ErrorContext(ctx, "scripts reload refused; the previous generation keeps serving", attrs...)
}

// Run watches the directory until ctx ends (when Options.Watch is set; otherwise it only
// waits). Watcher errors are logged; the rescan keeps reloads working without it.
func (r *Reloader) Run(ctx context.Context) error {
	if !r.o.Watch {
		<-ctx.Done()
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		r.log.WarnContext(ctx, "file watcher unavailable; relying on the periodic rescan", "error", err.Error())
		w = nil
	} else {
		defer w.Close()
		r.syncWatches(w)
	}
	r.mu.Lock()
	r.watching = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.watching = false
		r.mu.Unlock()
	}()

	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	var rescan <-chan time.Time
	if r.o.Rescan > 0 {
		t := time.NewTicker(r.o.Rescan)
		defer t.Stop()
		rescan = t.C
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	var burst time.Time // the first event since the last attempt
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Op == fsnotify.Chmod {
				continue // touch, chmod: content did not change
			}
			if burst.IsZero() {
				burst = time.Now()
			}
			debounce.Reset(r.quiet(ev))
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			r.log.WarnContext(ctx, "file watcher error", "error", err.Error())
		case <-debounce.C:
			since := burst
			burst = time.Time{}
			_, _ = r.attempt(ctx, false, since)
			if w != nil {
				r.syncWatches(w)
			}
		case <-rescan:
			_, _ = r.attempt(ctx, false, time.Time{})
			if w != nil {
				r.syncWatches(w)
			}
		}
	}
}

// quiet is how long the directory must stay quiet after ev before a reload. A name
// created is most often a file renamed into place, the last step of an editor's atomic
// save (write a temporary file, rename it over the old one), complete the moment it
// appears: a fifth of the debounce is enough to gather what else the same save does. A
// file created empty is written next, and that write waits the full debounce again; so
// does every other event, since a file written in place may be written in several steps.
func (r *Reloader) quiet(ev fsnotify.Event) time.Duration {
	if ev.Op == fsnotify.Create {
		return r.o.Debounce / 5
	}
	return r.o.Debounce
}

// syncWatches watches the directory and every visible subdirectory (symlinks followed),
// so directories created or swapped in since the last time are watched too.
func (r *Reloader) syncWatches(w *fsnotify.Watcher) {
	have := map[string]bool{}
	for _, p := range w.WatchList() {
		have[p] = true
	}
	want := map[string]bool{r.dir: true}
	_ = walk(r.dir, "", 0, func(rel string, isDir bool, _ string) error {
		if isDir {
			want[filepath.Join(r.dir, rel)] = true
		}
		return nil
	})
	for p := range want {
		if !have[p] {
			if err := w.Add(p); err != nil {
				r.log.Debug("watch directory", "dir", p, "error", err.Error())
			}
		}
	}
	for p := range have {
		if !want[p] {
			_ = w.Remove(p)
		}
	}
}

// maxWalkDepth bounds directory recursion (symlink loops).
const maxWalkDepth = 8

// walk visits the visible entries of dir, following symlinks: hidden names (.git, editor
// swap files, Kubernetes' ..data and ..<timestamp> directories, reached instead through
// the visible symlinks that point into them), node_modules and backup files ending in ~
// are skipped. visit gets the path relative to root and the resolved path.
func walk(root, rel string, depth int, visit func(rel string, isDir bool, abs string) error) error {
	if depth > maxWalkDepth {
		return nil
	}
	entries, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || name == "node_modules" || strings.HasSuffix(name, "~") {
			continue
		}
		p := filepath.Join(rel, name)
		abs := filepath.Join(root, p)
		st, err := os.Stat(abs)
		if err != nil {
			continue // a dangling symlink, or a file removed meanwhile
		}
		if st.IsDir() {
			if err := visit(p, true, abs); err != nil {
				return err
			}
			if err := walk(root, p, depth+1, visit); err != nil {
				return err
			}
			continue
		}
		if st.Mode().IsRegular() {
			if err := visit(p, false, abs); err != nil {
				return err
			}
		}
	}
	return nil
}

// hashDir is a content hash of every visible file of the directory: names and bytes.
func hashDir(dir string) (string, error) {
	type file struct{ rel, abs string }
	var files []file
	if err := walk(dir, "", 0, func(rel string, isDir bool, abs string) error {
		if !isDir {
			files = append(files, file{filepath.ToSlash(rel), abs})
		}
		return nil
	}); err != nil {
		return "", fmt.Errorf("scan %s: %w", dir, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00", f.rel)
		fh, err := os.Open(f.abs)
		if err != nil {
			fmt.Fprintf(h, "unreadable\x00")
			continue
		}
		n, _ := io.Copy(h, fh)
		fh.Close()
		fmt.Fprintf(h, "\x00%d\x00", n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
