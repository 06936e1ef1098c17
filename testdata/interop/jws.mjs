// jws.mjs verifies callgate's signed session token (session.token.format: jws) with the jose
// package, as an app reading the token itself would, so Go tests can check the token is an
// ordinary JWT for the JavaScript world and not only for golang-jwt.
//
//   node jws.mjs jwks <jwks url> <alg> <token>   verifies with the keys the URL publishes
//   node jws.mjs secret <secret> <token>          verifies HS256 with the secret's bytes
//
// Prints {"header": …, "payload": …} as JSON. Exit status 1 with jose's message on stderr when
// the token does not verify (bad signature, unknown kid, expired, another algorithm).
import { createRemoteJWKSet, jwtVerify } from "jose";

const usage = `usage:
  node jws.mjs jwks <jwks url> <alg> <token>
  node jws.mjs secret <secret> <token>`;

async function main(argv) {
  const [command, ...rest] = argv;
  let result;
  switch (command) {
    case "jwks": {
      const [url, alg, token] = rest;
      if (!url || !alg || !token) throw new Error(usage);
      result = await jwtVerify(token, createRemoteJWKSet(new URL(url)), { algorithms: [alg] });
      break;
    }
    case "secret": {
      const [secret, token] = rest;
      if (!secret || !token) throw new Error(usage);
      result = await jwtVerify(token, new TextEncoder().encode(secret), { algorithms: ["HS256"] });
      break;
    }
    default:
      throw new Error(usage);
  }
  return JSON.stringify({ header: result.protectedHeader, payload: result.payload });
}

main(process.argv.slice(2)).then(
  (out) => process.stdout.write(out + "\n"),
  (err) => {
    process.stderr.write(`jws.mjs: ${err?.code ?? ""} ${err?.message ?? err}\n`);
    process.exitCode = 1;
  },
);
