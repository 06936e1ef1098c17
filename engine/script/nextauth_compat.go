package script

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/dop251/goja"
)

// A NextAuth v4 route file (app/api/auth/[...nextauth]/route.ts) runs here as it is: its
// imports of "next-auth" and "next-auth/providers/*" resolve to the built-in modules below,
// NextAuth(options) returns a handler that carries its options (configObject finds them
// behind a default, GET or POST export), and the options a NextAuth config can hold that the
// gateway does not use are reported once per load, by name, with what to do instead
// (docs/migrating-from-nextauth.md).

// migrationDoc is where a NextAuth user reads what maps to what.
const migrationDoc = "docs/migrating-from-nextauth.md"

// nextAuthOptionsKey is the property of the handler NextAuth(options) returns that holds
// the options. It is defined non-enumerable, so spreading the handler does not copy it.
const nextAuthOptionsKey = "__callgateAuthOptions"

// nextAuthRuntimeOnly is the message of the next-auth functions that only make sense inside
// a Next.js server (getServerSession, getToken, the route handler itself).
const nextAuthRuntimeOnly = `runs inside a Next.js server only: behind the gateway, the app reads the signed-in user from the identity headers or the assertion the gateway adds (docs/migrating-from-nextauth.md)`

// nextAuthModules are the next-auth module names a route file imports, with the sources
// that stand in for them. The provider modules are served under "next-auth/providers/" by
// builtinSource from the callgate ones.
var nextAuthModules = map[string]string{
	"next-auth": `function runtimeOnly(name) {
  return function () { throw new Error("next-auth: " + name + " ` + nextAuthRuntimeOnly + `"); };
}
export default function NextAuth(...args) {
  // NextAuth(options), or NextAuth(req, res, options) in a pages/api route.
  const options = args.length >= 3 ? args[2] : args[0];
  const handler = runtimeOnly("route handler");
  Object.defineProperty(handler, "` + nextAuthOptionsKey + `", { value: options });
  return handler;
}
export const getServerSession = runtimeOnly("getServerSession");
export const unstable_getServerSession = runtimeOnly("unstable_getServerSession");
`,
	"next-auth/next": `function runtimeOnly(name) {
  return function () { throw new Error("next-auth/next: " + name + " ` + nextAuthRuntimeOnly + `"); };
}
export const getServerSession = runtimeOnly("getServerSession");
export const unstable_getServerSession = runtimeOnly("unstable_getServerSession");
export default runtimeOnly("NextAuth");
`,
	"next-auth/jwt": `function runtimeOnly(name) {
  return function () { throw new Error("next-auth/jwt: " + name + " ` + nextAuthRuntimeOnly + `"); };
}
export const getToken = runtimeOnly("getToken");
export const encode = runtimeOnly("encode");
export const decode = runtimeOnly("decode");
`,
}

// nextAuthProviderPrefix is where NextAuth's provider modules live; a route file's
// "next-auth/providers/github" is the gateway's "callgate/providers/github".
const nextAuthProviderPrefix = "next-auth/providers/"

// nextAuthSource returns the stand-in for a next-auth module.
func nextAuthSource(path string) (string, bool) {
	if src, ok := nextAuthModules[path]; ok {
		return src, true
	}
	name, ok := strings.CutPrefix(path, nextAuthProviderPrefix)
	if !ok || name == "" {
		return "", false
	}
	return builtinSource("callgate/providers/" + name)
}

// importAdvice explains why a bare import a NextAuth app commonly has is not served, or ""
// for any other module.
func importAdvice(path string) string {
	switch {
	case strings.Contains(path, "adapter"):
		return "the gateway keeps users, accounts and sessions in its own store (bolt, or Redis shared by replicas), so NextAuth adapters are not used: move existing users with `gateway users import` and drop the adapter (docs/migrating-from-nextauth.md)"
	case databaseClients[path]:
		return "scripts reach no database: the users live in the gateway's store, where callgate/store's users.findOne reads them (bring them over with `gateway users import`; docs/migrating-from-nextauth.md)"
	case path == "next-auth/react", path == "next-auth/middleware":
		return path + " belongs to the app, not to the auth config: keep it there (docs/migrating-from-nextauth.md)"
	case strings.HasPrefix(path, nextAuthProviderPrefix):
		return "the gateway has no such provider: see docs/providers.md for the ones it has, or use next-auth/providers/oauth with the provider's endpoints"
	}
	return ""
}

