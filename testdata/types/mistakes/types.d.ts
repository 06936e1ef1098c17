export {};
declare module "callgate" {
  interface User {
    role: string;
  }
}
