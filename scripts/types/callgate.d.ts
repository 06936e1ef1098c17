// Types for callgate auth configs (scripts/auth.config.js or .ts). Reference them from a JS
// config with
//   /** @type {import("./types/callgate").AuthConfig} */
// and from TypeScript with
//   import type { AuthConfig } from "callgate";   // or "next-auth", or "./types/callgate"
// The declarations are in core.d.ts (the "callgate" module), modules.d.ts (the built-in
// modules and globals), nextauth.d.ts (NextAuth's module names) and test.d.ts (callgate/test).
/// <reference path="./core.d.ts" />
/// <reference path="./modules.d.ts" />
/// <reference path="./nextauth.d.ts" />
/// <reference path="./test.d.ts" />
export * from "callgate";
