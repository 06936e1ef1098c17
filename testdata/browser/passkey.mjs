// Drives a real headless Chromium (Debian's, through playwright-core) through callgate's
// passkey and second-factor pages in front of a proxied app. A CDP virtual authenticator
// (an internal, resident-key, user-verifying platform authenticator that answers by itself)
// stands in for the device, so navigator.credentials.create and .get run for real against
// the gateway's WebAuthn ceremonies. SCENARIO picks what to do:
//
//   register-signin  sign in with the password, add a passkey named "Laptop" on the factors
//                    page, sign out, sign in with the passkey alone.
//   second-factor    the user's password sign-in needs a passkey too: the first time the
//                    challenge page enrols one, the second time it asks for it.
//   totp             the user's password sign-in needs an authenticator app: the challenge
//                    page enrols one (the test computes the codes), shows recovery codes
//                    and continues; the next sign-ins refuse a wrong code, take the next
//                    one, and take a recovery code once.
//   manage           on the factors page: add a passkey, prove it, set up an authenticator app (the
//                    test computes the code), make new recovery codes, remove the app;
//                    then, once the test has moved the clock past the recent-sign-in
//                    limit, removing the passkey sends the browser through the challenge
//                    and back, where the removal goes through.
//   step-up          sign in with the password and a new passkey, then (after the test has
//                    moved the gateway's clock on) open a route that wants a recent passkey:
//                    the challenge asks for it and sends the browser back to that route.
//
// Screenshots go to OUT_DIR. Every line printed is JSON: {"pause": NAME} lines ask the test
// to do something to the gateway and write a line to stdin when done; the last line is what
// the driver saw, which cmd/gateway/browser_passkey_test.go checks.
//
// Environment: CHROMIUM (executable), PROFILE_DIR, OUT_DIR, SCENARIO, ORIGIN (the gateway),
// START_URL, USERNAME, PASSWORD, and STEP_UP_URL for step-up.
import path from "node:path";
import readline from "node:readline";
import { env, launch } from "./launch.mjs";

const scenario = env("SCENARIO");
const origin = env("ORIGIN");
const start = env("START_URL");
const auth = origin + "/api/auth";

const stdin = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
// pause asks the test to act (it reads the line, with data) and returns the line it
// answers on stdin.
const pause = async (name, data = {}) => {
  console.log(JSON.stringify({ pause: name, ...data }));
  const { value, done } = await stdin.next();
  if (done) throw new Error(`stdin closed while paused at ${name}`);
  return value.trim();
};

const context = await launch();
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(30000);

const navigations = [];
page.on("framenavigated", (frame) => {
  if (frame === page.mainFrame()) navigations.push(frame.url());
});
const pageErrors = [];
page.on("pageerror", (err) => pageErrors.push(String(err)));
page.on("console", (msg) => {
  if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) pageErrors.push(msg.text());
});
// authPosts is every POST the page made to the auth routes, with its answer: what the
// test reads to see which ceremony ran, and what a failure report shows.
const authPosts = [];
page.on("response", async (res) => {
  const req = res.request();
  if (req.method() !== "POST" || !req.url().startsWith(auth + "/")) return;
  const entry = { path: new URL(req.url()).pathname, status: res.status() };
  authPosts.push(entry);
  if (res.status() >= 400) entry.body = await res.text().catch((err) => `(unreadable: ${err})`);
});

