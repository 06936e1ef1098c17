// An app whose callbacks record what the core passed them, so tests can see the arguments
// NextAuth v4 would pass: triggers, update data, the sign-in decision and large tokens.
import Credentials from "callgate/providers/credentials";

export default {
  providers: [
    Credentials({
      id: "password",
      name: "Password",
      credentials: { username: { label: "Username" }, password: { label: "Password", type: "password" } },
      async authorize(credentials, req) {
        if (credentials.password !== "pw") return null;
        return {
          id: credentials.username === "numeric" ? 42 : "u-" + credentials.username,
          name: credentials.username,
          email: credentials.username + "@example.com",
          image: "https://img.example.com/" + credentials.username + ".png",
          method: req.method,
        };
      },
    }),
  ],
  callbacks: {
    async signIn({ user, account, credentials }) {
      if (user.name === "denied") return false;
      if (user.name === "elsewhere") return "/welcome";
      if (user.name === "offsite") return "https://evil.example.com/";
      if (user.name === "angry") throw new Error("Nope here");
      if (user.name === "buggy") return account.missing.field;
      return account.provider === "password" && account.type === "credentials" && credentials.csrfToken.length === 64;
    },
    async jwt({ token, user, account, trigger, session, isNewUser }) {
      if (user) {
        token.argKeys = Object.keys(arguments[0]).sort().join(",");
        token.trigger = trigger;
        token.isNewUser = isNewUser;
        token.providerAccountId = account.providerAccountId;
        if (user.name === "big") token.big = "x".repeat(5000);
        return token;
      }
      token.argKeys = Object.keys(arguments[0]).sort().join(",");
      token.trigger = trigger ?? null;
      if (trigger === "update") {
        token.update = session;
        if (session && session.small) delete token.big;
        if (session && session.end) return null;
      }
      return token;
    },
    async session({ session, token }) {
      session.user.seen = { argKeys: token.argKeys, trigger: token.trigger, update: token.update ?? null };
      session.sessionArgKeys = Object.keys(arguments[0]).sort().join(",");
      return session;
    },
  },
};
