import { MongoClient } from "mongodb";
import bcrypt from "bcryptjs";

const client = new MongoClient(process.env.MONGODB_URI!);

export type AppUser = { id: string; name: string; email: string; role: string };

export async function verifyUser(username: string, password: string): Promise<AppUser | null> {
  const db = (await client.connect()).db();
  const user = await db.collection("users").findOne({ username });
  if (!user || !(await bcrypt.compare(password, user.password))) return null;
  return { id: user._id.toString(), name: user.name, email: user.email, role: user.role };
}
