// Drives a real headless Chromium (Debian's, through playwright-core) through single
// sign-out with the unmodified next-auth/react client: sign in with signIn("hydra") through
// Ory Hydra's login form, then signOut() from the page. The gateway answers signOut()'s
// POST with Hydra's end_session_endpoint, the client goes there, Hydra's logout is
// confirmed by the test's login app and sends the browser back to the page, which shows no
// session. A second signIn("hydra") must then meet Hydra's login form again: the provider
// session ended too. Screenshots go to OUT_DIR. Prints one JSON line with what it saw;
// cmd/gateway/browser_logout_test.go checks it.
//
// Environment: CHROMIUM (executable), START_URL, LANDED_URL, SIGNED_OUT_URL, USERNAME,
// OUT_DIR, PROFILE_DIR.
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
  // Every request the page's frame makes, redirects included, so the test sees the trip
  // through the provider's end_session_endpoint.
  const requests = [];
  page.on("request", (req) => {
    if (req.isNavigationRequest()) requests.push(req.url());
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
  await page.click("#signin");
  await page.waitForSelector('input[name="username"]');
  await page.fill('input[name="username"]', env("USERNAME"));
  await Promise.all([page.waitForURL(env("LANDED_URL")), page.click('button[type="submit"]')]);
  await page.waitForSelector("body[data-ready]");
  const sessionSignedIn = await page.textContent("#session");
  screenshots.push(await shot("nextauth-logout-signed-in.png"));

  const signOutStart = requests.length;
  await Promise.all([page.waitForURL(env("SIGNED_OUT_URL")), page.click("#signout")]);
  await page.waitForSelector("body[data-ready]");
  const signedOutURL = page.url();
  const sessionSignedOut = await page.textContent("#session");
  const signOutTrip = requests.slice(signOutStart);
  screenshots.push(await shot("nextauth-logout-signed-out.png"));

  // Signing in again: the provider must ask who this is, its session being over.
  await page.click("#signin");
  await page.waitForSelector('input[name="username"]');
  const loginAgainURL = page.url();
  screenshots.push(await shot("nextauth-logout-login-again.png"));
  console.log(JSON.stringify({
    sessionSignedIn, signedOutURL, sessionSignedOut, signOutTrip, loginAgainURL, navigations, pageErrors, screenshots,
  }));
} finally {
  await context.close();
}
