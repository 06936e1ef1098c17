import Credentials from "callgate/providers/credentials";
import { roleFor, type Role } from "./lib/roles";

interface AppUser {
  id: string;
  name: string;
  role: Role;
}

export default {
  providers: [
    Credentials({
      credentials: { username: { label: "Username", type: "text", placeholder: "jsmith" } },
      async authorize(credentials: Record<string, string> | undefined): Promise<AppUser | null> {
        const name = credentials?.username ?? "";
        if (name === "boom") {
          const missing: any = undefined;
          return missing.id as AppUser;
        }
        return { id: "u-" + name, name, role: roleFor(name) };
      },
    }),
  ],
  callbacks: {
    jwt({ token, user }: { token: Record<string, unknown>; user?: AppUser }) {
      if (user) token.role = user.role;
      return token;
    },
  },
};
