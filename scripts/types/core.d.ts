// The types of callgate auth configs, as the ambient module "callgate" (types only: nothing
// imports it at run time; `import type` is erased). They follow NextAuth v4's AuthOptions,
// restricted to what callgate runs, and the same interfaces are the types of "next-auth" and
// "next-auth/jwt" (nextauth.d.ts), so a module augmentation written for NextAuth applies:
//
//   import type { DefaultSession } from "next-auth";
//   declare module "next-auth" {
//     interface Session { user: { role: string } & DefaultSession["user"] }
//     interface User { role: string }
//   }
//   declare module "next-auth/jwt" { interface JWT { role?: string } }
//
// The file holding it must be a module (an import or an `export {}`), as with NextAuth.

declare module "callgate" {
  /** A JSON value: what crosses between the gateway and a script. */
  export type JSONValue = string | number | boolean | null | JSONValue[] | { [key: string]: JSONValue };

  /** Something a callback may return directly or as a promise. */
  export type Awaitable<T> = T | PromiseLike<T>;

  /** NextAuth's DefaultUser: what every user has. */
  export interface DefaultUser {
    /** Becomes the token's `sub`. */
    id: string;
    name?: string | null;
    email?: string | null;
    image?: string | null;
    /** Any other field (any, so that an interface of your own is a User too). */
    [key: string]: any;
  }

  /**
   * The user an `authorize` function returns and the callbacks receive. Add your fields by
   * augmentation: `declare module "next-auth" { interface User { role: string } }` (or
   * `declare module "callgate"`).
   */
  export interface User extends DefaultUser {}

  /** The account of a sign-in. For credentials: `{providerAccountId: user.id, type: "credentials", provider}`. */
  export interface Account {
    providerAccountId: string;
    type: "credentials" | "oauth" | "oidc" | "email" | "passkey";
    provider: string;
    userId?: string;
    access_token?: string;
    expires_at?: number;
    refresh_token?: string;
    id_token?: string;
    token_type?: string;
    scope?: string;
    session_state?: string;
    /** Any other field (any, so that an interface of your own is a User too). */
    [key: string]: any;
  }

  /** An OAuth provider's profile (not used by credentials sign-in). */
  export interface Profile {
    sub?: string;
    name?: string;
    email?: string;
    image?: string;
    /** Any other field (any, so that an interface of your own is a User too). */
    [key: string]: any;
  }

  /** NextAuth's DefaultJWT: the claims the gateway sets. */
  export interface DefaultJWT extends Record<string, unknown> {
    name?: string | null;
    email?: string | null;
    picture?: string | null;
    sub?: string;
    iat?: number;
    exp?: number;
    jti?: string;
    /**
     * How the user authenticated in the most recent sign-in or challenge (RFC 8176): "pwd"
     * (password), "otp" (TOTP or a recovery code), "hwk" (passkey), and "mfa" when two or
     * more factors were used.
     */
    amr?: string[];
    /** When that authentication happened, in seconds since the epoch. */
    auth_time?: number;
  }

  /**
   * The decoded session token (JWT claims). Add your claims by augmentation:
   * `declare module "next-auth/jwt" { interface JWT { role?: string } }`.
   */
  export interface JWT extends DefaultJWT {}

  /** NextAuth's DefaultSession: the session body before the session callback shapes it. */
  export interface DefaultSession {
    user?: { name?: string | null; email?: string | null; image?: string | null; [key: string]: unknown };
    /** ISO 8601. */
    expires: string;
    [key: string]: unknown;
  }

  /**
   * The session body of GET /api/auth/session. Add your fields by augmentation:
   * `declare module "next-auth" { interface Session { user: { role: string } & DefaultSession["user"] } }`.
   */
  export interface Session extends DefaultSession {}

  /** A database session user (session strategy "database"). */
  export interface AdapterUser extends User {
    email: string;
    emailVerified: Date | null;
  }