// databaseClients are the packages a NextAuth app's user lookup commonly reads its users with.
var databaseClients = map[string]bool{
	"mongodb": true, "mongoose": true, "@prisma/client": true, "pg": true, "mysql2": true,
	"drizzle-orm": true, "@supabase/supabase-js": true, "firebase-admin": true,
}

// nextAuthRouteFiles are where a Next.js app keeps its NextAuth route file, relative to the
// app's root: a scripts directory that is a copy of those files (with the tsconfig.json whose
// paths are relative to the same root) runs the route file when it has no auth.config.
var nextAuthRouteFiles = []string{
	"app/api/auth/[...nextauth]/route.ts", "app/api/auth/[...nextauth]/route.js",
	"src/app/api/auth/[...nextauth]/route.ts", "src/app/api/auth/[...nextauth]/route.js",
	"pages/api/auth/[...nextauth].ts", "pages/api/auth/[...nextauth].js",
	"src/pages/api/auth/[...nextauth].ts", "src/pages/api/auth/[...nextauth].js",
}

// defaultEntry is the entry when Options.Entry is empty: auth.config.ts, auth.config.js, else
// the first NextAuth route file there is, else auth.config.js (whose absence the load reports).
func defaultEntry(dir string) string {
	for _, name := range append([]string{"auth.config.ts", "auth.config.js"}, nextAuthRouteFiles...) {
		if readable(filepath.Join(dir, filepath.FromSlash(name))) {
			return filepath.FromSlash(name)
		}
	}
	return "auth.config.js"
}

// nextAuthHandlerOptions returns the options a NextAuth(options) handler carries, or nil
// when val is not such a handler.
func nextAuthHandlerOptions(val goja.Value) goja.Value {
	o, ok := val.(*goja.Object)
	if !ok {
		return nil
	}
	if _, fn := goja.AssertFunction(o); !fn {
		return nil
	}
	opts := o.Get(nextAuthOptionsKey)
	if isNullish(opts) {
		return nil
	}
	return opts
}

// findAuthOptions picks the auth config among the entry's exports, in this order: a
// default export that is the config or NextAuth(config); a named authOptions export; a GET
// or POST export made by NextAuth(config) (`export { handler as GET, handler as POST }`).
// A default export that is some other function (a pages/api route wrapping NextAuth) falls
// through to authOptions.
func findAuthOptions(exp *goja.Object) goja.Value {
	def := exp.Get("default")
	if opts := nextAuthHandlerOptions(def); opts != nil {
		return opts
	}
	if _, fn := goja.AssertFunction(def); !isNullish(def) && !fn {
		return def
	}
	if v := exp.Get("authOptions"); !isNullish(v) {
		return v
	}
	for _, name := range []string{"GET", "POST"} {
		if opts := nextAuthHandlerOptions(exp.Get(name)); opts != nil {
			return opts
		}
	}
	return def
}

// nextAuthOnlyOptions are the top-level keys of NextAuth's AuthOptions the gateway does not
// use, with what to do instead. readNextAuthOptions reports each once per load.
var nextAuthOnlyOptions = map[string]string{
	"adapter": "the gateway keeps users, accounts and sessions in its own store (bolt, or Redis shared by replicas): move existing users with `gateway users import`",
	"debug":   "run gateway serve --dev and open /-/inspector to see every callback's arguments and results; log.level: debug in the YAML config for the log",
	"logger":  "the gateway writes structured logs itself (log.format and log.level in the YAML config); console.* in a callback goes to that log",
	"cookies": "the gateway names and scopes its cookies as NextAuth does by default (cookie_domain in the YAML config shares them with subdomains); custom cookie names and options are not used",
}

// isNextAuthOption reports whether key is a NextAuth option that readNextAuthOptions
// handles (and the unknown-key warning must not repeat).
func isNextAuthOption(key string) bool {
	_, ok := nextAuthOnlyOptions[key]
	return ok || key == "secret"
}

