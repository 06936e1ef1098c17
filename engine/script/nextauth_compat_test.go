package script

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// nextAuthOptionsSrc is the options object of the route files below, written as NextAuth v4
// apps write it: the providers from next-auth's own modules.
const nextAuthOptionsSrc = `{
  providers: [
    CredentialsProvider({
      name: "Credentials",
      credentials: { username: { label: "Username", type: "text" }, password: { label: "Password", type: "password" } },
      async authorize(credentials) {
        return credentials?.username === "alice" ? { id: "1", name: "Alice" } : null;
      },
    }),
    GitHubProvider({ clientId: "id", clientSecret: "secret" }),
  ],
  session: { strategy: "jwt" },
}`

const nextAuthImports = `import NextAuth from "next-auth";
import type { NextAuthOptions } from "next-auth";
import CredentialsProvider from "next-auth/providers/credentials";
import GitHubProvider from "next-auth/providers/github";
`

func TestNextAuthRouteFileShapes(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"app router handler and authOptions", nextAuthImports +
			"export const authOptions: NextAuthOptions = " + nextAuthOptionsSrc + ";\n" +
			"const handler = NextAuth(authOptions);\nexport { handler as GET, handler as POST };\n"},
		{"app router handler only", nextAuthImports +
			"const handler = NextAuth(" + nextAuthOptionsSrc + ");\nexport { handler as GET, handler as POST };\n"},
		{"default NextAuth(options)", nextAuthImports +
			"export default NextAuth(" + nextAuthOptionsSrc + ");\n"},
		{"authOptions only", nextAuthImports +
			"export const authOptions: NextAuthOptions = " + nextAuthOptionsSrc + ";\n"},
		{"pages router wrapper", nextAuthImports + `import type { NextApiRequest, NextApiResponse } from "next";
export const authOptions: NextAuthOptions = ` + nextAuthOptionsSrc + `;
export default async function auth(req: NextApiRequest, res: NextApiResponse) {
  return await NextAuth(req, res, authOptions);
}
`},
		{"default NextAuth(req, res, options) handler", nextAuthImports +
			"const options = " + nextAuthOptionsSrc + ";\nexport default NextAuth({} as any, {} as any, options);\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := load(t, writeDir(t, map[string]string{"auth.config.ts": tc.src}), nil)
			var ids []string
			for _, p := range l.gen.Config().Providers {
				ids = append(ids, p.ID)
			}
			if want := []string{"credentials", "github"}; !slices.Equal(ids, want) {
				t.Errorf("providers: got %v, want %v", ids, want)
			}
			got, err := l.gen.Authorize(context.Background(), "credentials", map[string]any{"username": "alice"}, nil)
			if err != nil {
				t.Fatalf("authorize: %v", err)
			}
			if want := map[string]any{"id": "1", "name": "Alice"}; !reflect.DeepEqual(got, want) {
				t.Errorf("authorize: got %v, want %v", got, want)
			}
			if logs := l.logs.String(); strings.Contains(logs, "unknown auth config key") {
				t.Errorf("a NextAuth route file logged an unknown key:\n%s", logs)
			}
		})
	}
}

