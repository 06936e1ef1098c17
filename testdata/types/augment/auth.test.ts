import config from "./auth.config";
import { test, expect, args, user, token, mockUsers, authorize } from "callgate/test";

mockUsers([{ username: "jane", password: "pw", role: "admin", name: "Jane" }]);

test("authorize returns the stored user with its role", async () => {
  const u = await authorize(config, { username: "jane", password: "pw" });
  // The result is User | null | false | undefined: narrowing gives the augmented role.
  if (!u) throw new Error("no user");
  const role: string = u.role;
  expect(role).toBe("admin");
});

test("session copies the role", async () => {
  const s = await config.callbacks!.session!(args.session({ token: token({ role: "admin", sub: "u1" }) }));
  expect(s.user).toEqual({ name: "Jane Doe", email: "jane@example.com", id: "u1", role: "admin" });
});

test("the jwt callback keeps the role", async () => {
  const params = args.jwt.signIn({ user: user({ role: "ops" }) });
  const trigger: "signIn" | "signUp" | "update" | "refresh" | undefined = params.trigger;
  expect(trigger).toBe("signIn");
});
