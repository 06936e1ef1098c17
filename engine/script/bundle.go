package script

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
	"github.com/go-sourcemap/sourcemap"
)

// bundleName is the name the compiled program carries. Source positions that the source map
// cannot place (the wrapper around the bundle) are reported against it.
const bundleName = "callgate-bundle.js"

// builtinNamespace is the esbuild namespace of the virtual modules backed by Go. Their
// source-map names ("callgate:bcryptjs") tell host frames apart from user frames.
const builtinNamespace = "callgate"

// bridgeGlobal is the global through which the virtual modules pick up their Go-backed
// objects while the program runs for the first time in a runtime. It is deleted right after,
// so user code cannot reach it from a callback.
const bridgeGlobal = "__callgate_builtins"

// builtinModules are the only bare imports a script may use.
var builtinModules = map[string]string{
	"callgate/providers/credentials": `export default function Credentials(options) {
  const o = options ?? {};
  return { id: "credentials", name: "Credentials", type: "credentials", credentials: {}, ...o, options: o };
}
`,
	"callgate/providers/passkey": `export default function Passkey(options) {
  return { id: "passkey", name: "Passkey", type: "passkey", ...(options ?? {}) };
}
`,
	"callgate/crypto": `const c = globalThis.` + bridgeGlobal + `.crypto;
export const randomBytes = c.randomBytes, randomUUID = c.randomUUID, sha256 = c.sha256, hmac = c.hmac,
  timingSafeEqual = c.timingSafeEqual;
export default c;
`,
	// NextAuth's Email provider without its nodemailer default: the gateway sends through
	// SMTP itself unless the options bring a sendVerificationRequest (email_provider.go).
	"callgate/providers/email": `export default function Email(options) {
  const o = options ?? {};
  return { id: "email", type: "email", name: "Email", from: "NextAuth <no-reply@example.com>", maxAge: 24 * 60 * 60, ...o, options: o };
}
`,
	"bcryptjs": `const b = globalThis.` + bridgeGlobal + `.bcrypt;
export const compare = b.compare, compareSync = b.compareSync, hash = b.hash, hashSync = b.hashSync,
  genSalt = b.genSalt, genSaltSync = b.genSaltSync, getRounds = b.getRounds, getSalt = b.getSalt;
export default b;
`,
	"callgate/store": `const s = globalThis.` + bridgeGlobal + `.store;
export const users = s.users, factors = s.factors;
export default s;
`,
	// The test API; importing it outside `gateway test` throws at load.
	"callgate/test": testModuleSource,
}

// builtinList names builtinModules and the provider modules of engine/oauth/presets, for
// error messages.
const builtinList = `"callgate/providers/credentials", "callgate/providers/email", "callgate/providers/passkey", "callgate/providers/oauth", "callgate/providers/oidc", "callgate/providers/<preset>" (github, google, azure-ad, microsoft-entra-id, gitlab, keycloak, auth0), "bcryptjs", "callgate/crypto", "callgate/store", "callgate/test" (tests only)`

// goSupported lowers what goja cannot run. goja has classes (with private members and static
// blocks), arrows, destructuring, spread, async/await, optional chaining, nullish coalescing
// and logical assignment, but no async generators, no for-await and no regexp /d flag.
var goSupported = map[string]bool{
	"async-generator":      false,
	"for-await":            false,
	"regexp-match-indices": false,
	"top-level-await":      false,
	"dynamic-import":       false,
}

// resolveMarker tags the plugin's own nested build.Resolve calls, which must reach
// esbuild's resolver instead of the plugin again.
type resolveMarker struct{}

// bundle is the output of one build: the script, its source map, and where things came from.
type bundle struct {
	code    string
	hash    string
	entry   string            // entry file relative to the scripts directory
	sources map[string]string // source-map source name → content
	srcMap  []byte            // the source map as JSON
}