func TestNextAuthServerOnlyFunctionsExplainThemselves(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.ts": `import NextAuth, { getServerSession } from "next-auth";
import { getToken } from "next-auth/jwt";
import CredentialsProvider from "next-auth/providers/credentials";
export const authOptions = {
  providers: [CredentialsProvider({ async authorize(c) {
    if (c.username === "token") await getToken({} as any);
    await getServerSession(authOptions);
    return null;
  } })],
};
const handler = NextAuth(authOptions);
export { handler as GET, handler as POST };
`})
	l := load(t, dir, nil)
	for user, want := range map[string]string{"alice": "next-auth: getServerSession runs inside a Next.js server only", "token": "next-auth/jwt: getToken runs inside a Next.js server only"} {
		_, err := l.gen.Authorize(context.Background(), "credentials", map[string]any{"username": user}, nil)
		se := asError(t, err)
		if !strings.Contains(se.Message, want) || !strings.Contains(se.Message, "identity headers") {
			t.Errorf("calling it: got %q, want it to contain %q and point to the identity headers", se.Message, want)
		}
	}
}

func TestTsconfigPaths(t *testing.T) {
	const entry = `import CredentialsProvider from "next-auth/providers/credentials";
import { findUser } from "@/lib/users";
export const authOptions = { providers: [CredentialsProvider({ authorize: (c) => findUser(c.username) })] };
`
	users := `export function findUser(name: string) { return { id: "7", name: name.toUpperCase() }; }`
	// A type declaration file as Next.js apps keep one: types only, never bundled.
	types := `import NextAuth, { DefaultSession } from "next-auth";
declare module "next-auth" { interface Session { user: { role?: string } & DefaultSession["user"] } }
declare module "next-auth/jwt" { interface JWT { role?: string } }
`
	// Next.js writes its tsconfig.json with comments now and then; the plugin entry is its own.
	tsconfig := `{
  "compilerOptions": {
    "target": "ES2017", "lib": ["dom", "esnext"], "strict": true, "noEmit": true, "module": "esnext",
    "moduleResolution": "bundler", "jsx": "preserve", "isolatedModules": true,
    "plugins": [{ "name": "next" }],
    // the app's root
    "paths": { "@/*": ["./*"] },
  },
  "include": ["next-env.d.ts", "**/*.ts", "types/**/*.d.ts"],
}
`
	for _, name := range []string{"tsconfig.json", "jsconfig.json"} {
		t.Run(name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{
				"auth.config.ts": entry, "lib/users.ts": users, "types/next-auth.d.ts": types, name: tsconfig,
			})
			l := load(t, dir, nil)
			got, err := l.gen.Authorize(context.Background(), "credentials", map[string]any{"username": "bob"}, nil)
			if err != nil {
				t.Fatalf("authorize: %v", err)
			}
			if got["name"] != "BOB" {
				t.Errorf("authorize through @/lib/users: got %v, want name BOB", got)
			}
		})
	}

	t.Run("no tsconfig", func(t *testing.T) {
		se := loadErr(t, writeDir(t, map[string]string{"auth.config.ts": entry, "lib/users.ts": users}))
		if se.Name != "ImportError" || !strings.Contains(se.Message, `import "@/lib/users" is not allowed`) || !strings.Contains(se.Message, "tsconfig.json") {
			t.Errorf("got %s %q, want an ImportError naming tsconfig.json paths", se.Name, se.Message)
		}
	})

	// What the paths map to is confined like any import: outside the directory, or a package
	// in node_modules, is refused.
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(outside, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "lib", "users.ts"), []byte(users), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"paths leading out", map[string]string{
			"auth.config.ts": entry,
			"tsconfig.json":  `{"compilerOptions": {"paths": {"@/*": ["OUTSIDE/*"]}}}`,
		}, "outside the scripts directory"},
		{"absolute baseUrl", map[string]string{
			"auth.config.ts": entry,
			"tsconfig.json":  `{"compilerOptions": {"baseUrl": "` + filepath.ToSlash(outside) + `", "paths": {"@/*": ["./*"]}}}`,
		}, "outside the scripts directory"},
		{"a package", map[string]string{
			"auth.config.ts":                 `import pad from "left-pad";` + "\nconsole.log(pad);\n" + entry,
			"lib/users.ts":                   users,
			"node_modules/left-pad/index.js": "module.exports = (s) => s;",
			"tsconfig.json":                  `{"compilerOptions": {"paths": {"@/*": ["./*"]}}}`,
		}, `import "left-pad" is not allowed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDir(t, tc.files)
			if ts := tc.files["tsconfig.json"]; strings.Contains(ts, "OUTSIDE") {
				rel, err := filepath.Rel(dir, outside)
				if err != nil {
					t.Fatal(err)
				}
				ts = strings.Replace(ts, "OUTSIDE", filepath.ToSlash(rel), 1)
				if err := os.WriteFile(filepath.Join(dir, "tsconfig.json"), []byte(ts), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			se := loadErr(t, dir)
			if se.Name != "ImportError" || !strings.Contains(se.Message, tc.want) {
				t.Errorf("got %s %q, want an ImportError containing %q", se.Name, se.Message, tc.want)
			}
		})
	}
}

