// callgate/test: the test API of `gateway test` (*.test.js / *.test.ts in the scripts
// directory). Tests call the callbacks of the auth config directly, with arguments built
// exactly as the gateway builds them.
const t = globalThis.__callgate_builtins.test;
if (!t) throw new Error('"callgate/test" can only be imported by *.test.js files run by gateway test');

const prefix = [];

/** Registers a test. fn may be async. */
export function test(name, fn) {
  if (typeof fn !== "function") throw new TypeError("test(name, fn): fn must be a function");
  t.register([...prefix, String(name)].join(" › "), fn);
}
export const it = test;

/** Groups tests under a name. */
export function describe(name, fn) {
  prefix.push(String(name));
  try { fn(); } finally { prefix.pop(); }
}

export class AssertionError extends Error {
  constructor(message) { super(message); this.name = "AssertionError"; }
}

function show(v) {
  if (v === undefined) return "undefined";
  if (typeof v === "function") return "[Function " + (v.name || "anonymous") + "]";
  if (typeof v === "bigint") return v + "n";
  if (v instanceof Error) return v.name + ": " + v.message;
  try { return JSON.stringify(v); } catch { return String(v); }
}

function equal(a, b) {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  const ka = Object.keys(a).filter((k) => a[k] !== undefined);
  const kb = Object.keys(b).filter((k) => b[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && equal(a[k], b[k]));
}

function matchesMessage(err, m) {
  if (m === undefined) return true;
  const msg = err && typeof err === "object" ? String(err.message) : String(err);
  return m instanceof RegExp ? m.test(msg) : msg.includes(String(m));
}

function matchers(received, not) {
  const check = (pass, name, expected) => {
    if (pass === not) {
      throw new AssertionError(
        `expect(received)${not ? ".not" : ""}.${name}\n\nExpected: ${not ? "not " : ""}${expected}\nReceived: ${show(received)}`);
    }
  };
  return {
    toBe(e) { check(Object.is(received, e), "toBe", show(e)); },
    toEqual(e) { check(equal(received, e), "toEqual", show(e)); },
    toStrictEqual(e) { check(equal(received, e), "toStrictEqual", show(e)); },
    toBeTruthy() { check(!!received, "toBeTruthy", "truthy"); },
    toBeFalsy() { check(!received, "toBeFalsy", "falsy"); },
    toBeNull() { check(received === null, "toBeNull", "null"); },
    toBeUndefined() { check(received === undefined, "toBeUndefined", "undefined"); },
    toBeDefined() { check(received !== undefined, "toBeDefined", "defined"); },
    toBeGreaterThan(n) { check(received > n, "toBeGreaterThan", "> " + show(n)); },
    toBeLessThan(n) { check(received < n, "toBeLessThan", "< " + show(n)); },
    toContain(e) {
      check(received != null && typeof received.includes === "function" && received.includes(e), "toContain", show(e));
    },
    toMatch(e) {
      check(typeof received === "string" && (e instanceof RegExp ? e.test(received) : received.includes(e)), "toMatch", String(e));
    },
    toHaveProperty(k, ...val) {
      const has = received != null && Object.prototype.hasOwnProperty.call(received, k) && (val.length === 0 || equal(received[k], val[0]));
      check(has, "toHaveProperty", val.length === 0 ? show(k) : `${show(k)} = ${show(val[0])}`);
    },
    toThrow(m) {
      let threw = false, err;
      try { received(); } catch (e) { threw = true; err = e; }
      check(threw && matchesMessage(err, m), "toThrow", m === undefined ? "a throw" : String(m));
    },
  };
}

function settled(promise, rejects) {
  const out = {};
  for (const name of Object.keys(matchers(undefined, false))) {
    out[name] = (...args) => Promise.resolve(promise).then(
      (v) => {
        if (rejects) throw new AssertionError("expect(promise).rejects: the promise resolved with " + show(v));
        return matchers(v, false)[name](...args);
      },
      (e) => {
        if (!rejects) throw new AssertionError("expect(promise).resolves: the promise rejected with " + show(e));
        return matchers(e, false)[name](...args);
      });
  }
  return out;
}

/** Jest-style assertions: toBe, toEqual, toBeTruthy, toContain, toThrow, .not, .resolves, .rejects, ... */
export function expect(received) {
  const m = matchers(received, false);
  m.not = matchers(received, true);
  m.resolves = settled(received, false);
  m.rejects = settled(received, true);
  return m;
}

const DAY = 24 * 60 * 60;

/** A user as authorize returns it. */
export function user(overrides) {
  return { id: "65f0c0ffee0000000000a11c", name: "Jane Doe", email: "jane@example.com", ...overrides };
}

/** The account the gateway builds for a credentials sign-in. */
export function account(u = user(), provider = "credentials") {
  return { providerAccountId: u.id === undefined ? undefined : String(u.id), type: "credentials", provider };
}

/** A decoded session token as the jwt callback receives it on a session read. */
export function token(overrides) {
  const now = Math.floor(Date.now() / 1000);
  return { name: "Jane Doe", email: "jane@example.com", sub: "65f0c0ffee0000000000a11c", iat: now, exp: now + 30 * DAY, jti: crypto.randomUUID(), ...overrides };
}

/** The default session the gateway builds from a token before the session callback. */
export function session(tok = token(), overrides) {
  const u = {};
  for (const [claim, field] of [["name", "name"], ["email", "email"], ["picture", "image"]]) {
    if (claim in tok) u[field] = tok[claim];
  }
  return { user: u, expires: new Date(Date.now() + 30 * DAY * 1000).toISOString(), ...overrides };
}

/** authorize's second argument: the incoming request, as the gateway passes it. */
export function request(overrides) {
  return {
    query: {}, body: {}, method: "POST",
    headers: { host: "localhost:3000", "content-type": "application/x-www-form-urlencoded" },
    ...overrides,
  };
}

function tokenFromUser(u) {
  const tok = {};
  for (const [claim, field] of [["name", "name"], ["email", "email"], ["picture", "image"]]) {
    if (field in u) tok[claim] = u[field];
  }
  if (u.id !== undefined && u.id !== null) tok.sub = String(u.id);
  return tok;
}

/** Arguments of each callback, per trigger, shaped as the gateway builds them. */
export const args = {
  jwt: {
    /** jwt on sign-in: {token, user, account, isNewUser, trigger: "signIn"}. */
    signIn({ user: u = user(), provider = "credentials" } = {}) {
      return { token: tokenFromUser(u), user: u, account: account(u, provider), isNewUser: false, trigger: "signIn" };
    },
    /** jwt on a session read: {token, session: undefined}. */
    session({ token: tok = token() } = {}) {
      return { token: tok, session: undefined };
    },
    /** jwt on update(): {token, trigger: "update", session}. */
    update({ token: tok = token(), session: s } = {}) {
      return { token: tok, trigger: "update", session: s };
    },
  },
  /** session: {session, token}. */
  session({ token: tok = token(), session: s } = {}) {
    return { session: s ?? session(tok), token: tok };
  },
  /** signIn: {user, account, credentials}. */
  signIn({ user: u = user(), credentials = {}, provider = "credentials" } = {}) {
    return { user: u, account: account(u, provider), credentials };
  },
  /** redirect: {url, baseUrl}. */
  redirect({ url = "http://localhost:3000/", baseUrl = "http://localhost:3000" } = {}) {
    return { url, baseUrl };
  },
};

/** Runs the authorize function of a credentials provider with a fake request. */
export async function authorize(config, credentials, { provider = "credentials", request: req } = {}) {
  const p = (config.providers ?? []).find((x) => (x.id ?? "credentials") === provider);
  if (!p) throw new Error(`no provider with id "${provider}" in the config`);
  return p.authorize(credentials, req ?? request({ body: credentials }));
}

/**
 * Replaces the user store that callgate/store reads during this test file. Each user:
 * {id, username, email, name, role, password} with a plain-text password (hashed here).
 */
export function mockUsers(list) {
  t.setUsers(list);
}