// readNextAuthOptions reads what a NextAuth config holds beyond what readConfig reads: the
// secret into c.Secret, and a warning for each option the gateway does not use. The problems
// are independent of each other and are all returned, each pointing at the config.
func (g *Generation) readNextAuthOptions(v *vm, cfg *goja.Object, c *Config) []*Error {
	var errs []*Error
	for _, k := range cfg.Keys() {
		if advice, ok := nextAuthOnlyOptions[k]; ok {
			g.ignored(k, "NextAuth option not used by the gateway: "+advice, "see", migrationDoc)
		}
	}
	if s, ok := cfg.Get("session").(*goja.Object); ok && !isNullish(s.Get("generateSessionToken")) {
		g.ignored("session.generateSessionToken", "NextAuth option not used by the gateway: database session tokens are random values the gateway makes itself", "see", migrationDoc)
	}
	secret, err := g.readSecret(v, cfg)
	if err != nil {
		errs = append(errs, err)
	}
	c.Secret = secret
	return errs
}

// readSecret reads `secret` as a list of secrets in AUTH_SECRET's format (comma-separated,
// the first encrypts). The session tokens are encrypted with one secret for the gateway's
// whole run, so a script's secret must be the one the gateway runs with when that is set
// (Options.Secrets): a reload cannot change it. A secret written into the script rather than
// read from process.env is warned about.
func (g *Generation) readSecret(v *vm, cfg *goja.Object) ([]string, *Error) {
	// The errors point at the option itself when the entry has it.
	configError := func(format string, args ...any) *Error {
		e := g.configError(format, args...)
		src := g.bundle.sources[g.bundle.entry]
		if m := secretKey.FindStringSubmatchIndex(src); m != nil {
			i := m[2]
			e.Line = 1 + strings.Count(src[:i], "\n")
			e.Column = i - strings.LastIndexByte(src[:i], '\n')
			e.SourceLine = g.bundle.sourceLine(e.File, e.Line)
		}
		return e
	}
	val := cfg.Get("secret")
	if isNullish(val) {
		// process.env.NEXTAUTH_SECRET with the variable unset or not listed: NextAuth too
		// then falls back to the environment, which the gateway reads itself.
		return nil, nil
	}
	s, ok := val.Export().(string)
	if !ok || isObject(val) {
		return nil, configError("secret must be a string, got %s", v.typeOf(val))
	}
	secrets := splitSecrets(s)
	if len(secrets) == 0 {
		return nil, configError("secret holds no secret (it is empty)")
	}
	fromEnv := false
	for _, e := range g.env {
		fromEnv = fromEnv || e == s
	}
	if !fromEnv {
		g.logger.Warn("secret is written in the script: read it from process.env (a variable listed under env in the YAML config) so it stays out of the scripts directory", "code", "SCRIPT_LITERAL_SECRET", "file", g.bundle.entry, "generation", g.shortHash())
	}
	if g.secrets != nil && !slices.Equal(secrets, g.secrets) {
		return nil, configError("secret differs from the session secret the gateway runs with (AUTH_SECRET, NEXTAUTH_SECRET or secret_file, or the script's secret when the gateway started): session tokens are encrypted with it, so set it in one place; changing it takes a restart")
	}
	return secrets, nil
}

// secretKey finds the secret option in the entry source (not clientSecret and the like).
var secretKey = regexp.MustCompile(`(?:^|[^\w$])(secret\s*:)`)

// splitSecrets is AUTH_SECRET's format: comma-separated, blanks trimmed, empty parts dropped.
func splitSecrets(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// authConfigShapes is the hint of the "no auth config" error.
const authConfigShapes = ("`export default` the auth config (an object with providers, callbacks, ...), `export const authOptions = {...}`, or a NextAuth route file (`const handler = NextAuth(authOptions); export { handler as GET, handler as POST }`)")

// nextAuthList names the next-auth modules a script may import, for error messages.
const nextAuthList = `and, as a NextAuth route file has them, "next-auth", "next-auth/next", "next-auth/jwt" and "next-auth/providers/<name>" for the callgate providers`