func TestNextAuthImportsNotServedSayWhatToDo(t *testing.T) {
	for _, tc := range []struct{ imp, name, want string }{
		{`import { PrismaAdapter } from "@next-auth/prisma-adapter";`, "PrismaAdapter", "gateway users import"},
		{`import { MongoDBAdapter } from "@auth/mongodb-adapter";`, "MongoDBAdapter", "gateway users import"},
		{`import { MongoClient } from "mongodb";`, "MongoClient", "users.findOne"},
		{`import { signIn } from "next-auth/react";`, "signIn", "belongs to the app"},
		{`import Twitter from "next-auth/providers/twitter";`, "Twitter", "docs/providers.md"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.imp + "\nimport C from \"next-auth/providers/credentials\";\nconsole.log(" + tc.name + ");\nexport default { providers: [C({ authorize: () => null })] };\n"
			se := loadErr(t, writeDir(t, map[string]string{"auth.config.ts": src}))
			if se.Name != "ImportError" || !strings.Contains(se.Message, tc.want) || se.Line != 1 {
				t.Errorf("got %s %q at line %d, want an ImportError at line 1 containing %q", se.Name, se.Message, se.Line, tc.want)
			}
		})
	}
}

func TestNextAuthOnlyOptionsReportedOnceByName(t *testing.T) {
	dir := writeDir(t, map[string]string{"auth.config.js": `import C from "next-auth/providers/credentials";
export default {
  providers: [C({ authorize: () => null })],
  adapter: { createUser() {} },
  debug: true,
  logger: { error() {} },
  cookies: { sessionToken: { name: "my-session" } },
  session: { strategy: "jwt", generateSessionToken: () => "x" },
};
`})
	logs := load(t, dir, nil).logs.String()
	for name, want := range map[string]string{
		"adapter": "gateway users import", "debug": "log.level: debug", "logger": "log.format",
		"cookies": "cookie_domain", "session.generateSessionToken": "random values",
	} {
		var lines []string
		for line := range strings.SplitSeq(logs, "\n") {
			if strings.Contains(line, "name="+name+" ") {
				lines = append(lines, line)
			}
		}
		if len(lines) != 1 || !strings.Contains(lines[0], want) || !strings.Contains(lines[0], "SCRIPT_OPTION_IGNORED") {
			t.Errorf("%s: got %q, want one SCRIPT_OPTION_IGNORED warning containing %q", name, lines, want)
		}
	}
	if strings.Contains(logs, "unknown auth config key") {
		t.Errorf("NextAuth options were also logged as unknown keys:\n%s", logs)
	}
}

