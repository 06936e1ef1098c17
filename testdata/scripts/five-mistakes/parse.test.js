import { test, expect } from "callgate/test";
test("never runs", () => {
  expect(1).toBe(1;
});
