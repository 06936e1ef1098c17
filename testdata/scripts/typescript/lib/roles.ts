export type Role = "admin" | "user";

export function roleFor(name: string): Role {
  return name === "alice" ? "admin" : "user";
}