  /** The request `authorize` sees: no cookies, lower-case header names. */
  export interface RequestInternal {
    body?: Record<string, any>;
    query?: Record<string, any>;
    headers?: Record<string, any>;
    method?: string;
  }

  /** One input of the sign-in form. */
  export interface CredentialInput {
    label?: string;
    type?: string;
    value?: string;
    placeholder?: string;
  }

  export type CredentialsConfig<C extends Record<string, CredentialInput> = Record<string, CredentialInput>> = {
    id: string;
    name: string;
    type: "credentials";
    credentials: C;
    authorize: (
      credentials: Record<keyof C, string> | undefined,
      req: Pick<RequestInternal, "body" | "query" | "headers" | "method">,
    ) => Awaitable<User | null | false | undefined>;
    options?: Partial<CredentialsConfig<C>>;
  };

  export interface CredentialsOptions<C extends Record<string, CredentialInput> = Record<string, CredentialInput>> {
    /** Provider id, used in /api/auth/callback/<id>. Default "credentials". */
    id?: string;
    /** Shown on the sign-in button. Default "Credentials". */
    name?: string;
    /** The form fields, in order. */
    credentials?: C;
    /**
     * Checks the submitted form. Return a user to sign in, null/false to refuse with
     * CredentialsSignin, or throw an Error whose message is shown to the user (error=<message>).
     * `credentials` is the whole parsed body (including csrfToken and callbackUrl).
     */
    authorize: CredentialsConfig<C>["authorize"];
  }

  /** An endpoint: a URL, or a URL with extra query/body parameters. */
  export type EndpointOption = string | { url?: string; params?: Record<string, string | number | boolean> };

  /** Options of the OAuth 2 / OpenID Connect provider modules (callgate/providers/oauth, oidc and the presets). */
  export interface OAuthOptions<P extends Profile = Profile> {
    /** Provider id, used in /api/auth/signin/<id> and /api/auth/callback/<id>. */
    id?: string;
    /** Shown on the sign-in button. */
    name?: string;
    clientId: string | undefined;
    clientSecret?: string;
    /** OpenID Connect issuer: endpoints and signing keys are discovered from it. */
    issuer?: string;
    /** An explicit discovery document URL, when it is not at <issuer>/.well-known/openid-configuration. */
    wellKnown?: string;
    /** Where the browser is sent; `params` (scope, prompt, ...) are added to the URL. */
    authorization?: EndpointOption;
    token?: EndpointOption;
    userinfo?: EndpointOption;
    /** Read the profile from the validated ID token (always on for type "oidc"). */
    idToken?: boolean;
    /** Default ["state"] for oauth, ["pkce", "state", "nonce"] for oidc and its presets. */
    checks?: ("state" | "pkce" | "nonce" | "none")[] | "state" | "pkce" | "nonce" | "none";
    client?: { token_endpoint_auth_method?: "client_secret_basic" | "client_secret_post" };
    /** Maps the provider's profile (ID token claims or userinfo) to the user. Must return an id. */
    profile?: (profile: P, tokens: TokenSet) => Awaitable<User>;
    /** Link a new provider account to an existing user with the same e-mail instead of OAuthAccountNotLinked. */
    allowDangerousEmailAccountLinking?: boolean;
    /**
     * Gateway-owned access-token refresh: when account.expires_at has passed, the gateway
     * refreshes once (safely under parallel requests) and calls jwt with trigger "refresh" and
     * the new account. gracePeriod (seconds, default 300) keeps the session while the provider
     * cannot be reached.
     */
    refresh?: boolean | { gracePeriod?: number };
    /**
     * Single logout (OpenID Connect; needs the ID token). backchannel: accept the provider's
     * logout tokens at /api/auth/backchannel-logout/<id> and end the sessions they name.
     * endSession: after a sign-out, send the browser through the provider's
     * end_session_endpoint so the provider's session ends too.
     */
    logout?: { backchannel?: boolean; endSession?: boolean };
  }

