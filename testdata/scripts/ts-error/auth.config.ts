import Credentials from "callgate/providers/credentials";

// A throw deep in a TypeScript file: positions must map back through the type annotations.
type Creds = { username?: string };

export default {
  providers: [
    Credentials({
      async authorize(credentials: Creds | undefined) {
        const who: string = credentials?.username ?? "nobody";
        throw new Error(`no entry for ${who}`);
      },
    }),
  ],
};
