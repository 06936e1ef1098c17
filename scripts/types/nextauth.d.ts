// NextAuth's module names, which callgate scripts may import as they are written for a
// Next.js app. Their types are callgate's ("callgate", core.d.ts): an augmentation of
// "next-auth" or "next-auth/jwt" is an augmentation of the same interfaces.

declare module "next-auth" {
  export * from "callgate";
  import type { AuthConfig, Session } from "callgate";
  /**
   * NextAuth's route handler factory. The gateway serves the routes itself: the handler
   * returned only lets a Next.js-style file (`export default NextAuth(authOptions)`) bundle.
   */
  export default function NextAuth(options: AuthConfig): (...args: any[]) => Promise<any>;
  /** A stub for code shared with a Next.js app: in the gateway it resolves to null. */
  export function getServerSession(...args: any[]): Promise<Session | null>;
}

declare module "next-auth/jwt" {
  export * from "callgate";
  import type { JWT } from "callgate";
  /** A stub for code shared with a Next.js app: in the gateway it resolves to null. */
  export function getToken(params?: Record<string, unknown>): Promise<JWT | null>;
  /** A stub for code shared with a Next.js app: in the gateway it resolves to null. */
  export function decode(params: { token?: string; secret: string | string[]; salt?: string }): Promise<JWT | null>;
}

declare module "next-auth/providers/credentials" {
  export { default } from "callgate/providers/credentials";
  export type { CredentialsConfig, CredentialInput, CredentialsOptions as CredentialsConfigOptions } from "callgate";
}

declare module "next-auth/providers/email" {
  export { default } from "callgate/providers/email";
  export type { EmailConfig, EmailOptions as EmailUserConfig } from "callgate";
}

declare module "next-auth/providers/github" {
  export { default } from "callgate/providers/github";
}

declare module "next-auth/providers/google" {
  export { default } from "callgate/providers/google";
}

declare module "next-auth/providers/gitlab" {
  export { default } from "callgate/providers/gitlab";
}

declare module "next-auth/providers/keycloak" {
  export { default } from "callgate/providers/keycloak";
}

declare module "next-auth/providers/auth0" {
  export { default } from "callgate/providers/auth0";
}

declare module "next-auth/providers/azure-ad" {
  export { default } from "callgate/providers/azure-ad";
}
