// Drives a real headless Chromium (Debian's, through playwright-core) through an e-mail
// sign-in started by the unmodified next-auth/react client: a page of the proxied app loads
// the client bundle and its button calls signIn("email", {email}); the client posts to the
// gateway and follows it to the "Check your email" page. The driver then prints one JSON line
// ({stage: "sent", ...}) and waits for the sign-in link on stdin: cmd/gateway/browser_email_test.go
// reads it from Mailpit, as the user would from their mail. The link is opened in the same
// browser, which lands on the page, signed in. A last JSON line says what it saw. Screenshots
// go to OUT_DIR.
//
// Environment: CHROMIUM (executable), START_URL, LANDED_URL, OUT_DIR, PROFILE_DIR.
import path from "node:path";
import readline from "node:readline";
import { env, launch } from "./launch.mjs";

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const context = await launch();
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20000);
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

  await Promise.all([page.waitForURL(/\/api\/auth\/verify-request\?/), page.click("#signin")]);
  const verifyRequestURL = page.url();
  const verifyRequestHeading = await page.textContent("h1");
  screenshots.push(await shot("nextauth-email-verify-request.png"));
  console.log(JSON.stringify({ stage: "sent", verifyRequestURL }));

  const { value: link, done } = await lines.next();
  if (done) throw new Error("stdin closed before the sign-in link came");
  await Promise.all([page.waitForURL(env("LANDED_URL")), page.goto(link.trim())]);
  await page.waitForSelector("body[data-ready]");
  const landedURL = page.url();
  const sessionAfter = await page.textContent("#session");
  screenshots.push(await shot("nextauth-email-signed-in.png"));
  console.log(JSON.stringify({ stage: "done", sessionBefore, verifyRequestURL, verifyRequestHeading, landedURL, sessionAfter, pageErrors, screenshots }));
} finally {
  await context.close();
  process.stdin.destroy();
}