// buildBundle bundles the entry in dir (already symlink-resolved and absolute) into one script
// whose completion value is the entry module's exports object.
func buildBundle(dir, entry string) (*bundle, error) {
	entryAbs := filepath.Join(dir, entry)
	if err := insideDir(dir, entryAbs); err != nil {
		return nil, &Error{Kind: KindThrown, Message: fmt.Sprintf("entry %s: %v", entry, err), File: entry}
	}
	tsconfig, err := scriptsTsconfig(dir)
	if err != nil {
		return nil, err
	}
	plugin := api.Plugin{
		Name: "callgate",
		Setup: func(build api.PluginBuild) {
			build.OnResolve(api.OnResolveOptions{Filter: ".*"}, func(args api.OnResolveArgs) (api.OnResolveResult, error) {
				if _, nested := args.PluginData.(resolveMarker); nested {
					return api.OnResolveResult{}, nil // our own nested Resolve: let esbuild do it
				}
				if args.Kind == api.ResolveEntryPoint {
					return api.OnResolveResult{Path: entryAbs}, nil
				}
				if _, ok := moduleSource(args.Path); ok {
					return api.OnResolveResult{Path: args.Path, Namespace: builtinNamespace}, nil
				}
				if args.Namespace == builtinNamespace {
					return api.OnResolveResult{}, fmt.Errorf("built-in module cannot import %q", args.Path)
				}
				// A bare import is a file only through the paths of the scripts' tsconfig.json.
				bare := !strings.HasPrefix(args.Path, "./") && !strings.HasPrefix(args.Path, "../")
				if bare && (tsconfig == "" || strings.HasPrefix(args.Path, "/")) {
					return api.OnResolveResult{}, bareImportError(args.Path)
				}
				res := build.Resolve(args.Path, api.ResolveOptions{
					Importer: args.Importer, Namespace: args.Namespace, ResolveDir: args.ResolveDir,
					Kind: args.Kind, PluginData: resolveMarker{},
				})
				if bare && (len(res.Errors) > 0 || inNodeModules(res.Path)) {
					return api.OnResolveResult{}, bareImportError(args.Path)
				}
				if len(res.Errors) > 0 {
					return api.OnResolveResult{}, fmt.Errorf("cannot resolve %q: %s", args.Path, res.Errors[0].Text)
				}
				if res.Namespace != "file" {
					return api.OnResolveResult{}, fmt.Errorf("import %q is not a file", args.Path)
				}
				if err := insideDir(dir, res.Path); err != nil {
					return api.OnResolveResult{}, fmt.Errorf("import %q is not allowed: %w", args.Path, err)
				}
				return api.OnResolveResult{Path: res.Path, Namespace: "file"}, nil
			})
			build.OnLoad(api.OnLoadOptions{Filter: ".*", Namespace: builtinNamespace}, func(args api.OnLoadArgs) (api.OnLoadResult, error) {
				src, _ := moduleSource(args.Path)
				return api.OnLoadResult{Contents: &src, Loader: api.LoaderJS}, nil
			})
		},
	}
	res := api.Build(api.BuildOptions{
		EntryPoints:    []string{entry},
		AbsWorkingDir:  dir,
		Outfile:        filepath.Join(dir, bundleName),
		Bundle:         true,
		Write:          false,
		Format:         api.FormatCommonJS,
		Platform:       api.PlatformNeutral,
		Target:         api.ES2022,
		Supported:      goSupported,
		Sourcemap:      api.SourceMapInlineAndExternal,
		SourcesContent: api.SourcesContentInclude,
		Charset:        api.CharsetUTF8,
		LogLevel:       api.LogLevelSilent,
		// An explicit tsconfig stops esbuild from reading tsconfig.json files above the
		// scripts directory (their "paths" could map imports elsewhere): the scripts
		// directory's own, or none. Where its paths lead is confined like any import.
		Tsconfig:    tsconfig,
		TsconfigRaw: tsconfigRaw(tsconfig),
		// The CommonJS bundle runs inside a function so that its top-level declarations do
		// not become globals; the completion value of the program is module.exports.
		Banner:  map[string]string{"js": "(function () {\nvar module = { exports: {} }, exports = module.exports;"},
		Footer:  map[string]string{"js": "return module.exports;\n})()"},
		Plugins: []api.Plugin{plugin},
	})
	if len(res.Errors) > 0 {
		return nil, esbuildError(res.Errors)
	}
	b := &bundle{entry: filepath.ToSlash(entry)}
	var sourceMap []byte
	for _, f := range res.OutputFiles {
		if strings.HasSuffix(f.Path, ".map") {
			sourceMap = f.Contents
		} else {
			b.code = string(f.Contents)
		}
	}
	if b.code == "" {
		return nil, &Error{Kind: KindInternal, Message: "bundler produced no output"}
	}
	sum := sha256.Sum256([]byte(b.code))
	b.hash = hex.EncodeToString(sum[:])
	b.srcMap = sourceMap
	var sm struct {
		Sources        []string `json:"sources"`
		SourcesContent []string `json:"sourcesContent"`
	}
	if err := json.Unmarshal(sourceMap, &sm); err != nil {
		return nil, &Error{Kind: KindInternal, Message: "read source map", Err: err}
	}
	b.sources = make(map[string]string, len(sm.Sources))
	for i, s := range sm.Sources {
		if i < len(sm.SourcesContent) {
			b.sources[s] = sm.SourcesContent[i]
		}
	}
	return b, nil
}

