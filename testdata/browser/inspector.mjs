// Drives a real headless Chromium (Debian's, through playwright-core) through a sign-in
// while the callback inspector watches: page A opens /-/inspector and waits until it is
// live; page B signs in with the credentials form, then reads /api/auth/session. Page A
// must draw both flows as they happen, without a reload. Beside page A, the raw event
// stream is read with fetch in the same page, and at the end the JSON snapshot, so that
// the Go test (cmd/gateway/browser_inspector_test.go) can look for secrets in all three.
// Saves to OUT_DIR: screenshots of page A after the sign-in and after the session read,
// its HTML (inspector.html), the raw stream (events.txt) and the snapshot (flows.json).
// Prints one JSON line with what it saw.
//
// Environment: CHROMIUM (executable), BASE_URL, USERNAME, PASSWORD, OUT_DIR, PROFILE_DIR.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { env, launch } from "./launch.mjs";

const base = env("BASE_URL");
const out = env("OUT_DIR");
const wait = 30000; // a busy 2-core machine under the race detector

// newestFlow is the newest flow on page A for "METHOD /route" that has ended and has a
// step for each callback named, or null: evaluated in the page.
const newestFlow = ([route, callbacks]) => {
  for (const li of document.querySelectorAll("#flows > li.flow")) {
    if (li.querySelector(".route")?.textContent !== route || li.dataset.done !== "true") continue;
    if (callbacks.every((c) => li.querySelector(`li.step.callback[data-callback="${c}"]`))) return li.dataset.flow;
  }
  return null;
};

// flowView reads one flow as page A draws it: its steps in order.
const flowView = (id) => {
  const li = document.querySelector(`#flows > li.flow[data-flow="${id}"]`);
  return {
    id,
    route: li.querySelector(".route").textContent,
    status: li.querySelector(".status").textContent,
    steps: [...li.querySelectorAll("ol.timeline > li.step")].map((s) => ({
      callback: s.dataset.callback ?? "",
      core: s.dataset.core ?? "",
      badge: s.querySelector("h3 .badge")?.textContent ?? "",
      args: [...s.querySelectorAll("pre.args")].map((p) => p.textContent),
      result: s.querySelector("pre.result")?.textContent ?? "",
    })),
  };
};

const context = await launch();
try {
  const inspector = context.pages()[0] ?? (await context.newPage());
  inspector.setDefaultTimeout(wait);
  let navigations = 0;
  inspector.on("framenavigated", (frame) => {
    if (frame === inspector.mainFrame()) navigations++;
  });
  await inspector.goto(base + "/-/inspector");
  await inspector.waitForSelector("#status.live");
  // A mark in the page's global scope: gone if the page is ever reloaded.
  await inspector.evaluate(() => { window.sameDocument = true; });
  // The raw stream, as a second reader in the same page, from the start of the log.
  await inspector.evaluate(() => {
    window.rawEvents = "";
    window.stopRaw = new AbortController();
    fetch("/-/inspector/events", { signal: window.stopRaw.signal }).then(async (res) => {
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        window.rawEvents += dec.decode(value, { stream: true });
      }
    }).catch(() => {});
  });

  const app = await context.newPage();
  app.setDefaultTimeout(wait);
  await app.goto(base + "/api/auth/signin");
  await app.waitForSelector('input[name="password"]');
  const csrfToken = await app.inputValue('input[name="csrfToken"]');
  await app.fill('input[name="username"]', env("USERNAME"));
  await app.fill('input[name="password"]', env("PASSWORD"));
  await Promise.all([
    app.waitForURL((u) => !u.pathname.startsWith("/api/auth/signin") && !u.pathname.startsWith("/api/auth/callback")),
    app.click('button[type="submit"]'),
  ]);
  const landedURL = app.url();

  const signInFlow = await (await inspector.waitForFunction(newestFlow,
    ["POST /api/auth/callback/credentials", ["authorize", "callbacks.jwt"]])).jsonValue();
  const signInShot = path.join(out, "inspector-signin.png");
  await inspector.screenshot({ path: signInShot, fullPage: true });

  // Flows for /api/auth/session drawn before this read (the landing page may read it too).
  const before = await inspector.evaluate(() => [...document.querySelectorAll("#flows > li.flow")]
    .filter((li) => li.querySelector(".route")?.textContent === "GET /api/auth/session").map((li) => li.dataset.flow));
  const res = await app.goto(base + "/api/auth/session");
  const session = await res.json();
  const sessionFlow = await (await inspector.waitForFunction(([before, route, callbacks]) => {
    for (const li of document.querySelectorAll("#flows > li.flow")) {
      if (before.includes(li.dataset.flow) || li.querySelector(".route")?.textContent !== route || li.dataset.done !== "true") continue;
      if (callbacks.every((c) => li.querySelector(`li.step.callback[data-callback="${c}"]`))) return li.dataset.flow;
    }
    return null;
  }, [before, "GET /api/auth/session", ["callbacks.jwt", "callbacks.session"]])).jsonValue();
  const sessionShot = path.join(out, "inspector-session.png");
  await inspector.screenshot({ path: sessionShot, fullPage: true });

  const flows = [await inspector.evaluate(flowView, signInFlow), await inspector.evaluate(flowView, sessionFlow)];
  const sameDocument = await inspector.evaluate(() => window.sameDocument === true);

  // The raw reader has seen the session read end too before it stops.
  await inspector.waitForFunction((id) => window.rawEvents.includes(`"type":"end","start":{"id":${id},`), Number(sessionFlow));
  const rawEvents = await inspector.evaluate(() => { window.stopRaw.abort(); return window.rawEvents; });
  const snapshot = await inspector.evaluate(() => fetch("/-/inspector/flows").then((r) => r.text()));
  const html = await inspector.content();
  const files = {
    html: path.join(out, "inspector.html"),
    events: path.join(out, "events.txt"),
    flows: path.join(out, "flows.json"),
  };
  await writeFile(files.html, html);
  await writeFile(files.events, rawEvents);
  await writeFile(files.flows, snapshot);

  const sessionCookie = (await context.cookies(base)).find((c) => c.name === "next-auth.session-token")?.value ?? "";
  console.log(JSON.stringify({
    landedURL, session, flows, sameDocument, navigations, csrfToken, sessionCookie, files,
    screenshots: [signInShot, sessionShot],
  }));
} finally {
  await context.close();
}
