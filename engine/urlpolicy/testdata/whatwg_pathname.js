// whatwg_pathname.js is the Node side of differential_test.go: it reads a JSON array of
// request targets on stdin and prints a JSON array with, for each, how Node's WHATWG URL
// parser reads it as a request target relative to an http origin:
//   {pathname, host} from new URL(target, "http://x"), or {error} when it does not parse.
// One process reads every target, so the test starts node once.
"use strict";

const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const targets = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const out = targets.map((target) => {
    try {
      const u = new URL(target, "http://x");
      return { pathname: u.pathname, host: u.host };
    } catch (e) {
      return { error: String(e && e.message) };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