const screenshots = [];
const shot = async (name) => {
  const file = path.join(env("OUT_DIR"), `passkey-${scenario}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
};

const cdp = await context.newCDPSession(page);
await cdp.send("WebAuthn.enable");
const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
  options: {
    protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true,
    isUserVerified: true, automaticPresenceSimulation: true,
  },
});
// credentials is what the authenticator holds, in the test's terms.
const credentials = async () => {
  const { credentials: list } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  return list.map((c) => ({
    rpId: c.rpId, resident: c.isResidentCredential, signCount: c.signCount,
    userHandle: c.userHandle ? Buffer.from(c.userHandle, "base64").toString("utf8") : "",
  }));
};

const is = (want) => (u) => u.href === want;
const onPath = (p) => (u) => u.origin === origin && u.pathname === p;
const session = async () => (await page.request.get(auth + "/session")).json();
const present = async (selector) => (await page.$(selector)) !== null;
const text = async (selector) => ((await page.textContent(selector)) ?? "").trim();

// signInWithPassword opens start, is sent to the sign-in page, posts the credentials form
// and waits for the page that follows to match landed.
const signInWithPassword = async (landed, screenshot) => {
  await page.goto(start);
  await page.waitForSelector('input[name="username"]');
  const signinURL = page.url();
  const passkeyButton = await present("#passkey-signin");
  if (screenshot) await shot("signin");
  await page.fill('input[name="username"]', env("USERNAME"));
  await page.fill('input[name="password"]', env("PASSWORD"));
  await Promise.all([page.waitForURL(landed), page.click('form button[type="submit"]')]);
  return { signinURL, passkeyButton, landedURL: page.url() };
};

// signInWithPasskey opens start, is sent to the sign-in page and uses #passkey-signin
// only: no field is filled in.
const signInWithPasskey = async () => {
  await page.goto(start);
  await page.waitForSelector("#passkey-signin");
  const from = authPosts.length;
  await Promise.all([page.waitForURL(is(start)), page.click("#passkey-signin")]);
  await page.waitForSelector("#greeting");
  return { landedURL: page.url(), greeting: await text("#greeting"), posts: authPosts.slice(from).map((p) => p.path) };
};

// signOut confirms on the sign-out page and returns the session left afterwards.
const signOut = async () => {
  await page.goto(auth + "/signout");
  await Promise.all([
    page.waitForURL((u) => u.pathname !== "/api/auth/signout"),
    page.click('form button[type="submit"]'),
  ]);
  return session();
};

// addPasskey adds one on the factors page and returns the list as shown, then as the
// page renders it when loaded again.
const addPasskey = async (name) => {
  await page.goto(auth + "/factors");
  await page.waitForSelector("#passkey-add");
  await shot("factors");
  await page.fill("#passkey-name", name);
  await page.click("#passkey-add");
  await page.waitForSelector(`#passkeys li.passkey >> text=${name}`);
  const message = await text("#message");
  const shown = await passkeyList();
  await shot("factors-added");
  await page.reload();
  await page.waitForSelector("#passkeys");
  return { message, shown, reloaded: await passkeyList() };
};

const passkeyList = () =>
  page.$$eval("#passkeys li.passkey", (items) =>
    items.map((li) => ({
      id: li.dataset.id,
      name: li.querySelector(".passkey-name")?.textContent.trim() ?? "",
      lastUsed: li.querySelector(".passkey-last-used")?.textContent.trim() ?? "",
    })));

// challengePage describes the challenge page the browser is on.
const challengePage = async () => ({
  url: page.url(),
  heading: await text("h1"),
  enrolPasskey: await present("#enrol-passkey"),
  enrolTOTP: await present("#enrol-totp"),
  passkeyButton: await present("#passkey-button"),
  totpForm: await present("#totp-form"),
  recoveryForm: await present("#recovery-form"),
  session: await session(),
});

// landed describes the app's page the browser came back to.
const landed = async () => {
  await page.waitForSelector("#greeting");
  return { landedURL: page.url(), greeting: await text("#greeting"), session: await session() };
};

// refusedAt posts a challenge form and describes the challenge page it comes back to.
const refusedAt = async (form) => {
  await Promise.all([
    page.waitForURL((u) => u.pathname === "/api/auth/challenge" && u.searchParams.has("error")),
    page.click(`${form} button[type="submit"]`),
  ]);
  return { url: page.url(), error: await text(".error"), session: await session() };
};

const scenarios = {
  "register-signin": async () => {
    const password = await signInWithPassword(is(start), true);
    await page.waitForSelector("#greeting");
    const added = await addPasskey("Laptop");
    const held = await credentials();
    const sessionAfterSignOut = await signOut();
    const passkey = await signInWithPasskey();
    const sessionAfterPasskey = await session();
    await shot("landed");
    await page.goto(auth + "/factors");
    await page.waitForSelector("#passkeys");
    const afterUse = await passkeyList();
    return { password, added, credentials: held, sessionAfterSignOut, passkey, sessionAfterPasskey, afterUse };
  },

  "second-factor": async () => {
    const first = await signInWithPassword(onPath("/api/auth/challenge"), true);
    await page.waitForSelector("#enrol-passkey");
    const enrolPage = await challengePage();
    await shot("enrol");
    await page.fill("#passkey-name", "Laptop");
    await Promise.all([page.waitForURL(is(start)), page.click("#enrol-passkey")]);
    await page.waitForSelector("#greeting");
    const enrolled = { landedURL: page.url(), greeting: await text("#greeting"), session: await session() };
    const held = await credentials();
    const sessionAfterSignOut = await signOut();

    const second = await signInWithPassword(onPath("/api/auth/challenge"), false);
    await page.waitForSelector("#passkey-button");
    const challenge = await challengePage();
    await shot("challenge");
    await Promise.all([page.waitForURL(is(start)), page.click("#passkey-button")]);
    await page.waitForSelector("#greeting");
    const confirmed = { landedURL: page.url(), greeting: await text("#greeting"), session: await session() };
    await shot("landed");
    return { first, enrolPage, enrolled, credentials: held, sessionAfterSignOut, second, challenge, confirmed };
  },

  totp: async () => {
    const first = await signInWithPassword(onPath("/api/auth/challenge"), false);
    await page.waitForSelector("#enrol-totp");
    const enrolPage = await challengePage();
    await shot("enrol");
    await page.click("#enrol-totp");
    await page.waitForSelector("#totp-setup");
    const secret = await text("#totp-secret");
    const qr = (await page.getAttribute("#totp-qr", "src")) ?? "";
    await shot("setup");
    await page.fill("#totp-code", await pause("totp-code", { secret, step: "current" }));
    await page.click("#totp-confirm");
    await page.waitForSelector("#recovery-setup");
    const recoveryCodes = await page.$$eval("#recovery-codes li", (items) => items.map((li) => li.textContent.trim()));
    await shot("recovery-codes");
    await Promise.all([page.waitForURL(is(start)), page.click("#continue")]);
    const enrolled = await landed();
    const sessionAfterSignOut = await signOut();

    await signInWithPassword(onPath("/api/auth/challenge"), false);
    await page.waitForSelector("#totp-form");
    const challenge = await challengePage();
    await page.fill("#input-code", await pause("totp-code", { secret, step: "wrong" }));
    const wrongCode = await refusedAt("#totp-form");
    await shot("challenge-refused");
    await page.fill("#input-code", await pause("totp-code", { secret, step: "next" }));
    await Promise.all([page.waitForURL(is(start)), page.click('#totp-form button[type="submit"]')]);
    const confirmed = await landed();
    await signOut();

    await signInWithPassword(onPath("/api/auth/challenge"), false);
    await page.fill("#input-recovery", recoveryCodes[0] ?? "");
    await Promise.all([page.waitForURL(is(start)), page.click('#recovery-form button[type="submit"]')]);
    const recovered = await landed();
    await signOut();
    await signInWithPassword(onPath("/api/auth/challenge"), false);
    await page.fill("#input-recovery", recoveryCodes[0] ?? "");
    const reused = await refusedAt("#recovery-form");
    return { first, enrolPage, secret, qr: qr.slice(0, 22), recoveryCodes, enrolled, sessionAfterSignOut, challenge, wrongCode, confirmed, recovered, reused };
  },

  manage: async () => {
    const password = await signInWithPassword(is(start), false);
    await page.waitForSelector("#greeting");
    const added = await addPasskey("Laptop");

    // Now that the user has a passkey, changing factors needs it proved, not only the
    // password: the first change goes through the challenge and back.
    await Promise.all([page.waitForURL(onPath("/api/auth/challenge")), page.click("#totp-enroll")]);
    await page.waitForSelector("#passkey-button");
    await Promise.all([page.waitForURL(onPath("/api/auth/factors")), page.click("#passkey-button")]);
    await page.waitForSelector("#totp-enroll");
    await page.click("#totp-enroll");
    await page.waitForSelector("#totp-setup");
    const secret = await text("#totp-secret");
    await page.fill("#totp-code", await pause("totp-code", { secret, step: "current" }));
    await page.click("#totp-confirm");
    await page.waitForSelector("#recovery-setup");
    const codes = () => page.$$eval("#recovery-codes li", (items) => items.map((li) => li.textContent.trim()));
    const totp = {
      recoveryCodes: await codes(), status: await text("#totp-status"), message: await text("#message"),
      recoveryStatus: await text("#recovery-status"),
      removeShown: await page.isVisible("#totp-remove"), setupShown: await page.isVisible("#totp-setup"),
    };
    await shot("factors-totp");

    const before = totp.recoveryCodes.join();
    await page.click("#recovery-regenerate");
    await page.waitForFunction((old) =>
      [...document.querySelectorAll("#recovery-codes li")].map((li) => li.textContent.trim()).join() !== old, before);
    const regenerated = { recoveryCodes: await codes(), status: await text("#recovery-status"), message: await text("#message") };

    await page.reload();
    await page.waitForSelector("#passkeys");
    const reloaded = { passkeys: await passkeyList(), totpStatus: await text("#totp-status"), recoveryStatus: await text("#recovery-status") };

    await page.click("#totp-remove");
    await page.waitForSelector("#totp-remove", { state: "hidden" });
    const totpRemoved = { status: await text("#totp-status"), enrollShown: await page.isVisible("#totp-enroll"), message: await text("#message") };

    // The test moves the clock on: the sign-in is no longer recent enough to change factors.
    await pause("stale");
    await Promise.all([
      page.waitForURL(onPath("/api/auth/challenge")),
      page.click("#passkeys li.passkey button.passkey-remove"),
    ]);
    await page.waitForSelector("#passkey-button");
    const reauthenticate = await challengePage();
    await shot("reauthenticate");
    await Promise.all([page.waitForURL(onPath("/api/auth/factors")), page.click("#passkey-button")]);
    await page.waitForSelector("#passkeys li.passkey");
    await page.click("#passkeys li.passkey button.passkey-remove");
    await page.waitForSelector("#passkeys-empty");
    const passkeyRemoved = { passkeys: await passkeyList(), message: await text("#message") };
    await shot("factors-empty");
    await page.reload();
    await page.waitForSelector("#passkeys-empty");
    return { password, added, totp, regenerated, reloaded, totpRemoved, reauthenticate, passkeyRemoved, afterReload: await passkeyList() };
  },

  "step-up": async () => {
    const password = await signInWithPassword(onPath("/api/auth/challenge"), false);
    await page.waitForSelector("#enrol-passkey");
    await page.fill("#passkey-name", "Laptop");
    await Promise.all([page.waitForURL(is(start)), page.click("#enrol-passkey")]);
    await page.waitForSelector("#greeting");
    const sessionBefore = await session();
    // The test sets the gateway's clock right: the sign-in is now minutes old.
    await pause("signed-in");

    const stepUpURL = env("STEP_UP_URL");
    await page.goto(stepUpURL);
    await page.waitForSelector("#passkey-button");
    const challenge = await challengePage();
    await shot("challenge");
    await Promise.all([page.waitForURL(is(stepUpURL)), page.click("#passkey-button")]);
    await page.waitForSelector("#greeting");
    const confirmed = { landedURL: page.url(), greeting: await text("#greeting"), session: await session() };
    await shot("landed");
    return { password, sessionBefore, challenge, confirmed };
  },
};

try {
  const run = scenarios[scenario];
  if (!run) throw new Error(`unknown SCENARIO ${scenario}`);
  const result = await run();
  console.log(JSON.stringify({ scenario, ...result, navigations, authPosts, pageErrors, screenshots }));
} catch (err) {
  // What the page showed and what the gateway answered, for the test's failure message.
  let shown = "";
  try {
    await shot("failure");
    shown = (await page.textContent("body"))?.replace(/\s+/g, " ").trim() ?? "";
  } catch {}
  console.error(`${scenario} failed at ${page.url()}: ${err?.stack ?? err}\npage text: ${shown}\n` +
    `auth POSTs: ${JSON.stringify(authPosts)}\npage errors: ${JSON.stringify(pageErrors)}\nnavigations: ${JSON.stringify(navigations)}`);
  process.exitCode = 1;
} finally {
  await context.close();
  process.stdin.destroy();
}