func TestScriptSecret(t *testing.T) {
	const src = `import C from "next-auth/providers/credentials";
import GitHub from "next-auth/providers/github";
export default {
  providers: [C({ authorize: () => null }), GitHub({ clientId: "id", clientSecret: "not this one" })],
  secret: SECRET,
};
`
	for _, tc := range []struct {
		name    string
		secret  string            // the script's expression
		env     map[string]string // process.env
		secrets []string          // Options.Secrets
		want    []string          // Config.Secret
		literal bool              // warned as written in the script
		err     string
	}{
		{name: "from process.env", secret: "process.env.NEXTAUTH_SECRET", env: map[string]string{"NEXTAUTH_SECRET": "s1, s0"}, want: []string{"s1", "s0"}},
		{name: "unset variable", secret: "process.env.NEXTAUTH_SECRET"},
		{name: "literal", secret: `"written-here"`, want: []string{"written-here"}, literal: true},
		{name: "same as the gateway's", secret: "process.env.NEXTAUTH_SECRET", env: map[string]string{"NEXTAUTH_SECRET": "s1"}, secrets: []string{"s1"}, want: []string{"s1"}},
		{name: "differs from the gateway's", secret: "process.env.NEXTAUTH_SECRET", env: map[string]string{"NEXTAUTH_SECRET": "s2"}, secrets: []string{"s1"}, err: "secret differs from the session secret the gateway runs with"},
		{name: "rotation order differs", secret: `"s0,s1"`, secrets: []string{"s1", "s0"}, err: "secret differs"},
		{name: "not a string", secret: "42", err: "secret must be a string, got number"},
		{name: "empty", secret: `" , "`, err: "secret holds no secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{"auth.config.js": strings.Replace(src, "SECRET", tc.secret, 1)})
			if tc.err != "" {
				_, err := Load(context.Background(), Options{Dir: dir, Env: tc.env, Secrets: tc.secrets})
				var se *Error
				if !errors.As(err, &se) || se.Name != "ConfigError" || !strings.Contains(se.Message, tc.err) || se.File != "auth.config.js" || se.Line != 5 || se.Column != 3 || !strings.Contains(se.SourceLine, "secret:") {
					t.Fatalf("got %v, want a ConfigError at auth.config.js:5:3 (the secret line) containing %q", err, tc.err)
				}
				return
			}
			l := load(t, dir, func(o *Options) { o.Env, o.Secrets = tc.env, tc.secrets })
			if got := l.gen.Config().Secret; !slices.Equal(got, tc.want) {
				t.Errorf("Config.Secret: got %q, want %q", got, tc.want)
			}
			if got := strings.Contains(l.logs.String(), "SCRIPT_LITERAL_SECRET"); got != tc.literal {
				t.Errorf("literal secret warned: got %v, want %v\n%s", got, tc.literal, l.logs)
			}
			if strings.Contains(l.logs.String(), "written-here") || strings.Contains(l.logs.String(), "s1") {
				t.Errorf("the secret is in the log:\n%s", l.logs)
			}
		})
	}
}

func TestDefaultEntry(t *testing.T) {
	const config = `import C from "next-auth/providers/credentials";
export default { providers: [C({ id: "ID", authorize: () => null })] };
`
	for _, tc := range []struct {
		name  string
		files []string
		want  string
	}{
		{"auth.config.ts first", []string{"auth.config.ts", "auth.config.js", "app/api/auth/[...nextauth]/route.ts"}, "auth.config.ts"},
		{"auth.config.js before a route file", []string{"auth.config.js", "app/api/auth/[...nextauth]/route.ts"}, "auth.config.js"},
		{"app router", []string{"app/api/auth/[...nextauth]/route.ts", "pages/api/auth/[...nextauth].ts"}, "app/api/auth/[...nextauth]/route.ts"},
		{"src app router", []string{"src/app/api/auth/[...nextauth]/route.js"}, "src/app/api/auth/[...nextauth]/route.js"},
		{"pages router", []string{"pages/api/auth/[...nextauth].js"}, "pages/api/auth/[...nextauth].js"},
		{"src pages router", []string{"src/pages/api/auth/[...nextauth].ts"}, "src/pages/api/auth/[...nextauth].ts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			for _, f := range tc.files {
				files[f] = strings.Replace(config, "ID", f, 1)
			}
			l := load(t, writeDir(t, files), nil)
			if got := l.gen.Config().Providers[0].ID; got != tc.want {
				t.Errorf("entry: got the config of %s, want %s", got, tc.want)
			}
		})
	}
	se := loadErr(t, writeDir(t, map[string]string{"lib/users.ts": "export {};"}))
	if !strings.Contains(se.Message, "auth.config.js") {
		t.Errorf("no entry: got %q, want it to name auth.config.js", se.Message)
	}
}
