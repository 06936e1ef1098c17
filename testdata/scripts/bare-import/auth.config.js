import Credentials from "callgate/providers/credentials";
import _ from "lodash";

export default { providers: [Credentials({ authorize: () => _.identity(null) })] };
