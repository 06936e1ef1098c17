// The app of the wire specification's conformance checks (nextauth-v4-wire.md §11): one
// credentials provider that accepts the password "pw", NextAuth's default callbacks, and
// an events.signOut that logs what it received.
import Credentials from "callgate/providers/credentials";

export default {
  providers: [
    Credentials({
      credentials: {
        username: { label: "Username", type: "text" },
        password: { label: "Password", type: "password" },
      },
      authorize(credentials) {
        console.log("authorize called");
        if (credentials.password === "throw") throw new Error("Custom message");
        if (credentials.password === "bug") return credentials.nothing.here;
        if (credentials.password !== "pw") return null;
        return { id: "42", name: "Jane", email: "jane@example.com" };
      },
    }),
  ],
  events: {
    signOut({ token }) {
      console.log("signOut event sub=" + token.sub + " name=" + token.name);
    },
  },
};
