// The built-in modules and globals of callgate scripts. Nothing else is importable:
// only these modules and relative files inside the scripts directory.

declare module "callgate/providers/credentials" {
  import type { CredentialsConfig, CredentialsOptions, CredentialInput } from "callgate";
  /** Builds a credentials provider, like next-auth/providers/credentials. */
  export default function Credentials<C extends Record<string, CredentialInput>>(
    options: CredentialsOptions<C>,
  ): CredentialsConfig<C>;
}

declare module "callgate/providers/passkey" {
  import type { PasskeyConfig, PasskeyOptions } from "callgate";
  /**
   * Builds the passkey (WebAuthn) provider: sign-in with a passkey instead of a password, on
   * the gateway's own origin. At most one per config.
   */
  export default function Passkey(options?: PasskeyOptions): PasskeyConfig;
}

declare module "callgate/providers/email" {
  import type { EmailConfig, EmailOptions } from "callgate";
  /** Builds an e-mail (magic link) provider, like next-auth/providers/email. Needs a store. */
  export default function Email(options?: EmailOptions): EmailConfig;
}

declare module "callgate/providers/oauth" {
  import type { OAuthConfig, OAuthOptions } from "callgate";
  /** Builds a plain OAuth 2 provider: authorization, token and userinfo URLs. */
  export default function OAuth(options: Partial<OAuthOptions>): OAuthConfig;
}

declare module "callgate/providers/oidc" {
  import type { OAuthConfig, OAuthOptions } from "callgate";
  /** Builds a generic OpenID Connect provider: issuer (or wellKnown), clientId, clientSecret. */
  export default function OIDC(options: Partial<OAuthOptions>): OAuthConfig;
}

declare module "callgate/providers/github" {
  import type { OAuthConfig, OAuthOptions } from "callgate";
  /** Builds GitHub (OAuth app). enterprise.baseUrl for GitHub Enterprise Server. */
  export default function GitHub(options: Partial<OAuthOptions>  & { enterprise?: { baseUrl?: string } }): OAuthConfig;
}

declare module "callgate/providers/google" {
  import type { OAuthConfig, OAuthOptions } from "callgate";
  /** Builds Google (OpenID Connect). */
  export default function Google(options: Partial<OAuthOptions>): OAuthConfig;
}

declare module "callgate/providers/azure-ad" {
  import type { OAuthConfig, OAuthOptions } from "callgate";
  /** Builds Microsoft Entra ID under its old name; tenantId is required. */
  export default function AzureAD(options: Partial<OAuthOptions>  & { tenantId?: string }): OAuthConfig;
}

declare module "callgate/providers/microsoft-entra-id" {
  import type { OAuthConfig, OAuthOptions } from "callgate";
  /** Builds Microsoft Entra ID; tenantId or issuer is required. */
  export default function MicrosoftEntraID(options: Partial<OAuthOptions>  & { tenantId?: string }): OAuthConfig;
}

declare module "callgate/providers/gitlab" {
  import type { OAuthConfig, OAuthOptions } from "callgate";
  /** Builds GitLab (OAuth). baseUrl for self-managed GitLab. */
  export default function GitLab(options: Partial<OAuthOptions>  & { baseUrl?: string }): OAuthConfig;
}

declare module "callgate/providers/keycloak" {
  import type { OAuthConfig, OAuthOptions } from "callgate";
  /** Builds Keycloak; issuer is https://<host>/realms/<realm>. */
  export default function Keycloak(options: Partial<OAuthOptions>): OAuthConfig;
}

declare module "callgate/providers/auth0" {
  import type { OAuthConfig, OAuthOptions } from "callgate";
  /** Builds Auth0; issuer is https://<tenant>.<region>.auth0.com/. */
  export default function Auth0(options: Partial<OAuthOptions>): OAuthConfig;
}

