// The config of the passwordless browser test (cmd/gateway/browser_passkey_test.go):
// a password, and the Passkey provider for signing in with a passkey alone.
import Credentials from "callgate/providers/credentials";
import Passkey from "callgate/providers/passkey";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";

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
    Passkey({ name: "Passkey" }),
  ],
  callbacks: {
    session({ session, token }) {
      // How the user authenticated, for the test to read at /api/auth/session.
      session.user.amr = token.amr;
      return session;
    },
  },
};
