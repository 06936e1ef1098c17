// The reference app of bench/nextauth.sh: the same credentials provider and callbacks as
// scripts/auth.config.js, in NextAuth v4 as a Next.js app would write them. Users come from
// testdata/users.json; the secret from NEXTAUTH_SECRET.
import fs from "node:fs";
import path from "node:path";
import NextAuth from "next-auth";
import CredentialsProvider from "next-auth/providers/credentials";
import bcrypt from "bcryptjs";

// next start runs in bench/nextauth-app, so the repository's testdata is two levels up.
const users = JSON.parse(fs.readFileSync(path.join(process.cwd(), "../../testdata/users.json"), "utf8"));

// A bcrypt hash (cost 10) that no password matches, as in scripts/auth.config.js.
const DUMMY_HASH = "$2a$10$lwLsq7I8O31XMPHM5GWvPuTPAw7pwOBWvZ5Nr4JXlz65qB6DngytK";

export const authOptions = {
  secret: process.env.NEXTAUTH_SECRET,
  session: { strategy: "jwt" },
  providers: [
    CredentialsProvider({
      name: "credentials",
      credentials: {
        username: { label: "Username", type: "text" },
        password: { label: "Password", type: "password" },
      },
      async authorize(credentials) {
        const user = users.find((u) => u.username === credentials?.username);
        const ok = await bcrypt.compare(credentials?.password ?? "", user ? user.password : DUMMY_HASH);
        if (!user || !ok) return null;
        return { id: user._id, name: user.name, email: user.email, role: user.role };
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

export default NextAuth(authOptions);
