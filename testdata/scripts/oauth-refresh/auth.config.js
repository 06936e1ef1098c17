import OAuth from "callgate/providers/oauth";

// The token URL is the test's own token endpoint (TOKEN_URL); nothing else is contacted.
export default {
  providers: [
    OAuth({
      id: "acme", name: "Acme", clientId: "acme-client", clientSecret: "acme-secret",
      authorization: "https://acme.invalid/authorize", token: process.env.TOKEN_URL,
      userinfo: "https://acme.invalid/me", refresh: { gracePeriod: 300 },
    }),
  ],
  callbacks: {
    jwt({ token, account, trigger }) {
      if (trigger === "refresh") token.refreshedTo = account.access_token;
      return token;
    },
    session({ session, token }) {
      return { ...session, refreshedTo: token.refreshedTo ?? null };
    },
  },
};
