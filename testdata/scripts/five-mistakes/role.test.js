import config from "./auth.config.js";
import { test, expect, args, user } from "callgate/test";
test("the jwt callback copies the role", async () => {
  const t = await config.callbacks.jwt(args.jwt.signIn({ user: user({ role: "admin" }) }));
  expect(t.role).toBe("admin");
});
