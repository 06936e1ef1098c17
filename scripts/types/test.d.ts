// callgate/test: the test API of `gateway test` (*.test.js / *.test.ts files). The argument
// builders return the callbacks' own argument types, so a test that calls a typed config's
// callbacks gets typed results.

declare module "callgate/test" {
  import type {
    Account, AuthConfig, JWT, JWTParams, Provider, RedirectParams, RequestInternal, Session,
    SessionParams, SignInParams, User,
  } from "callgate";

  /** Registers a test; fn may be async. A throw or a rejected promise fails it. */
  export function test(name: string, fn: () => unknown): void;
  export const it: typeof test;
  /** Groups the tests fn registers under a name ("group › test"). */
  export function describe(name: string, fn: () => void): void;

  /** What a failed expectation throws. */
  export class AssertionError extends Error {}

  /** Jest's matchers, the subset callgate runs. R is what each returns. */
  export interface Matchers<R> {
    toBe(expected: unknown): R;
    toEqual(expected: unknown): R;
    toStrictEqual(expected: unknown): R;
    toBeTruthy(): R;
    toBeFalsy(): R;
    toBeNull(): R;
    toBeUndefined(): R;
    toBeDefined(): R;
    toBeGreaterThan(n: number | bigint): R;
    toBeLessThan(n: number | bigint): R;
    toContain(item: unknown): R;
    toMatch(expected: string | RegExp): R;
    toHaveProperty(key: string, value?: unknown): R;
    /** received must be a function; it is called and must throw (a message that includes m). */
    toThrow(m?: string | RegExp): R;
  }
  export interface Expectation extends Matchers<void> {
    not: Matchers<void>;
    /** The matchers applied to what the promise resolves to: await them. */
    resolves: Matchers<Promise<void>>;
    /** The matchers applied to what the promise rejects with: await them. */
    rejects: Matchers<Promise<void>>;
  }
  export function expect(received: unknown): Expectation;

  /** A user as authorize returns it, with overrides. */
  export function user<O extends Partial<User> = {}>(overrides?: O): User & O;
  /** The account the gateway builds for a credentials sign-in. */
  export function account(user?: User, provider?: string): Account;
  /** A decoded session token as the jwt callback receives it on a session read. */
  export function token<O extends Partial<JWT> = {}>(overrides?: O): JWT & O;
  /** The default session the gateway builds from a token before the session callback. */
  export function session(token?: JWT, overrides?: Partial<Session>): Session;
  /** authorize's second argument: the incoming request, as the gateway passes it. */
  export function request(overrides?: Partial<RequestInternal>): RequestInternal;

  /** The arguments of each callback, per trigger, as the gateway builds them. */
  export const args: {
    jwt: {
      /** jwt on sign-in: {token, user, account, isNewUser, trigger: "signIn"}. */
      signIn(options?: { user?: User; provider?: string }): JWTParams;
      /** jwt on a session read: {token, session: undefined}. */
      session(options?: { token?: JWT }): JWTParams;
      /** jwt on update(): {token, trigger: "update", session}. */
      update(options?: { token?: JWT; session?: unknown }): JWTParams;
    };
    /** session: {session, token}. */
    session(options?: { token?: JWT; session?: Session }): SessionParams;
    /** signIn: {user, account, credentials}. */
    signIn(options?: { user?: User; credentials?: Record<string, string>; provider?: string }): SignInParams;
    /** redirect: {url, baseUrl}. */
    redirect(options?: Partial<RedirectParams>): RedirectParams;
  };

  /** Runs the authorize function of a credentials provider with a fake request. */
  export function authorize(
    config: AuthConfig | { providers: Provider[] },
    credentials: Record<string, string>,
    options?: { provider?: string; request?: RequestInternal },
  ): Promise<User | null | false | undefined>;

  /** A user of mockUsers: the password is plain text (hashed for the test). */
  export interface MockUser {
    id?: string;
    _id?: string;
    username?: string;
    email?: string;
    name?: string;
    role?: string;
    password?: string;
  }
  /** Replaces the user store that callgate/store reads during this test file. */
  export function mockUsers(list: MockUser[]): void;
}
