#!/usr/bin/env python3
"""Reference verifier of invitetomedia grants, for platform engineers (PyJWT).

What the platform's accept_url handler does with the posted `grant` field:

    verify_grant.py --jwks-url https://invites.example.org/.well-known/jwks.json \
        --issuer invitetomedia --audience <your grant_audience> --tenant <your tenant id> \
        --media <the entry being opened> --seen /var/lib/platform/seen-grants.json GRANT

Prints the verified claims as JSON and exits 0, or prints why the grant is refused and exits 1.
Checks, in order: header (typ grant+jwt, alg EdDSA, a kid), the signature with the JWKS key of
that kid (the JWKS is cached and fetched again when a kid is unknown: that is how a key
rotation arrives), iss, aud, exp (5 s of clock skew), the claims every grant has, tid, mid,
then replay (each jti is accepted once; seen jtis are kept until their exp).
Before linking the visit to an existing account, also require `bound` or `email_verified`
(see the README): an open link's email is self-declared.

Needs PyJWT with its crypto extra (pip install "pyjwt[crypto]"; tested with pyjwt 2.15.1 and
cryptography 50.0.2).
"""

import argparse
import json
import os
import sys
import tempfile
import time

import jwt

REQUIRED = ["iss", "aud", "sub", "tid", "iid", "mid", "mty", "role", "email", "bound",
            "email_verified", "jti", "iat", "exp"]
LEEWAY_SECONDS = 5


def refuse(reason):
    print(json.dumps({"accepted": False, "reason": reason}))
    sys.exit(1)


def remember_once(path, jti, exp):
    """Records jti until exp; False when it was seen before. A real platform keeps this in its
    database or cache (SET NX with a TTL), shared by every instance."""
    now = time.time()
    try:
        with open(path) as f:
            seen = {k: v for k, v in json.load(f).items() if v + LEEWAY_SECONDS > now}
    except FileNotFoundError:
        seen = {}
    if jti in seen:
        return False
    seen[jti] = exp
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)))
    with os.fdopen(fd, "w") as f:
        json.dump(seen, f)
    os.replace(tmp, path)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ["jwks-url", "issuer", "audience", "tenant", "media", "seen"]:
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("grant")
    args = parser.parse_args()

    try:
        header = jwt.get_unverified_header(args.grant)
    except jwt.PyJWTError as e:
        refuse(f"not a JWS: {e}")
    if header.get("typ") != "grant+jwt" or header.get("alg") != "EdDSA" or not header.get("kid"):
        refuse("header: typ must be grant+jwt, alg EdDSA, with a kid")
    # Cached for 5 minutes; an unknown kid fetches the set again once.
    keys = jwt.PyJWKClient(args.jwks_url, cache_jwk_set=True, lifespan=300)
    try:
        key = keys.get_signing_key(header["kid"])
        claims = jwt.decode(
            args.grant,
            key.key,
            algorithms=["EdDSA"],
            audience=args.audience,
            issuer=args.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED},
        )
    except jwt.PyJWTError as e:
        refuse(f"{type(e).__name__}: {e}")
    if claims["tid"] != args.tenant:
        refuse("tid is another tenant's")
    if claims["mid"] != args.media:
        refuse("mid is another entry's")
    if not remember_once(args.seen, claims["jti"], claims["exp"]):
        refuse("replay: this grant was used before")
    print(json.dumps({"accepted": True, "claims": claims}))


if __name__ == "__main__":
    main()
