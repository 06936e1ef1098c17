import Credentials from "callgate/providers/credentials";
import GitHub from "callgate/providers/github";
import { users } from "callgate/store";
import bcrypt from "bcryptjs";
import type { NextAuthOptions, User } from "next-auth";
import type { JWT } from "next-auth/jwt";
import type { AuthConfig } from "callgate";
import { lookupTeam } from "./lib/teams.js";

export const authOptions: NextAuthOptions = {
  providers: [
    Credentials({
      credentials: { username: { label: "Username" }, password: { label: "Password", type: "password" } },
      async authorize(credentials): Promise<User | null> {
        const u = await users.findOne({ username: credentials?.username ?? "" });
        if (!u || !(await bcrypt.compare(credentials?.password ?? "", u.password))) return null;
        return { id: u._id, name: u.name, email: u.email, role: u.role };
      },
    }),
    GitHub({ clientId: process.env.GITHUB_ID ?? "github-client-id", clientSecret: process.env.GITHUB_SECRET ?? "" }),
  ],
  callbacks: {
    async signIn({ profile }) {
      // callgate's augmentation of Profile
      return !profile?.groups || profile.groups.includes("staff");
    },
    async jwt({ token, user }): Promise<JWT> {
      if (user) {
        // User.role is a string by augmentation: no cast needed.
        const role: string = user.role;
        token.role = role;
        token.team = await lookupTeam(role);
      }
      return token;
    },
    async session({ session, token }) {
      session.user.id = token.sub ?? "";
      session.user.role = token.role ?? "user";
      return session;
    },
  },
};

const config: AuthConfig = authOptions;
export default config;
