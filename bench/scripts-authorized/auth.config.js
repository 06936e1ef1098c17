// bench/proxy.sh: the reference app's config (scripts/auth.config.js) plus an authorized callback.
// @ts-check
// The auth config: callgate runs it the way NextAuth v4 runs `authOptions`. The gateway calls
// these functions at fixed moments of the login lifecycle with the arguments NextAuth passes;
// you never call them yourself. Reference: docs/callbacks.md.
import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";

// A bcrypt hash (same cost as real ones) that no password matches. Comparing against it
// when the username is unknown makes "no such user" take as long as "wrong password", so
// response times do not reveal which usernames exist.
const DUMMY_HASH = "$2a$10$lwLsq7I8O31XMPHM5GWvPuTPAw7pwOBWvZ5Nr4JXlz65qB6DngytK";

/** @type {import("../../scripts/types/callgate").AuthConfig} */
export default {
  providers: [
    Credentials({
      name: "credentials",
      credentials: {
        username: { label: "Username", type: "text" },
        password: { label: "Password", type: "password" },
      },
      // Checks a username and password. Returns the user to sign in, or null to refuse.
      async authorize(credentials, req) {
        const user = await users.findOne({ username: credentials?.username });
        const ok = await bcrypt.compare(credentials?.password ?? "", user ? user.password : DUMMY_HASH);
        if (!user || !ok) return null;
        return { id: user._id.toString(), name: user.name, email: user.email, role: user.role };
      },
    }),
  ],
  callbacks: {
    // Runs when the token is created (sign-in: `user` is set) and on every session read.
    async jwt({ token, user }) {
      if (user) {
        token.id = user.id;
        token.role = user.role;
      }
      return token;
    },
    // Decides what the browser sees at /api/auth/session.
    // A typical authorized callback: admins everywhere, everyone signed in outside /admin.
    authorized({ token, request }) {
      if (!token) return false;
      if (request.path.startsWith("/admin")) return token.role === "admin";
      return true;
    },
    async session({ session, token }) {
      if (session.user) {
        session.user.id = token.id;
        session.user.role = token.role;
      }
      return session;
    },
  },
};
