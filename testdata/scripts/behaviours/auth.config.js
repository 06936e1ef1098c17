// Behaviours for the script host tests, selected by credentials.mode or token.mode.
import Credentials from "callgate/providers/credentials";
import bcrypt, { compareSync, hashSync, genSaltSync, getRounds } from "bcryptjs";
import { users } from "callgate/store";

let calls = 0;

function recurse(n) {
  return recurse(n + 1) + 1;
}

const modes = {
  throw() {
    throw new Error("Custom message");
  },
  "throw-string"() {
    throw "Plain string";
  },
  typeerror(c) {
    return c.missing.field;
  },
  null: () => null,
  false: () => false,
  undefined: () => undefined,
  true: () => true,
  array: () => [1, 2],
  async async(c) {
    await new Promise((resolve) => resolve(1));
    const user = await users.findOne({ username: c.username });
    return user && { id: user._id, name: user.name, role: user.role, extra: user.team };
  },
  async bcrypt(c) {
    return { id: "bcrypt", ok: await bcrypt.compare(c.password, c.hash), sync: compareSync(c.password, c.hash) };
  },
  async "bcrypt-hash"(c) {
    const h1 = await bcrypt.hash(c.password, 4);
    const h2 = hashSync(c.password, genSaltSync(5));
    const viaCallback = await new Promise((resolve, reject) =>
      bcrypt.compare(c.password, h1, (err, res) => (err ? reject(err) : resolve(res))),
    );
    const salt = await bcrypt.genSalt(6);
    return {
      id: "hash",
      h1ok: compareSync(c.password, h1),
      h2ok: await bcrypt.compare(c.password, h2),
      wrong: await bcrypt.compare("not " + c.password, h1),
      rounds: [getRounds(h1), getRounds(h2), getRounds(salt + "x".repeat(31))],
      viaCallback,
    };
  },
  env: () => ({ id: "env", keys: Object.keys(process.env), value: process.env.ALLOWED }),
  globals: () => ({
    id: "globals",
    require: typeof require,
    fs: typeof fs,
    bridge: typeof globalThis.__callgate_builtins,
    fetch: typeof fetch,
    uuid: crypto.randomUUID().length,
    b64: btoa("héllo"),
    unb64: atob("aOlsbG8"),
    frozenEnv: Object.isFrozen(process.env),
  }),
  recurse: () => recurse(0),
  loop() {
    for (;;) {}
  },
  unhandled() {
    Promise.reject(new Error("nobody listens"));
    return { id: "unhandled" };
  },
  pending: () => new Promise(() => {}),
  async "find-bad"() {
    return users.findOne({ nickname: "x" });
  },
  async "find-id"(c) {
    const u = await users.findOne({ _id: c.id });
    return u && { id: u._id, keys: Object.keys(u) };
  },
  log(c) {
    for (let i = 0; i < 1000; i++) console.log("line", i, { mode: c.mode });
    return { id: "log" };
  },
  counter: () => ({ id: "counter", calls: ++calls }),
  "mutate-global"() {
    globalThis.poisoned = true;
    throw new Error("after poisoning");
  },
  poisoned: () => ({ id: "poisoned", poisoned: globalThis.poisoned === true }),
  sleep: (c) => bcrypt.hash(c.password, 14),
};

export default {
  providers: [
    Credentials({
      credentials: {
        username: { label: "Username", type: "text", placeholder: "jsmith" },
        password: { label: "Password", type: "password" },
      },
      authorize(credentials, req) {
        const mode = modes[credentials.mode];
        if (!mode) return { id: "echo", credentials, req };
        return mode(credentials, req);
      },
    }),
  ],
  callbacks: {
    jwt(arg) {
      const { token } = arg;
      switch (token.mode) {
        case "string":
          return "not a token";
        case "null":
          return null;
        case "keys":
          return { keys: Object.keys(arg), hasSession: "session" in arg, sessionType: typeof arg.session };
        case "mutate":
          token.seen = (token.seen ?? 0) + 1;
          token.list.push("more");
          delete token.gone;
          arg.extra = "leak?";
          return token;
        case "shape":
          return { ...token, when: new Date(0), nothing: undefined, fn() {}, nested: { n: null } };
      }
      return token;
    },
    async session({ session, token }) {
      if (session.loop) for (;;) {}
      if (session.recurse) return recurse(0);
      await null;
      return { ...session, sub: token.sub };
    },
    redirect({ url, baseUrl }) {
      if (url === "number") return 42;
      return url.startsWith("/") ? baseUrl + url : url;
    },
    signIn({ user }) {
      if (user.id === "deny") return false;
      if (user.id === "redirect") return "/blocked";
      if (user.id === "throw") throw new Error("Nope here");
      return true;
    },
  },
  events: {
    signIn({ user }) {
      if (user.id === "throw") throw new TypeError("event failed");
    },
  },
  pages: { signIn: "/login", error: "https://example.com/auth/error" },
  session: { maxAge: 3600, updateAge: 60 },
  jwt: { maxAge: 7200 },
  theme: { colorScheme: "dark", brandColor: "#123456" },
  somethingElse: true,
};
