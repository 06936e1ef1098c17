// The config of the passkey second-factor and step-up browser tests
// (cmd/gateway/browser_passkey_test.go): passwords, with passkeys as the second factor and
// the policy in the callbacks. An admin's password sign-in needs a passkey as well, an
// operator's an authenticator app; the /admin routes need a passkey used within the last
// five minutes (step-up).
import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";

// How recent the passkey behind a session must be on /admin.
const STEP_UP_SECONDS = 5 * 60;

export default {
  providers: [
    Credentials({
      name: "credentials",
      credentials: { username: { label: "Username", type: "text" }, password: { label: "Password", type: "password" } },
      async authorize(credentials) {
        const user = await users.findOne({ username: credentials?.username });
        if (!user || !(await bcrypt.compare(credentials.password, user.password))) return null;
        return { id: user._id.toString(), name: user.name, email: user.email, role: user.role };
      },
    }),
  ],
  factors: { passkey: true, totp: true },
  callbacks: {
    signIn({ user }) {
      if (user.role === "admin") return { secondFactor: ["passkey"] };
      if (user.role === "ops") return { secondFactor: ["totp"] };
      return true;
    },
    session({ session, token }) {
      // How and when the user authenticated, for the tests to read at /api/auth/session.
      session.user.amr = token.amr;
      session.user.auth_time = token.auth_time;
      return session;
    },
    authorized({ token, request }) {
      if (!token) return false;
      if (request.path.startsWith("/admin")) {
        const age = Date.now() / 1000 - token.auth_time;
        if (!token.amr?.includes("hwk") || !(age <= STEP_UP_SECONDS)) return { stepUp: { factors: ["passkey"] } };
      }
      return true;
    },
  },
};
