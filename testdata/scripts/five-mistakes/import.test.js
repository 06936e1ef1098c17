import { test } from "callgate/test";
import { helper } from "./helpers.js";
test("never runs", () => helper());