declare module "bcryptjs" {
  type Callback<T> = (err: Error | null, result: T) => void;
  /** Checks a password against a $2a$, $2b$ or $2y$ hash. A malformed hash gives false. */
  export function compare(s: string, hash: string): Promise<boolean>;
  export function compare(s: string, hash: string, callback: Callback<boolean>): void;
  export function compareSync(s: string, hash: string): boolean;
  /**
   * Hashes a password. `salt` is a number of rounds (4–31, default 10) or a salt string, of
   * which only the cost is used: the host always draws a fresh random salt.
   */
  export function hash(s: string, salt?: number | string): Promise<string>;
  export function hash(s: string, salt: number | string, callback: Callback<string>): void;
  export function hashSync(s: string, salt?: number | string): string;
  export function genSalt(rounds?: number): Promise<string>;
  export function genSalt(rounds: number, callback: Callback<string>): void;
  export function genSalt(callback: Callback<string>): void;
  export function genSaltSync(rounds?: number): string;
  export function getRounds(hash: string): number;
  export function getSalt(hash: string): string;
  const bcrypt: {
    compare: typeof compare;
    compareSync: typeof compareSync;
    hash: typeof hash;
    hashSync: typeof hashSync;
    genSalt: typeof genSalt;
    genSaltSync: typeof genSaltSync;
    getRounds: typeof getRounds;
    getSalt: typeof getSalt;
  };
  export default bcrypt;
}

declare module "callgate/crypto" {
  /** Lower-case hex (the default) or base64url without padding. */
  export type Encoding = "hex" | "base64url";
  /** n random bytes (1 to 1024, else a TypeError) from the system's secure generator. */
  export function randomBytes(n: number, encoding?: Encoding): string;
  /** A random (version 4) UUID. */
  export function randomUUID(): string;
  /** The SHA-256 digest of the string's UTF-8 bytes. */
  export function sha256(data: string, encoding?: Encoding): string;
  /** The HMAC of data under key (both as UTF-8). Another algorithm is a TypeError. */
  export function hmac(algorithm: "sha256" | "sha512" | "sha1", key: string, data: string, encoding?: Encoding): string;
  /**
   * Whether a and b are equal, in a time that depends on their lengths only, never on where
   * they differ: compare MACs, codes and tokens with it. Different lengths: false.
   */
  export function timingSafeEqual(a: string, b: string): boolean;
  const crypto: {
    randomBytes: typeof randomBytes;
    randomUUID: typeof randomUUID;
    sha256: typeof sha256;
    hmac: typeof hmac;
    timingSafeEqual: typeof timingSafeEqual;
  };
  export default crypto;
}

