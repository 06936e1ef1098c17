// The reference app's config plus an authorized callback that exercises every outcome the
// proxy tests check: allow, deny, redirect (same-site and off-site), anonymous access, and
// an object that adds upstream headers and assertion claims.
import Credentials from "callgate/providers/credentials";
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
  ],
  callbacks: {
    jwt({ token, user }) {
      if (user) token.role = user.role;
      return token;
    },
    session({ session, token }) {
      session.user.role = token.role;
      return session;
    },
    authorized({ auth, token, request }) {
      const p = request.path;
      if (p.startsWith("/anonymous")) return true;
      if (p.startsWith("/redirect")) return "/elsewhere";
      if (p.startsWith("/offsite")) return "https://evil.example/";
      if (p === "/go") return request.query.to ?? "/"; // any redirect the attack suite asks for
      if (!token) return false;
      if (p.startsWith("/api/")) {
        // How the caller authenticated, for the bearer tests.
        return { headers: { "X-Callgate-Auth": [request.auth.method, request.auth.type, request.auth.provider ?? ""].join("/") } };
      }
      if (p.startsWith("/deny")) return false;
      if (p.startsWith("/extra")) {
        return {
          headers: { "X-Role": auth.user.role, "X-Route": request.route, "X-Seen-Query": request.query.q ?? "", "X-Seen-Accept": request.headers.accept ?? "" },
          claims: { tier: "gold", sub: "forged", beta: true }, // sub is the core's: it keeps the token's
        };
      }
      return true;
    },
  },
};
