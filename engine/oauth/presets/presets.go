// Package presets holds the JavaScript sources of the built-in OAuth provider modules that
// auth scripts import as "callgate/providers/<name>": the base modules oauth and oidc and the
// presets (github, google, azure-ad, microsoft-entra-id, gitlab, keycloak, auth0). They belong
// with the OAuth client (engine/oauth) but sit in a leaf package of their own, because
// engine/oauth imports engine/script, whose bundler serves these sources. The package is data
// and a lookup; it imports nothing from the module. engine/script reads what the modules
// return (docs/providers.md).
package presets

import "sort"

// ModulePrefix is the import path under which scripts import the modules:
// ModulePrefix + name.
const ModulePrefix = "callgate/providers/"

// prelude is shared by the provider modules (a built-in module cannot import
// another): merge is NextAuth's deep merge of the user's options over the preset's, so
// `authorization: {params: {prompt: "login"}}` keeps the preset's scope.
const prelude = `function isPlain(x) { return x !== null && typeof x === "object" && !Array.isArray(x); }
function merge(base, over) {
  const out = { ...base };
  for (const [k, v] of Object.entries(over ?? {})) {
    if (isPlain(v) && isPlain(out[k])) out[k] = merge(out[k], v);
    else if (typeof v === "string" && isPlain(out[k]) && (k === "authorization" || k === "token" || k === "userinfo")) out[k] = { ...out[k], url: v };
    else if (v !== undefined) out[k] = v;
  }
  return out;
}
function preset(base, options) {
  const o = options ?? {};
  return { ...merge(base, o), options: o };
}
function requireOption(o, key, provider) {
  if (!o || !o[key]) throw new Error(provider + ": the " + key + " option is required");
  return o[key];
}
function oidcProfile(profile) {
  return { id: profile.sub, name: profile.name ?? profile.preferred_username ?? null, email: profile.email ?? null, image: profile.picture ?? null };
}
`

// modules are the provider modules by name ("github" is imported as
// "callgate/providers/github"). Each exports a default function taking the provider's
// options, as NextAuth's provider modules do.
var modules = map[string]string{
	"oauth": prelude + `export default function OAuth(options) {
  return preset({ id: "oauth", name: "OAuth", type: "oauth", checks: ["state"] }, options);
}
`,
	"oidc": prelude + `export default function OIDC(options) {
  return preset({
    id: "oidc", name: "OpenID Connect", type: "oidc", checks: ["pkce", "state", "nonce"],
    authorization: { params: { scope: "openid email profile" } },
  }, options);
}
`,
	"github": prelude + `export default function GitHub(options) {
  const base = (options?.enterprise?.baseUrl ?? "https://github.com").replace(/\/$/, "");
  const api = base === "https://github.com" ? "https://api.github.com" : base + "/api/v3";
  return preset({
    id: "github", name: "GitHub", type: "oauth", checks: ["state"],
    authorization: { url: base + "/login/oauth/authorize", params: { scope: "read:user user:email" } },
    token: base + "/login/oauth/access_token",
    // emails: read when /user has no email (the account keeps its address private).
    userinfo: { url: api + "/user", emails: api + "/user/emails" },
    profile(profile) {
      return { id: String(profile.id), name: profile.name ?? profile.login, email: profile.email ?? null, image: profile.avatar_url ?? null };
    },
  }, options);
}
`,
	"google": prelude + `export default function Google(options) {
  return preset({
    id: "google", name: "Google", type: "oidc", checks: ["pkce", "state", "nonce"],
    issuer: "https://accounts.google.com",
    authorization: { params: { scope: "openid email profile" } },
    profile(profile) {
      return { id: profile.sub, name: profile.name ?? null, email: profile.email ?? null, image: profile.picture ?? null };
    },
  }, options);
}
`,
	"azure-ad":           prelude + entraSource("AzureAD", "azure-ad", "Azure Active Directory"),
	"microsoft-entra-id": prelude + entraSource("MicrosoftEntraID", "microsoft-entra-id", "Microsoft Entra ID"),
	"gitlab": prelude + `export default function GitLab(options) {
  const base = (options?.baseUrl ?? "https://gitlab.com").replace(/\/$/, "");
  return preset({
    id: "gitlab", name: "GitLab", type: "oauth", checks: ["pkce", "state"],
    authorization: { url: base + "/oauth/authorize", params: { scope: "read_user" } },
    token: base + "/oauth/token",
    userinfo: base + "/api/v4/user",
    profile(profile) {
      return { id: String(profile.id), name: profile.name ?? profile.username, email: profile.email ?? null, image: profile.avatar_url ?? null };
    },
  }, options);
}
`,
	"keycloak": prelude + `export default function Keycloak(options) {
  requireOption(options, "issuer", "Keycloak");
  return preset({
    id: "keycloak", name: "Keycloak", type: "oidc", checks: ["pkce", "state", "nonce"],
    authorization: { params: { scope: "openid email profile" } },
    profile: oidcProfile,
  }, options);
}
`,
	"auth0": prelude + `export default function Auth0(options) {
  requireOption(options, "issuer", "Auth0");
  return preset({
    id: "auth0", name: "Auth0", type: "oidc", checks: ["pkce", "state", "nonce"],
    authorization: { params: { scope: "openid email profile" } },
    profile(profile) {
      return { id: profile.sub, name: profile.nickname ?? profile.name ?? null, email: profile.email ?? null, image: profile.picture ?? null };
    },
  }, options);
}
`,
}

// entraSource is the Microsoft Entra ID (formerly Azure AD) module under a given name. The
// tenant must be named: the multi-tenant "common" endpoint signs ID tokens with each
// tenant's own issuer, which an issuer check cannot match.
func entraSource(fn, id, name string) string {
	return `export default function ` + fn + `(options) {
  const o = options ?? {};
  const issuer = o.issuer ?? (o.tenantId ? "https://login.microsoftonline.com/" + o.tenantId + "/v2.0" : undefined);
  if (!issuer || /\/(common|organizations|consumers)\//.test(issuer)) {
    throw new Error("` + fn + `: set tenantId (or issuer) to your directory's tenant ID; multi-tenant endpoints cannot be checked");
  }
  const { tenantId, ...rest } = o;
  return preset({
    id: "` + id + `", name: "` + name + `", type: "oidc", checks: ["pkce", "state", "nonce"], issuer,
    authorization: { params: { scope: "openid profile email" } },
    profile(profile) {
      return { id: profile.sub, name: profile.name ?? null, email: profile.email ?? profile.preferred_username ?? null, image: null };
    },
  }, rest);
}
`
}

// Source returns the source of the provider module name ("github" for
// "callgate/providers/github"), and whether there is one.
func Source(name string) (string, bool) {
	src, ok := modules[name]
	return src, ok
}

// Names returns the names of the provider modules, sorted.
func Names() []string {
	out := make([]string, 0, len(modules))
	for name := range modules {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
