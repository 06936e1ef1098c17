import Credentials from "callgate/providers/credentials";
import type { NextAuthOptions } from "next-auth";

// The check must bite: each line marked MISTAKE is a type error tsc reports.
const id: number = "x"; // MISTAKE TS2322

export default {
  providers: [
    Credentials({
      async authorize() {
        return { id: String(id), name: "Jane" }; // MISTAKE TS2741: role is required (types.d.ts)
      },
    }),
  ],
  session: { strategy: "cookie" }, // MISTAKE TS2322: "jwt" or "database"
} satisfies NextAuthOptions;
