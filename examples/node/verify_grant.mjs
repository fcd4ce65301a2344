// Reference verifier of invitetomedia grants, for platform engineers (jose from npm).
//
// What the platform's accept_url handler does with the posted `grant` field:
//
//   node verify_grant.mjs --jwks-url https://invites.example.org/.well-known/jwks.json \
//     --issuer invitetomedia --audience <your grant_audience> --tenant <your tenant id> \
//     --media <the entry being opened> --seen /var/lib/platform/seen-grants.json GRANT
//
// Prints the verified claims as JSON and exits 0, or prints why the grant is refused and exits
// 1. Checks: header typ grant+jwt and alg EdDSA, the signature with the JWKS key of its kid (the
// remote key set is cached and fetched again when a kid is unknown: that is how a key rotation
// arrives), iss, aud, exp (5 s of clock skew), the claims every grant has, tid, mid, then replay
// (each jti is accepted once; seen jtis are kept until their exp). Before linking the visit to
// an existing account, also require `bound` or `email_verified` (see the README): an open
// link's email is self-declared.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createRemoteJWKSet, jwtVerify } from "jose";

const LEEWAY_SECONDS = 5;
const REQUIRED = ["iss", "aud", "sub", "tid", "iid", "mid", "mty", "role", "email", "bound",
  "email_verified", "jti", "iat", "exp"];

function refuse(reason) {
  console.log(JSON.stringify({ accepted: false, reason }));
  process.exit(1);
}

// Records jti until exp; false when it was seen before. A real platform keeps this in its
// database or cache (SET NX with a TTL), shared by every instance.
function rememberOnce(path, jti, exp) {
  const now = Date.now() / 1000;
  let seen = {};
  try {
    seen = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    if (e.code !== "ENOENT") throw e;
  }
  seen = Object.fromEntries(Object.entries(seen).filter(([, until]) => until + LEEWAY_SECONDS > now));
  if (jti in seen) return false;
  seen[jti] = exp;
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(seen));
  renameSync(tmp, path);
  return true;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: Object.fromEntries(
    ["jwks-url", "issuer", "audience", "tenant", "media", "seen"].map((name) => [name, { type: "string" }]),
  ),
});
const grant = positionals[0];
for (const name of ["jwks-url", "issuer", "audience", "tenant", "media", "seen"]) {
  if (!values[name]) refuse(`--${name} is required`);
}
if (!grant) refuse("no grant given");

// One key set per process: cached, refetched (at most every 30 s) when a kid is unknown.
const keys = createRemoteJWKSet(new URL(values["jwks-url"]), { cacheMaxAge: 300_000, cooldownDuration: 30_000 });
let claims;
try {
  ({ payload: claims } = await jwtVerify(grant, keys, {
    algorithms: ["EdDSA"],
    typ: "grant+jwt",
    issuer: values.issuer,
    audience: values.audience,
    clockTolerance: LEEWAY_SECONDS,
    requiredClaims: REQUIRED,
  }));
} catch (e) {
  refuse(`${e.code ?? e.name}: ${e.message}`);
}
if (claims.tid !== values.tenant) refuse("tid is another tenant's");
if (claims.mid !== values.media) refuse("mid is another entry's");
if (!rememberOnce(values.seen, claims.jti, claims.exp)) refuse("replay: this grant was used before");
console.log(JSON.stringify({ accepted: true, claims }));
