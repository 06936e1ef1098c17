// The tracing tests' config: every callback of a credentials sign-in, a session read and a
// proxied request is the script's own (a callback left to the default runs no JavaScript
// and so has no span), and authorize logs a line, which must carry the request's trace id.
import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";

export default {
  providers: [
    Credentials({
      name: "credentials",
      credentials: { username: { label: "Username", type: "text" }, password: { label: "Password", type: "password" } },
      async authorize(credentials) {
        console.log("authorize: checking a password");
        if (credentials?.username === "throw") throw new TypeError("authorize failed on purpose");
        if (credentials?.username === "loop") return { id: "loop", name: "Loop" };
        const user = await users.findOne({ username: credentials?.username });
        if (!user || !(await bcrypt.compare(credentials.password, user.password))) return null;
        return { id: user._id.toString(), name: user.name, email: user.email };
      },
    }),
  ],
  callbacks: {
    signIn() {
      return true;
    },
    redirect({ url, baseUrl }) {
      return url.startsWith(baseUrl) ? url : baseUrl;
    },
    jwt({ token, user }) {
      if (user?.id === "loop") for (;;) {} // interrupted at script.timeouts.jwt
      return token;
    },
    session({ session }) {
      return session;
    },
    authorized({ token }) {
      return !!token;
    },
  },
  events: {
    signIn() {},
  },
};
