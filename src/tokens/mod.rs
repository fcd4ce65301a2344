//! Tokens: the keyring, invite tokens, grants and the JWKS that publishes grant keys.

pub mod grant;
pub mod invite;
pub mod keyring;

pub use grant::{GrantClaims, sign_grant, verify_grant};
pub use invite::{InviteClaims, InvitePersonalData, VerifiedInvite};
pub use keyring::{Keyring, Purpose, random_id};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use keyring::Key;

/// Longest token accepted, bytes; anything longer is refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Too long, or not three base64url segments: 400 `malformed_token`.
    Malformed,
    /// Anything else (header, key, algorithm, signature, claims): 401 `invalid_token`. The
    /// reason is for logs only; clients learn nothing about which check failed.
    Invalid(&'static str),
}

/// Bytes of the base64url alphabet.
const BASE64URL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

/// The cheap structural checks that come before any decoding: the length cap and three
/// non-empty base64url segments, in one pass over the bytes.
pub fn check_compact_shape(token: &str) -> Result<(), TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (mut dots, mut segment_len) = (0, 0);
    for &b in token.as_bytes() {
        if b == b'.' {
            if segment_len == 0 {
                return Err(TokenError::Malformed);
            }
            dots += 1;
            segment_len = 0;
        } else if BASE64URL[usize::from(b)] {
            segment_len += 1;
        } else {
            return Err(TokenError::Malformed);
        }
    }
    if dots != 2 || segment_len == 0 {
        return Err(TokenError::Malformed);
    }
    Ok(())
}

/// A compact JWS of `claims` signed by `key` (its prepared header, then the claims, then an
/// Ed25519 signature or an HMAC), for invites and grants alike. Signed here rather than through
/// `jsonwebtoken::encode`, which would re-parse a PKCS#8 key or set up an HMAC key per call.
pub(crate) fn compact_jws(key: &Key, claims: &impl serde::Serialize) -> Result<String, TokenError> {
    let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Invalid("claims"))?;
    let mut token = String::with_capacity(key.header.len() + payload.len() * 4 / 3 + 90);
    token.push_str(&key.header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let signature = match (&key.ed25519, &key.hmac) {
        (Some(pair), _) => pair.sign(token.as_bytes()).as_ref().to_vec(),
        (None, Some(mac)) => aws_lc_rs::hmac::sign(mac, token.as_bytes())
            .as_ref()
            .to_vec(),
        (None, None) => return Err(TokenError::Invalid("cannot sign")),
    };
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// The SHA-256 of `bytes`, lowercase hex (idempotency records, revisions).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut hex = String::with_capacity(64);
    for b in digest.as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// The JWKS document of the grant keys: every EdDSA public key, never a secret.
pub fn jwks_json(ring: &Keyring) -> String {
    let keys: Vec<serde_json::Value> = ring
        .keys()
        .iter()
        .filter_map(|key| {
            key.public_x().map(|x| {
                serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": key.kid, "use": "sig", "alg": "EdDSA" })
            })
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_shape() {
        let long = format!("a.{}.c", "b".repeat(MAX_TOKEN_LEN));
        let cases: [(&str, bool); 13] = [
            ("a.b.c", true),
            ("aZ09-_.b.c", true),
            ("a.b", false),
            ("a.b.", false),
            (".b.c", false),
            ("", false),
            ("a.b.c\u{e9}", false),
            ("a.b.c.d", false),
            ("a..c", false),
            ("a.b.c=", false),
            ("a.b+.c", false),
            ("a.b. c", false),
            (&long, false),
        ];
        for (token, ok) in cases {
            assert_eq!(check_compact_shape(token).is_ok(), ok, "{token:.20}");
        }
    }
}
