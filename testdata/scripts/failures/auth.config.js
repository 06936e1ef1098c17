// An app whose callbacks fail on purpose, one way per username, so tests can check that
// every failure gets NextAuth's outcome, a log line naming this file, line and column, and
// that the next request is served normally.
import Credentials from "callgate/providers/credentials";

export default {
  providers: [
    Credentials({
      credentials: { username: { label: "Username" }, password: { label: "Password", type: "password" } },
      authorize(credentials) {
        const name = credentials.username;
        if (name === "throw") throw new Error("Account locked");
        if (name === "bug") return credentials.profile.nickname;
        if (name === "slow") for (;;) {}
        if (name === "string") return "yes";
        return { id: name, name };
      },
    }),
  ],
  callbacks: {
    jwt({ token, user }) {
      if (user && user.name === "jwtstring") return "not an object";
      return token;
    },
    session({ session, token }) {
      if (token.name === "sessionloop") while (true) {}
      return session;
    },
  },
};
