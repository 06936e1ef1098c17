// Drives a real headless Chromium (Debian's, through playwright-core) through callgate's
// sign-in in front of a proxied app: open a protected URL, land on the sign-in page, sign in
// with the form, land back on the original URL. Screenshots go to OUT_DIR. Prints one JSON
// line with what it saw; the Go test (cmd/gateway/browser_test.go) checks it.
//
// Environment: CHROMIUM (executable), START_URL, USERNAME, PASSWORD, OUT_DIR, PROFILE_DIR.
import path from "node:path";
import { env, launch } from "./launch.mjs";

const context = await launch();
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15000);
  const start = env("START_URL");
  await page.goto(start);
  await page.waitForSelector('input[name="username"]');
  const signinURL = page.url();
  const signinShot = path.join(env("OUT_DIR"), "signin.png");
  await page.screenshot({ path: signinShot, fullPage: true });

  await page.fill('input[name="username"]', env("USERNAME"));
  await page.fill('input[name="password"]', env("PASSWORD"));
  await Promise.all([page.waitForURL(start), page.click('button[type="submit"]')]);
  await page.waitForSelector("#greeting");
  const landedURL = page.url();
  const greeting = await page.textContent("#greeting");
  const landedShot = path.join(env("OUT_DIR"), "landed.png");
  await page.screenshot({ path: landedShot, fullPage: true });
  console.log(JSON.stringify({ signinURL, landedURL, greeting, screenshots: [signinShot, landedShot] }));
} finally {
  await context.close();
}
