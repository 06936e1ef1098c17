import Credentials from "callgate/providers/credentials";

export default {
  providers: [Credentials({ authorize: () => null })],
  callbacks: {
    jwt({ token }) {
      return token +;
    },
  },
};
