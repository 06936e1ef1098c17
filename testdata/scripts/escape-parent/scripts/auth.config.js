import Credentials from "callgate/providers/credentials";
import { secret } from "../outside.js";

export default { providers: [Credentials({ authorize: () => ({ id: secret }) })] };