  /** The provider's token response, with expires_in turned into expires_at. */
  export interface TokenSet {
    access_token?: string;
    token_type?: string;
    id_token?: string;
    refresh_token?: string;
    expires_at?: number;
    scope?: string;
    [key: string]: unknown;
  }

  export type OAuthConfig<P extends Profile = Profile> = OAuthOptions<P> & {
    id: string;
    name: string;
    type: "oauth" | "oidc";
    options?: OAuthOptions<P>;
  };

  export interface PasskeyOptions {
    /** Provider id, used in /api/auth/signin/<id> and /api/auth/callback/<id>. Default "passkey". */
    id?: string;
    /** Shown on the sign-in button. Default "Passkey". */
    name?: string;
  }

  export type PasskeyConfig = PasskeyOptions & { id: string; name: string; type: "passkey" };


  /** A second factor a callback may ask for. */
  export type SecondFactor = "totp" | "passkey";

  /**
   * A signIn result that lets the sign-in go on only after a second factor: true for any kind
   * the user has, or the kinds that will do. The session is issued once the challenge passes.
   */
  export interface SignInSecondFactor {
    secondFactor: true | SecondFactor[];
  }

  /** Options of the e-mail provider (callgate/providers/email), as NextAuth's Email provider. */
  export interface EmailOptions {
    /** Provider id, used in /api/auth/signin/<id> and /api/auth/callback/<id>. Default "email". */
    id?: string;
    /** Shown on the sign-in button. Default "Email". */
    name?: string;
    /** The sender, an RFC 5322 address. Default "NextAuth <no-reply@example.com>". */
    from?: string;
    /** Seconds a sign-in link stays valid. Default 86400 (24 hours). */
    maxAge?: number;
    /**
     * The SMTP server of the default sender: "smtp://user:pass@host:587" (STARTTLS when offered),
     * "smtps://…" (TLS from the first byte), or nodemailer's object. Default localhost:25.
     */
    server?: string | { host?: string; port?: number; secure?: boolean; auth?: { user?: string; pass?: string } };
    /** Hashes the stored token instead of the auth secret. */
    secret?: string;
    /** Sends the link yourself instead of through SMTP. A throw is error=EmailSignin. */
    sendVerificationRequest?: (params: {
      identifier: string;
      url: string;
      expires: Date;
      provider: { id: string; type: "email"; name: string; from: string; maxAge: number; server: Record<string, any> };
      token: string;
      theme: Theme;
    }) => Awaitable<void>;
  }

  export type EmailConfig = EmailOptions & { id: string; name: string; type: "email"; options?: EmailOptions };

  export type Provider = CredentialsConfig<any> | OAuthConfig<any> | EmailConfig | PasskeyConfig;

  /** The request the `authorized` callback decides: a read-only copy. */
  export interface AuthorizedRequest {
    /** The original method (for forward-auth: X-Forwarded-Method from a trusted proxy). */
    method: string;
    /** The absolute URL the user asked for. */
    url: string;
    path: string;
    /** Query parameters; the first value when one is repeated. */
    query: Record<string, string>;
    /** Header names lower-cased, repeated values joined with ", ". */
    headers: Record<string, string>;
    /** The client address (behind a trusted proxy: from X-Forwarded-For). */
    ip: string;
    /** The matched route's name ("" for forward-auth requests that match no route). */
    route: string;
    /** How the request authenticated; null when it did not. */
    auth: AuthorizedAuth | null;
  }

  /**
   * The credential an authorized request carried: the session cookie, the session token as
   * a bearer, or an identity provider's access token (a JWT checked against its JWKS, or an
   * opaque one checked by introspection) on a route that lists `bearer`.
   */
  export type AuthorizedAuth =
    | { method: "cookie"; type: "session" }
    | { method: "bearer"; type: "session" }
    | { method: "bearer"; type: "jwt" | "introspection"; provider: string };

