// lib/users.ts after the move: the same function, reading the users the gateway keeps
// (brought over with `gateway users import users.json`) instead of MongoDB.
import bcrypt from "bcryptjs";
import { users } from "callgate/store";

export type AppUser = { id: string; name: string; email: string; role: string };

export async function verifyUser(username: string, password: string): Promise<AppUser | null> {
  const user = await users.findOne({ username });
  if (!user || !(await bcrypt.compare(password, user.password))) return null;
  return { id: user._id.toString(), name: user.name, email: user.email, role: user.role };
}