declare module "callgate/store" {
  /** A user as stored by the gateway, shaped like a MongoDB document. */
  export interface UserDocument {
    _id: string;
    username: string;
    name: string;
    email: string;
    role: string;
    /** The bcrypt hash. */
    password: string;
    /** Any other field of an imported record. */
    [extra: string]: unknown;
  }
  /** One or more of these; all given fields must match. Unknown fields are an error. */
  export interface UserQuery {
    username?: string;
    email?: string;
    _id?: string;
    id?: string;
  }
  /**
   * A new user for users.create: username is required; any field not listed is kept as an
   * extra field (JSON values; names starting with "$" are refused).
   */
  export interface NewUser {
    /** 24 lowercase hex characters; generated when left out. */
    _id?: string;
    username: string;
    name?: string | null;
    /** Unique, compared case-insensitively. */
    email?: string | null;
    role?: string | null;
    /** A plain password: the gateway stores its bcrypt hash (cost 10). */
    password?: string | null;
    /** An existing bcrypt hash ($2a$, $2b$ or $2y$), stored as it is. Not with password. */
    passwordHash?: string;
    [extra: string]: unknown;
  }
  /**
   * The fields to set. null clears name, email, role or password (no password sign-in);
   * on an extra field it stores null. _id cannot be changed nor username removed.
   */
  export interface UserChanges {
    username?: string;
    name?: string | null;
    email?: string | null;
    role?: string | null;
    password?: string | null;
    passwordHash?: string;
    [extra: string]: unknown;
  }
  /** MongoDB's update operators; $unset removes fields (its values are ignored). */
  export interface UserUpdateOperators {
    $set?: UserChanges;
    $unset?: { [field: string]: unknown };
  }
  export const users: {
    /** Resolves to a fresh copy of the user, or null. Rejects when the store fails. */
    findOne(query: UserQuery): Promise<UserDocument | null>;
    /**
     * Stores a new user and resolves to its document, after events.createUser has run.
     * Rejects with an Error when the username or e-mail is taken
     * (`users.create: username "jatin" is already taken`) or a field is invalid.
     */
    create(user: NewUser): Promise<UserDocument>;
    /**
     * Changes the one user query matches, keeping its _id, and resolves to its new
     * document, after events.updateUser has run. Rejects with an Error when no user matches,
     * a new username or e-mail is taken, or a field is invalid; a refused update changes
     * nothing.
     */
    update(query: UserQuery, changes: UserChanges | UserUpdateOperators): Promise<UserDocument>;
  };
  /** One of a user's factors, as factors.list describes it: never a secret. */
  export type Factor =
    | {
        type: "passkey";
        /** The credential ID, base64url. */
        id: string;
        /** What the user called it; may be "". */
        name: string;
        /** ISO 8601, UTC. */
        createdAt: string;
        /** ISO 8601, UTC; null until the first sign-in with it. */
        lastUsedAt: string | null;
      }
    | { type: "totp"; createdAt: string }
    | { type: "recovery"; remaining: number };
  export const factors: {
    /**
     * Resolves to the user's factors: passkeys (oldest first), then TOTP when enrolled, then
     * the recovery codes when any are left. [] for a user with none. Rejects when the store
     * fails; throws when userId is not a non-empty string or no store is configured.
     */
    list(userId: string): Promise<Factor[]>;
  };
  const store: { users: typeof users; factors: typeof factors };
  export default store;
}

interface Console {
  log(...data: any[]): void;
  info(...data: any[]): void;
  warn(...data: any[]): void;
  error(...data: any[]): void;
  debug(...data: any[]): void;
}
/** Goes to the gateway log, tagged with the callback; at most 8 KiB per call. */
declare var console: Console;

/** Only the environment variables the operator listed, read-only. */
declare var process: { readonly env: Readonly<Record<string, string | undefined>> };

declare var crypto: { randomUUID(): string };
declare function atob(data: string): string;
declare function btoa(data: string): string;

/** The headers of a fetch response: names lower-cased, repeated values joined with ", ". */
interface Headers {
  get(name: string): string | null;
  has(name: string): boolean;
  forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown): void;
  /** The names, sorted. */
  keys(): string[];
  /** [name, value] pairs, sorted by name. */
  entries(): [string, string][];
}

/** A fetch response, its body already read (at most script.fetch.max_response_bytes). */
interface Response {
  readonly status: number;
  readonly statusText: string;
  /** status is 2xx. */
  readonly ok: boolean;
  /** The final URL, after redirects. */
  readonly url: string;
  readonly headers: Headers;
  /** The body; a body can be read once. */
  text(): Promise<string>;
  /** The body parsed as JSON; a SyntaxError rejects. */
  json(): Promise<any>;
}

/** fetch's second argument. */
interface RequestInit {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as it is (at most 1 MiB): JSON.stringify an object first. */
  body?: string;
}

/**
 * An HTTP(S) request from a callback, to the hosts of script.fetch.allow only (redirects
 * too), under script.fetch.timeout and the callback's deadline. There are no Request,
 * Response or Headers constructors: only fetch and what it resolves to.
 */
declare function fetch(input: string | { url: string }, init?: RequestInit): Promise<Response>;
