import Credentials from "callgate/providers/credentials";
import { shout } from "./lib/helpers.js";

export default {
  providers: [Credentials({ authorize: (c) => ({ id: "1", name: shout(c.username) }) })],
};
