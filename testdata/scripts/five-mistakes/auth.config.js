// Five mistakes that `gateway check` reports in one run (scripttools_test.go): an unknown
// option, an invalid option, a test file that does not parse, a test file importing a file
// that does not exist, and a failing test.
import Credentials from "callgate/providers/credentials";

export default {
  providers: [Credentials({ authorize: async (c) => (c?.username ? { id: c.username } : null) })],
  sesion: { maxAge: 3600 },
  pages: { signIn: "login" },
  callbacks: {
    async jwt({ token, user }) {
      if (user) token.role = "user";
      return token;
    },
  },
};
