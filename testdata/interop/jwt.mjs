// jwt.mjs runs next-auth's own session-token codec (next-auth/jwt), so Go tests can check that
// callgate's tokens and NextAuth's tokens are interchangeable in both directions.
//
//   node jwt.mjs decode <secret> <token>                        prints the payload as JSON
//   node jwt.mjs encode <secret> '<claims json>' [maxAgeSeconds] prints a token
//
// Exit status 1 with a message on stderr when the token does not decode (next-auth's decode()
// throws on a bad token and returns null on an empty one; both are failures here) or the
// arguments are wrong.
import { decode, encode } from "next-auth/jwt";

const usage = `usage:
  node jwt.mjs decode <secret> <token>
  node jwt.mjs encode <secret> '<claims json>' [maxAgeSeconds]`;

async function main(argv) {
  const [command, secret, input, maxAgeArg] = argv;
  if (!secret || !input) throw new Error(usage);

  switch (command) {
    case "decode": {
      const payload = await decode({ token: input, secret });
      if (payload === null) throw new Error("decode returned null (empty token)");
      return JSON.stringify(payload);
    }
    case "encode": {
      const claims = JSON.parse(input);
      const options = { token: claims, secret };
      if (maxAgeArg !== undefined) {
        const maxAge = Number(maxAgeArg);
        if (!Number.isInteger(maxAge)) throw new Error(`maxAgeSeconds ${JSON.stringify(maxAgeArg)} is not an integer`);
        options.maxAge = maxAge;
      }
      return await encode(options);
    }
    default:
      throw new Error(usage);
  }
}

main(process.argv.slice(2)).then(
  (out) => process.stdout.write(out + "\n"),
  (err) => {
    process.stderr.write(`jwt.mjs: ${err?.message ?? err}\n`);
    process.exitCode = 1;
  },
);
