// An app with its own sign-in, sign-out and error pages (NextAuth `pages`).
import Credentials from "callgate/providers/credentials";

export default {
  providers: [Credentials({ authorize: () => null })],
  pages: { signIn: "/login", signOut: "/bye", error: "/oops" },
};
