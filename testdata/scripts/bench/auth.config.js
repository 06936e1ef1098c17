// The conformance app plus the classic jwt and session callbacks, for benchmarks of the
// session read with two JS calls per request.
import Credentials from "callgate/providers/credentials";

export default {
  providers: [
    Credentials({
      authorize(credentials) {
        if (credentials.password !== "pw") return null;
        return { id: "42", name: "Jane", email: "jane@example.com", role: "admin" };
      },
    }),
  ],
  callbacks: {
    async jwt({ token, user }) {
      if (user) {
        token.id = user.id;
        token.role = user.role;
      }
      return token;
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
