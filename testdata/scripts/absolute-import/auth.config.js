import Credentials from "callgate/providers/credentials";
import { hostname } from "/etc/hostname.js";

export default { providers: [Credentials({ authorize: () => ({ id: hostname }) })] };
