// @ts-check
import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";
/** @type {import("./types/callgate").AuthConfig} */
export default {
  providers: [Credentials({ name: "credentials", credentials: { username: {label:"Username", type:"text"}, password: {label:"Password", type:"password"} },
    async authorize(credentials, req) {
      const user = await users.findOne({ username: credentials?.username });
      if (!user) return null;
      const ok = await bcrypt.compare(credentials.password, user.password);
      if (!ok) return null;
      return { id: user._id.toString(), name: user.name, email: user.email, role: user.role };
    } })],
  callbacks: {
    async jwt({ token, user }) { if (user) { token.id = user.id; token.role = user.role; } return token; },
    async session({ session, token }) { if (session.user) { session.user.id = token.id; session.user.role = token.role; } return session; },
  },
  // events: {signIn, signOut, session}, pages: {signIn, signOut, error}, session: {strategy, maxAge, updateAge}, jwt: {maxAge}, theme
};