// insideDir reports an error unless path, with every symlink resolved, lies inside dir
// (dir itself must already be resolved).
func insideDir(dir, path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", filepath.Base(path), err)
	}
	rel, err := filepath.Rel(dir, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return errors.New("it resolves outside the scripts directory")
	}
	return nil
}

// esbuildError turns every bundler error into an *Error pointing into the user's file and
// joins them: esbuild reports the problems of all files at once (a file that does not parse
// still stops its own imports from being followed).
func esbuildError(msgs []api.Message) error {
	errs := make([]error, 0, len(msgs))
	for _, m := range msgs {
		e := &Error{Kind: KindThrown, Name: "SyntaxError", Message: m.Text, bundler: true}
		if m.PluginName != "" {
			e.Name = "ImportError"
		}
		if l := m.Location; l != nil {
			e.File = filepath.ToSlash(l.File)
			e.Line = l.Line
			e.Column = l.Column + 1
			e.SourceLine = l.LineText
		}
		errs = append(errs, e)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// mapPosition maps a 1-based line and column of the bundle to the user's source. It returns
// the bundle itself when the position is not mapped.
func (b *bundle) mapPosition(line, col int) (string, int, int) {
	sm, err := sourcemap.Parse(bundleName, b.srcMap)
	if err == nil {
		if file, _, l, c, ok := sm.Source(line, col-1); ok {
			return file, l, c + 1
		}
	}
	return bundleName, line, col
}

// sourceLine returns line n (1-based) of a source file in the bundle, or "".
func (b *bundle) sourceLine(file string, n int) string {
	src, ok := b.sources[file]
	if !ok || n < 1 {
		return ""
	}
	for i := 1; ; i++ {
		j := strings.IndexByte(src, '\n')
		if i == n {
			if j < 0 {
				return strings.TrimRight(src, "\r")
			}
			return strings.TrimRight(src[:j], "\r")
		}
		if j < 0 {
			return ""
		}
		src = src[j+1:]
	}
}

// findDefaultExport locates the auth config in the entry source, so configuration errors
// can point somewhere useful: `export default`, else where a NextAuth route file has it
// (`export const authOptions`, `NextAuth(`). It returns 0, 0 when there is none.
func (b *bundle) findDefaultExport() (line, col int) {
	src := b.sources[b.entry]
	i := -1
	for _, mark := range []string{"export default", "export const authOptions", "NextAuth("} {
		if i = strings.Index(src, mark); i >= 0 {
			break
		}
	}
	if i < 0 {
		return 0, 0
	}
	line = 1 + bytes.Count([]byte(src[:i]), []byte("\n"))
	col = i - strings.LastIndexByte(src[:i], '\n')
	return line, col
}

// findPath locates a config option by its path of keys (`session`, `strategy`) in the
// user's sources, the entry first: each key (`key:`, `key(` or `"key":`) is looked for after
// the one before it, and the deepest found is returned. It is for a problem the runtime can
// name but not place; without a match it returns the entry's default export.
func (b *bundle) findPath(keys ...string) (file string, line, col int) {
	names := make([]string, 0, len(b.sources))
	for n := range b.sources {
		if n != b.entry && !strings.HasPrefix(n, builtinNamespace+":") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range append([]string{b.entry}, names...) {
		src, from, at := b.sources[n], 0, -1
		for _, k := range keys {
			if k == "" {
				break
			}
			re := regexp.MustCompile(`(^|[^\w$.])["']?` + regexp.QuoteMeta(k) + `["']?\s*[:(]`)
			loc := re.FindStringSubmatchIndex(src[from:])
			if loc == nil {
				break
			}
			at = from + loc[3] // after the character before the key
			from = at + len(k)
		}
		if at >= 0 {
			return n, 1 + strings.Count(src[:at], "\n"), at - strings.LastIndexByte(src[:at], '\n')
		}
	}
	line, col = b.findDefaultExport()
	return b.entry, line, col
}

// optionPath is the path of keys an option's name spells ("session.maxAge",
// "callbacks.jwt"), up to its first index: after "providers[1]" a key could be any
// provider's, so the path stops at "providers".
var optionPath = regexp.MustCompile(`^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*`)

func keysOf(name string) []string {
	return strings.Split(optionPath.FindString(name), ".")
}

// readable reports whether the scripts directory has the file (used to pick the entry).
func readable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