  /** An `authorized` result that allows the request and adds to what the app receives. */
  export interface AuthorizedResult {
    /** Extra upstream headers (and forward-auth response headers). */
    headers?: Record<string, string>;
    /** Extra claims in the assertion JWT. */
    claims?: Record<string, unknown>;
  }

  /**
   * An `authorized` result that asks for a fresh authentication before the request goes on
   * (step-up): the browser is sent to the challenge and back to the URL it asked for. Decide
   * with `token.auth_time` and `token.amr` when it is needed.
   */
  export interface AuthorizedStepUp {
    stepUp: {
      /** The kinds of factor that will do; omitted: any kind the user has. */
      factors?: SecondFactor[];
    };
  }

  /** The argument of callbacks.signIn. */
  export interface SignInParams {
    user: User | AdapterUser;
    account: Account | null;
    profile?: Profile;
    email?: { verificationRequest?: boolean };
    credentials?: Record<string, any>;
  }

  /** The argument of callbacks.redirect. */
  export interface RedirectParams { url: string; baseUrl: string }

  /** The argument of callbacks.authorized. */
  export interface AuthorizedParams {
    auth: Session | null;
    token: JWT | null;
    request: AuthorizedRequest;
  }

  /** The argument of callbacks.session. */
  export interface SessionParams {
    session: Session;
    token: JWT;
    user: AdapterUser;
    newSession?: any;
    trigger?: "update";
  }

  /** The argument of callbacks.jwt. */
  export interface JWTParams {
    token: JWT;
    user?: User | AdapterUser;
    account?: Account | null;
    profile?: Profile;
    trigger?: "signIn" | "signUp" | "update" | "refresh";
    isNewUser?: boolean;
    session?: any;
  }

  export interface CallbacksOptions {
    /**
     * Runs after authorize. Return true to continue, false to refuse (AccessDenied), a URL
     * string to redirect there, or `{secondFactor}` to ask for a second factor before the
     * session is issued. A throw redirects with error=<message>.
     */
    signIn?: (params: SignInParams) => Awaitable<boolean | string | SignInSecondFactor>;
    /**
     * Runs whenever a callback URL is used. Return the URL to go to; the gateway still refuses
     * other origins. Default: same-origin URLs only.
     */
    redirect?: (params: RedirectParams) => Awaitable<string>;
    /**
     * Decides every request to a protected route (reverse proxy and forward-auth), as
     * NextAuth's middleware does. `token` is the decoded session token and `auth` the session
     * as the `session` callback shapes it; both are null when the request is not signed in.
     * With a provider's access token (`request.auth.type` "jwt" or "introspection"), `token`
     * is its claims and `auth` is null.
     * Return true to allow, false to deny (sign-in redirect or 401 when signed out, 403 when
     * signed in), a URL to redirect there (same site or a route host only), or an object to
     * allow and add upstream headers and assertion claims, or `{stepUp}` to ask for a fresh
     * authentication first. Default: allow when signed in.
     */
    authorized?: (params: AuthorizedParams) => Awaitable<boolean | string | AuthorizedResult | AuthorizedStepUp>;
    /**
     * Shapes what GET /api/auth/session returns. JWT strategy: `{session, token}`; database
     * strategy: `{session, user, newSession, trigger?}`. Default: the session as is.
     */
    session?: (params: SessionParams) => Awaitable<Session | Record<string, unknown>>;
    /**
     * Shapes the session token. On sign-in `user`, `account` (and `profile`, `isNewUser`) are
     * set and `trigger` is "signIn"/"signUp"; on GET /session only `{token, session: undefined}`;
     * on update() `{token, trigger: "update", session}`. Return the token; null ends the session.
     */
    jwt?: (params: JWTParams) => Awaitable<JWT | null | undefined>;
  }

