//! Grants: short-lived `typ: grant+jwt` EdDSA tokens the platform verifies through the JWKS to
//! open a session scoped to one entry and role.
//!
//! Signed by [`super::compact_jws`], shared with invites: `jsonwebtoken::encode` would re-parse
//! the PKCS#8 key on every call, doubling the cost of the redeem path's largest operation.

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

use super::keyring::{Keyring, Purpose};
use super::{TokenError, check_compact_shape, compact_jws};

/// `typ` header of grants.
pub const GRANT_TYP: &str = Purpose::Grant.typ();

/// Claims of a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantClaims {
    /// Issuer: the service.
    pub iss: String,
    /// The tenant's `grant_audience`.
    pub aud: String,
    /// Participant id: UUIDv5 of `invitetomedia:<tenant>:<lowercased email>` on email-bound
    /// links, of `invitetomedia:<tenant>:open:<lowercased email>` on open links, so a
    /// self-declared address can never produce an invited person's `sub`.
    pub sub: String,
    /// Grant id.
    pub jti: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expiry, unix seconds (short).
    pub exp: i64,
    /// Tenant id.
    pub tid: String,
    /// Media entry id.
    pub mid: String,
    /// Media type.
    pub mty: String,
    /// Role on the entry.
    pub role: String,
    /// Participant's display name.
    pub name: String,
    /// Participant's email.
    pub email: String,
    /// The invite this grant was redeemed from (its `id`).
    pub iid: String,
    /// True when the inviter set the email and the participant typed the same; false on open
    /// links, whose email is self-declared.
    pub bound: bool,
    /// True only when the participant proved the inbox with a one-time code.
    pub email_verified: bool,
}

/// Signs a grant with the ring's signing key (EdDSA).
pub fn sign_grant(ring: &Keyring, claims: &GrantClaims) -> Result<String, TokenError> {
    let key = ring.signer();
    if key.ed25519.is_none() {
        return Err(TokenError::Invalid("grant key is not EdDSA"));
    }
    compact_jws(key, claims)
}

/// Verifies a grant as the platform would: `typ`, `kid`, EdDSA signature, `iss`, `aud` and
/// `exp` with `leeway` seconds.
pub fn verify_grant(
    ring: &Keyring,
    issuer: &str,
    audiences: &[&str],
    leeway: u64,
    token: &str,
) -> Result<GrantClaims, TokenError> {
    check_compact_shape(token)?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid("header"))?;
    if header.typ.as_deref() != Some(GRANT_TYP) || header.alg != Algorithm::EdDSA {
        return Err(TokenError::Invalid("typ or alg"));
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| ring.get(kid))
        .ok_or(TokenError::Invalid("kid"))?;
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[issuer]);
    validation.set_audience(audiences);
    validation.leeway = leeway;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<GrantClaims>(token, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|_| TokenError::Invalid("signature or claims"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::keyring::Purpose;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn claims(exp: i64) -> GrantClaims {
        GrantClaims {
            iss: "invitetomedia".into(),
            aud: "demo-platform".into(),
            sub: "s".into(),
            jti: "j".into(),
            iat: exp - 300,
            exp,
            tid: "demo".into(),
            mid: "1_abc".into(),
            mty: "room".into(),
            role: "viewer".into(),
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            iid: "i".into(),
            bound: true,
            email_verified: false,
        }
    }

    #[test]
    fn signed_grants_verify_with_jsonwebtoken() {
        let ring = Keyring::from_settings(Purpose::Grant, &[], false).unwrap();
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let token = sign_grant(&ring, &claims(now + 300)).unwrap();
        assert_eq!(
            verify_grant(&ring, "invitetomedia", &["demo-platform"], 0, &token).unwrap(),
            claims(now + 300)
        );
        assert!(verify_grant(&ring, "invitetomedia", &["other"], 0, &token).is_err());
        let expired = sign_grant(&ring, &claims(now - 120)).unwrap();
        assert!(verify_grant(&ring, "invitetomedia", &["demo-platform"], 60, &expired).is_err());
    }

    #[test]
    fn jwks_publishes_only_public_keys() {
        let ring = Keyring::from_settings(Purpose::Grant, &[], false).unwrap();
        let jwks: serde_json::Value =
            serde_json::from_str(&crate::tokens::jwks_json(&ring)).unwrap();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert!(key.get("d").is_none());
        let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
        assert_eq!(x.len(), 32);
    }
}
