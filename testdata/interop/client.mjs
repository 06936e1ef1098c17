// client.mjs drives the unmodified next-auth v4 client (next-auth/react) against a running
// server, the way a browser page would, and prints ONE JSON document describing what happened:
//
//   node client.mjs <origin>        e.g. node client.mjs http://127.0.0.1:3000
//
// Output: {"origin": …, "steps": [{"step", "result", "error"?, "requests": [exchange…]}]} where
// each exchange is {method, path, status, sentCookies: [name…], setCookies: [{name, deleted}]}.
// The steps repeat the client calls recorded against real NextAuth in nextauth-client-trace.json,
// in the same order, so a test can compare the two request by request. The users are the ones in
// testdata/users.json (jatin / secret).
//
// The server must be the only origin this script talks to; its cookies are kept in a jar.
// Exit status 1 (after printing the document) when a client call threw.

const origin = process.argv[2];
if (!origin || !/^https?:\/\/[^/]+$/.test(origin)) {
  process.stderr.write("usage: node client.mjs <origin, e.g. http://127.0.0.1:3000>\n");
  process.exit(2);
}

// The client reads NEXTAUTH_URL once, when its module is evaluated: set it first, import after.
// Without a `window` the client uses this absolute URL for every fetch; with one it would use a
// relative path, which Node's fetch cannot resolve. So no window/location/localStorage stand-ins
// are installed: every call below passes callbackUrl and redirect:false, the only reasons the
// client would touch `window`, and its broadcast to other tabs is skipped when `window` is absent.
process.env.NEXTAUTH_URL = `${origin}/api/auth`;

const exchanges = [];
installCookieJar(origin, exchanges);

const { getProviders, getCsrfToken, getSession, signIn, signOut } = await import("next-auth/react");

const callbackUrl = `${origin}/login`;
const steps = [];
let failed = false;

async function step(name, call) {
  const first = exchanges.length;
  const record = { step: name, result: null };
  try {
    const result = await call();
    record.result = result === undefined ? null : result;
  } catch (err) {
    record.error = String(err?.stack ?? err);
    failed = true;
  }
  record.requests = exchanges.slice(first);
  steps.push(record);
}

// (a) what a page does before anyone signs in
await step("getProviders", () => getProviders());
await step("getSessionBeforeSignIn", () => getSession());
await step("getCsrfToken", () => getCsrfToken());
// (b), (c) failed sign-ins
await step("signInWrongPassword", () =>
  signIn("credentials", { redirect: false, username: "jatin", password: "secret-wrong", callbackUrl }),
);
await step("signInUnknownUser", () =>
  signIn("credentials", { redirect: false, username: "nosuchuser", password: "whatever", callbackUrl }),
);
// (d) sign-in, then the session it created
await step("signIn", () => signIn("credentials", { redirect: false, username: "jatin", password: "secret", callbackUrl }));
await step("getSession", () => getSession());
// (e) sign-out, then no session
await step("signOut", () => signOut({ redirect: false, callbackUrl }));
await step("getSessionAfterSignOut", () => getSession());

process.stdout.write(JSON.stringify({ origin, steps }, null, 2) + "\n");
if (failed) process.exitCode = 1;

// installCookieJar wraps globalThis.fetch with what a browser adds for a same-origin request:
// cookies the origin set earlier go back in a Cookie header; Set-Cookie replaces them, and
// Max-Age<=0 or an Expires in the past removes them. Every request is recorded in `log`.
// All of NextAuth's cookies use Path=/ on one host, so path and domain matching are not needed;
// a request to another origin is refused so that a wrong URL shows up as an error, not as a leak.
function installCookieJar(jarOrigin, log) {
  const jar = new Map(); // name -> value; a Map keeps creation order, as browsers order cookies
  const realFetch = globalThis.fetch;

  globalThis.fetch = async (input, init = {}) => {
    const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
    if (url.origin !== jarOrigin) throw new Error(`client.mjs: refusing a request to ${url.origin}, not ${jarOrigin}`);

    const headers = new Headers(init.headers);
    const sentCookies = [...jar.keys()];
    if (sentCookies.length > 0) {
      headers.set("cookie", [...jar].map(([name, value]) => `${name}=${value}`).join("; "));
    }
    const res = await realFetch(url, { ...init, headers });

    const setCookies = [];
    for (const header of res.headers.getSetCookie()) {
      const cookie = parseSetCookie(header);
      if (!cookie) continue;
      setCookies.push({ name: cookie.name, deleted: cookie.deleted });
      if (cookie.deleted) jar.delete(cookie.name);
      else jar.set(cookie.name, cookie.value);
    }
    log.push({
      method: (init.method ?? "GET").toUpperCase(),
      path: url.pathname + url.search,
      status: res.status,
      sentCookies,
      setCookies,
    });
    return res;
  };
}

// parseSetCookie reads the name, the raw value and whether the header deletes the cookie.
// Values stay as sent (percent-encoded), because the browser sends them back unchanged.
function parseSetCookie(header) {
  const [pair, ...attributes] = header.split(";");
  const eq = pair.indexOf("=");
  if (eq <= 0) return null;
  const name = pair.slice(0, eq).trim();
  const value = pair.slice(eq + 1).trim();
  let maxAge;
  let expires;
  for (const attribute of attributes) {
    const [key, ...rest] = attribute.split("=");
    const attrName = key.trim().toLowerCase();
    const attrValue = rest.join("=").trim();
    if (attrName === "max-age") maxAge = Number(attrValue);
    if (attrName === "expires") expires = Date.parse(attrValue);
  }
  // Max-Age wins over Expires when both are present (RFC 6265 §5.3).
  const deleted = maxAge !== undefined ? maxAge <= 0 : expires !== undefined && expires <= Date.now();
  return { name, value, deleted };
}
