// What both browser drivers share: reading their environment, and starting Debian's
// Chromium headless with a fresh profile and nothing that reaches for the network (the
// machine has no internet).
import { chromium } from "playwright-core";

// env returns the variable's value, or stops the driver naming the one that is missing.
export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

// launch opens a persistent context in PROFILE_DIR with the CHROMIUM executable.
export const launch = () =>
  chromium.launchPersistentContext(env("PROFILE_DIR"), {
    executablePath: env("CHROMIUM"),
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
    ],
  });
