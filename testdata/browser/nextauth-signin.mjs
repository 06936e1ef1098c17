// Drives a real headless Chromium (Debian's, through playwright-core) through an OAuth
// sign-in started by the unmodified next-auth/react client: a page of the proxied app loads
// the client bundle, shows getSession(), and its button calls signIn("hydra"); the browser
// goes through Ory Hydra's login (a form) and consent, back to the gateway's callback, and
// lands on the page again, which now shows the session. Screenshots go to OUT_DIR. Prints
// one JSON line with what it saw; cmd/gateway/browser_oauth_test.go checks it.
//
// Environment: CHROMIUM (executable), START_URL, LANDED_URL, USERNAME, OUT_DIR, PROFILE_DIR.
import path from "node:path";
import { env, launch } from "./launch.mjs";

const context = await launch();
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20000);
  const navigations = [];
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) navigations.push(frame.url());
  });
  const pageErrors = [];
  page.on("pageerror", (err) => pageErrors.push(String(err)));
  const shot = async (name) => {
    const file = path.join(env("OUT_DIR"), name);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
  const screenshots = [];

  await page.goto(env("START_URL"));
  await page.waitForSelector("body[data-ready]");
  const sessionBefore = await page.textContent("#session");
  screenshots.push(await shot("nextauth-before.png"));

  await page.click("#signin");
  await page.waitForSelector('input[name="username"]');
  const providerLoginURL = page.url();
  screenshots.push(await shot("nextauth-provider-login.png"));

  await page.fill('input[name="username"]', env("USERNAME"));
  await Promise.all([page.waitForURL(env("LANDED_URL")), page.click('button[type="submit"]')]);
  await page.waitForSelector("body[data-ready]");
  const landedURL = page.url();
  const sessionAfter = await page.textContent("#session");
  screenshots.push(await shot("nextauth-signed-in.png"));
  console.log(JSON.stringify({ sessionBefore, providerLoginURL, landedURL, sessionAfter, navigations, pageErrors, screenshots }));
} finally {
  await context.close();
}
