// The module augmentation NextAuth's docs describe, unchanged: it applies to callgate's types.
import type { DefaultSession } from "next-auth";

declare module "next-auth" {
  interface Session {
    user: { id: string; role: string } & DefaultSession["user"];
  }
  interface User {
    role: string;
  }
}

declare module "next-auth/jwt" {
  interface JWT {
    role?: string;
  }
}

// callgate's own name for the same interfaces.
declare module "callgate" {
  interface Profile {
    groups?: string[];
  }
}