  export interface EventCallbacks {
    /** After a sign-in. Credentials: `{user, account}`. */
    signIn?: (message: { user: User; account: Account | null; profile?: Profile; isNewUser?: boolean }) => Awaitable<void>;
    /** After sign-out. JWT strategy: `{token}`; database strategy: `{session}`. */
    signOut?: (message: { session: Session; token: JWT }) => Awaitable<void>;
    createUser?: (message: { user: User }) => Awaitable<void>;
    updateUser?: (message: { user: User }) => Awaitable<void>;
    linkAccount?: (message: { user: User | AdapterUser; account: Account; profile: User | AdapterUser }) => Awaitable<void>;
    /** After every successful session read. JWT: `{session, token}`; database: `{session}`. */
    session?: (message: { session: Session; token: JWT }) => Awaitable<void>;
  }

  export interface PagesOptions {
    /** Paths ("/login") or absolute URLs of the app's own pages. */
    signIn?: string;
    signOut?: string;
    error?: string;
    verifyRequest?: string;
    newUser?: string;
    /** callgate's: the app's own second-factor challenge page (docs/factors.md). */
    challenge?: string;
    /** callgate's: the app's own page for managing passkeys and authenticator apps. */
    factors?: string;
  }

  export interface SessionOptions {
    /** "jwt" (default) or "database". */
    strategy?: "jwt" | "database";
    /** Seconds until an idle session expires. Default 30 days. */
    maxAge?: number;
    /**
     * Seconds between renewals: a database session's expiry is extended, and a request the
     * gateway proxies or answers for forward-auth re-issues a jwt session, at most this often.
     * Default 24 hours.
     */
    updateAge?: number;
    /**
     * Seconds a session may last from its sign-in, however often it is renewed (callgate's
     * own; NextAuth has none). Unset (the default): no bound beyond maxAge of inactivity.
     */
    absoluteMaxAge?: number;
  }

  export interface JWTOptions {
    /** Seconds a token stays valid. Default 30 days (not session.maxAge: NextAuth's rule). */
    maxAge?: number;
  }

  export interface Theme {
    colorScheme?: "auto" | "dark" | "light";
    logo?: string;
    brandColor?: string;
    buttonText?: string;
  }

  /** The default export of auth.config.js: NextAuth's authOptions (NextAuthOptions). */
  export interface AuthConfig {
    providers: Provider[];
    callbacks?: CallbacksOptions;
    events?: EventCallbacks;
    pages?: PagesOptions;
    session?: SessionOptions;
    jwt?: JWTOptions;
    theme?: Theme;
    /** Force the __Secure-/__Host- cookie prefixes; default: decided by the URL scheme. */
    useSecureCookies?: boolean;
    /**
     * The session secret, as a NextAuth config sets it (`process.env.NEXTAUTH_SECRET`, from a
     * variable listed under `env` in the YAML config). It must equal the operator's secret
     * when one is set; without one it is the gateway's. A reload cannot change it.
     */
    secret?: string;
    /** callgate's: second factors and passkeys (docs/factors.md). */
    factors?: {
      /** Time-based one-time passwords; `{issuer}` names the gateway in the authenticator app. */
      totp?: boolean | { issuer?: string };
      /** WebAuthn credentials as a second factor (a Passkey provider turns this on by itself). */
      passkey?: boolean;
      /** Seconds after an authentication during which its session may change factors; default 600. */
      recentAuthentication?: number;
    };
    /** @deprecated Not used by the gateway: `gateway users import` or the Redis store hold users (docs/migrating-from-nextauth.md). */
    adapter?: unknown;
    /** @deprecated Not used by the gateway: `gateway serve --dev` opens the inspector, `log.level: debug` the log. */
    debug?: boolean;
    /** @deprecated Not used by the gateway: it writes structured logs itself (`log.format`, `log.level`). */
    logger?: unknown;
    /** @deprecated Not used by the gateway: cookie names are NextAuth's; `cookie_domain` in the YAML config shares them. */
    cookies?: unknown;
  }

  /** NextAuth's names for AuthConfig. */
  export type NextAuthOptions = AuthConfig;
  export type AuthOptions = AuthConfig;
}
