//! Invite tokens: `typ: invite+jwt` JWTs whose invitee data is sealed with an AEAD, so a link
//! that leaks through a proxy log or a chat preview reveals no personal data.

use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::keyring::{Key, Keyring, Purpose, random_bytes};
use super::{TokenError, check_compact_shape, compact_jws};

/// `typ` header of invite tokens.
pub const INVITE_TYP: &str = Purpose::Invite.typ();

/// Claims of an invite token. Claims this version does not know are ignored, so a rollback or
/// a mixed-version rollout never turns links a newer version minted into `invalid_token`; the
/// claims it knows are checked as strictly as ever.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteClaims {
    /// Issuer: the service.
    pub iss: String,
    /// Audience: `invitetomedia:<tenant>`.
    pub aud: String,
    /// Invite id.
    pub jti: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Not before, unix seconds.
    pub nbf: i64,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Tenant id.
    pub tid: String,
    /// Media entry id.
    pub mid: String,
    /// Media type.
    pub mty: String,
    /// Invitee role.
    pub role: String,
    /// Use limit, `-1` unlimited.
    pub max: i64,
    /// Inviter's user id.
    pub inv: String,
    /// The language the link was made in (the create's `language`), for its pages and emails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lng: Option<String>,
    /// Sealed [`InvitePersonalData`], base64url(nonce ‖ ciphertext ‖ tag).
    pub pii: String,
}

/// What an invite's `aud` holds before the tenant id.
const AUDIENCE_PREFIX: &str = "invitetomedia:";

impl InviteClaims {
    /// The audience an invite of `tenant` carries.
    pub fn audience_for(tenant: &str) -> String {
        format!("{AUDIENCE_PREFIX}{tenant}")
    }
}

/// The personal data an invite carries, sealed inside the token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvitePersonalData {
    /// Invited address; empty on an open link.
    pub email: String,
    /// Invitee's first name; empty on an open link.
    pub first_name: String,
    /// Invitee's last name; empty on an open link.
    pub last_name: String,
    /// Media title, for the landing page and the grant.
    pub title: String,
    /// Inviter's display name.
    pub inviter_name: String,
}

impl InvitePersonalData {
    /// Whether the link is open (not bound to an email).
    pub fn is_open(&self) -> bool {
        self.email.is_empty()
    }

    // Fields are validated free of control characters, so NUL separates them unambiguously.
    fn encode(&self) -> Vec<u8> {
        [
            &self.email,
            &self.first_name,
            &self.last_name,
            &self.title,
            &self.inviter_name,
        ]
        .map(String::as_str)
        .join("\0")
        .into_bytes()
    }

    fn decode(bytes: Vec<u8>) -> Option<Self> {
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.split('\0').map(str::to_owned);
        let data = Self {
            email: parts.next()?,
            first_name: parts.next()?,
            last_name: parts.next()?,
            title: parts.next()?,
            inviter_name: parts.next()?,
        };
        parts.next().is_none().then_some(data)
    }
}

/// A verified invite: its claims and the key that signed it (to open the sealed data).
#[derive(Debug)]
pub struct VerifiedInvite<'k> {
    /// The claims, signature, `typ`, `iss` and `aud` checked; time claims not yet.
    pub claims: InviteClaims,
    key: &'k Key,
}

impl VerifiedInvite<'_> {
    /// Opens the sealed personal data.
    pub fn personal_data(&self) -> Result<InvitePersonalData, TokenError> {
        open(self.key, &self.claims.jti, &self.claims.pii)
    }

    /// The keyed digest under which the store keeps a one-time code of this link: an HMAC
    /// with a key derived from the link's own signing key, over tenant, invite id and code, so
    /// a code is worth nothing on another link and the store never holds anything from which
    /// the code could be found.
    pub fn code_digest(&self, code: &str) -> String {
        let mut context = hmac::Context::with_key(&self.key.code_mac);
        for part in [
            self.claims.tid.as_bytes(),
            b"\0",
            self.claims.jti.as_bytes(),
            b"\0",
            code.as_bytes(),
        ] {
            context.update(part);
        }
        URL_SAFE_NO_PAD.encode(context.sign().as_ref())
    }
}

/// Signs a new invite with the ring's signing key, sealing `personal` inside it.
/// `claims.pii` is filled here.
pub fn mint(
    ring: &Keyring,
    mut claims: InviteClaims,
    personal: &InvitePersonalData,
) -> Result<String, TokenError> {
    let key = ring.signer();
    claims.pii = seal(key, &claims.jti, personal)?;
    compact_jws(key, &claims)
}

/// Verifies an invite in the fixed order: length cap, three segments, `typ`, no key-carrying
/// headers, `kid` in the ring, `alg` equal to the key's, signature, `iss`, `aud` matching `tid`.
/// Time claims are left to the caller, whose error precedence puts them after the module check.
pub fn verify<'k>(
    ring: &'k Keyring,
    issuer: &str,
    token: &str,
) -> Result<VerifiedInvite<'k>, TokenError> {
    check_compact_shape(token)?;
    let (message, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (header, payload) = message.split_once('.').ok_or(TokenError::Malformed)?;
    // Every invite this service signs carries one of the ring's own prepared headers, byte
    // for byte: a match pins the key (and with it `alg`) without parsing JSON. Any other
    // header is parsed and held to the same rules, so a foreign one is refused with its reason.
    let key = match ring.keys().iter().find(|k| k.header == header) {
        Some(key) => key,
        None => key_for_header(ring, token)?,
    };
    let valid = match &key.hmac {
        Some(mac) => {
            let mut tag = [0u8; 32];
            matches!(URL_SAFE_NO_PAD.decode_slice(signature, &mut tag), Ok(32))
                && hmac::verify(mac, message.as_bytes(), &tag).is_ok()
        }
        None => jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key.decoding, key.alg)
            .map_err(|_| TokenError::Invalid("signature"))?,
    };
    if !valid {
        return Err(TokenError::Invalid("signature or claims"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Invalid("claims"))?;
    let claims: InviteClaims =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Invalid("signature or claims"))?;
    if claims.iss != issuer {
        return Err(TokenError::Invalid("iss"));
    }
    if claims.aud.strip_prefix(AUDIENCE_PREFIX) != Some(claims.tid.as_str()) {
        return Err(TokenError::Invalid("aud"));
    }
    Ok(VerifiedInvite { claims, key })
}

/// The key of a header that is not one of the ring's own: `typ`, no key-carrying headers,
/// `kid` in the ring, `alg` equal to the key's.
fn key_for_header<'k>(ring: &'k Keyring, token: &str) -> Result<&'k Key, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid("header"))?;
    if header.typ.as_deref() != Some(INVITE_TYP) {
        return Err(TokenError::Invalid("typ"));
    }
    if header.jku.is_some()
        || header.x5u.is_some()
        || header.jwk.is_some()
        || header.x5c.is_some()
        || header.crit.is_some()
    {
        return Err(TokenError::Invalid("key-carrying header"));
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| ring.get(kid))
        .ok_or(TokenError::Invalid("kid"))?;
    if header.alg != key.alg {
        return Err(TokenError::Invalid("alg"));
    }
    Ok(key)
}

fn seal(key: &Key, jti: &str, personal: &InvitePersonalData) -> Result<String, TokenError> {
    let nonce_bytes = random_bytes::<NONCE_LEN>();
    let mut buffer = personal.encode();
    key.aead
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(jti.as_bytes()),
            &mut buffer,
        )
        .map_err(|_| TokenError::Invalid("cannot seal"))?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + buffer.len());
    sealed.extend_from_slice(&nonce_bytes);
    sealed.extend_from_slice(&buffer);
    Ok(URL_SAFE_NO_PAD.encode(sealed))
}

fn open(key: &Key, jti: &str, sealed: &str) -> Result<InvitePersonalData, TokenError> {
    let invalid = TokenError::Invalid("sealed data");
    let mut bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| invalid)?;
    if bytes.len() < NONCE_LEN {
        return Err(invalid);
    }
    let mut ciphertext = bytes.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| invalid)?;
    let plain_len = key
        .aead
        .open_in_place(nonce, Aad::from(jti.as_bytes()), &mut ciphertext)
        .map_err(|_| invalid)?
        .len();
    ciphertext.truncate(plain_len);
    InvitePersonalData::decode(ciphertext).ok_or(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{KeySettings, Secret};
    use crate::tokens::keyring::Purpose;

    fn ring(kid: &str, secret: &str) -> Keyring {
        let settings = KeySettings {
            kid: kid.into(),
            alg: "HS256".into(),
            secret: Secret::from(secret),
            secret_file: None,
            private_key_pem: Secret::default(),
            private_key_file: None,
        };
        Keyring::from_settings(Purpose::Invite, &[settings], false).unwrap()
    }

    fn claims() -> InviteClaims {
        InviteClaims {
            iss: "invitetomedia".into(),
            aud: "invitetomedia:demo".into(),
            jti: "abc".into(),
            iat: 1,
            nbf: 1,
            exp: 2,
            tid: "demo".into(),
            mid: "1_abc".into(),
            mty: "room".into(),
            role: "viewer".into(),
            max: 1,
            inv: "prof1".into(),
            lng: None,
            pii: String::new(),
        }
    }

    fn personal() -> InvitePersonalData {
        InvitePersonalData {
            email: "ada@example.com".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            title: "Weekly seminar".into(),
            inviter_name: "Prof One".into(),
        }
    }

    #[test]
    fn round_trip_keeps_personal_data_out_of_the_token() {
        let ring = ring("i1", &"k".repeat(32));
        let token = mint(&ring, claims(), &personal()).unwrap();
        // Whole values only: a random ciphertext contains a short string like "ada" about
        // once in a few thousand tokens, a 8-character one practically never.
        let personal_values = ["ada@example.com", "Lovelace", "Weekly seminar", "Prof One"];
        for segment in token.split('.').take(2) {
            let decoded =
                String::from_utf8_lossy(&URL_SAFE_NO_PAD.decode(segment).unwrap()).to_string();
            for value in personal_values {
                assert!(!decoded.contains(value), "{value} in {decoded}");
            }
        }
        let payload: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        let sealed = URL_SAFE_NO_PAD
            .decode(payload["pii"].as_str().unwrap())
            .unwrap();
        for value in personal_values {
            assert!(
                !sealed.windows(value.len()).any(|w| w == value.as_bytes()),
                "{value} readable in the sealed data"
            );
        }
        let verified = verify(&ring, "invitetomedia", &token).unwrap();
        assert_eq!(verified.claims.mid, "1_abc");
        assert_eq!(verified.personal_data().unwrap(), personal());
    }

    #[test]
    fn eddsa_invite_keys_sign_and_verify() {
        let pem = crate::tokens::keyring::generate("EdDSA").unwrap();
        let settings = KeySettings {
            kid: "e1".into(),
            alg: "EdDSA".into(),
            secret: Secret::default(),
            secret_file: None,
            private_key_pem: Secret::from(pem.as_str()),
            private_key_file: None,
        };
        let ring = Keyring::from_settings(Purpose::Invite, &[settings], false).unwrap();
        let token = mint(&ring, claims(), &personal()).unwrap();
        let verified = verify(&ring, "invitetomedia", &token).unwrap();
        assert_eq!(verified.personal_data().unwrap(), personal());
        // Change one character in the middle of the signature.
        let at = token.len() - 20;
        let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
        let tampered = format!("{}{swapped}{}", &token[..at], &token[at + 1..]);
        assert!(verify(&ring, "invitetomedia", &tampered).is_err());
    }

    #[test]
    fn sealed_data_is_bound_to_its_token_id() {
        let ring = ring("i1", &"k".repeat(32));
        let key = ring.signer();
        let sealed = seal(key, "jti-1", &personal()).unwrap();
        assert!(open(key, "jti-1", &sealed).is_ok());
        assert!(open(key, "jti-2", &sealed).is_err());
    }

    #[test]
    fn another_key_with_the_same_kid_fails() {
        let token = mint(&ring("i1", &"a".repeat(32)), claims(), &personal()).unwrap();
        let err = verify(&ring("i1", &"b".repeat(32)), "invitetomedia", &token).unwrap_err();
        assert_eq!(err, TokenError::Invalid("signature or claims"));
    }

    #[test]
    fn issuer_and_audience_are_checked() {
        let ring = ring("i1", &"k".repeat(32));
        let token = mint(&ring, claims(), &personal()).unwrap();
        assert_eq!(
            verify(&ring, "someone-else", &token).unwrap_err(),
            TokenError::Invalid("iss")
        );
        let mut other = claims();
        other.aud = "invitetomedia:acme".into();
        let token = mint(&ring, other, &personal()).unwrap();
        assert_eq!(
            verify(&ring, "invitetomedia", &token).unwrap_err(),
            TokenError::Invalid("aud")
        );
    }

    /// Re-signs `token`'s payload under `header` with the HS256 `secret`, through jsonwebtoken.
    fn resigned(token: &str, header: &str, secret: &str) -> String {
        let payload = token.split('.').nth(1).unwrap();
        let message = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header));
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
                .unwrap();
        format!("{message}.{signature}")
    }

    #[test]
    fn headers_other_than_the_rings_own_are_parsed_and_held_to_the_rules() {
        let secret = "k".repeat(32);
        let ring = ring("i1", &secret);
        let token = mint(&ring, claims(), &personal()).unwrap();
        // The same header with its members in another order, by another JWT library.
        let reordered = resigned(
            &token,
            r#"{"kid":"i1","typ":"invite+jwt","alg":"HS256"}"#,
            &secret,
        );
        assert_ne!(reordered.split('.').next(), token.split('.').next());
        let verified = verify(&ring, "invitetomedia", &reordered).unwrap();
        assert_eq!(verified.personal_data().unwrap(), personal());
        for (header, reason) in [
            (r#"{"kid":"i1","typ":"JWT","alg":"HS256"}"#, "typ"),
            (
                r#"{"kid":"i1","typ":"invite+jwt","alg":"HS256","jku":"https://x"}"#,
                "key-carrying header",
            ),
            (r#"{"kid":"i2","typ":"invite+jwt","alg":"HS256"}"#, "kid"),
            (r#"{"kid":"i1","typ":"invite+jwt","alg":"HS384"}"#, "alg"),
        ] {
            let forged = resigned(&token, header, &secret);
            assert_eq!(
                verify(&ring, "invitetomedia", &forged).unwrap_err(),
                TokenError::Invalid(reason),
                "{header}"
            );
        }
    }

    #[test]
    fn an_hs256_signature_must_be_exactly_one_mac() {
        let ring = ring("i1", &"k".repeat(32));
        let token = mint(&ring, claims(), &personal()).unwrap();
        let (message, signature) = token.rsplit_once('.').unwrap();
        let mac = URL_SAFE_NO_PAD.decode(signature).unwrap();
        for bad in [&mac[..31], &[mac.as_slice(), &[0]].concat()[..]] {
            let forged = format!("{message}.{}", URL_SAFE_NO_PAD.encode(bad));
            assert_eq!(
                verify(&ring, "invitetomedia", &forged).unwrap_err(),
                TokenError::Invalid("signature or claims")
            );
        }
    }

    #[test]
    fn claims_of_a_newer_version_are_ignored() {
        let secret = "k".repeat(32);
        let ring = ring("i1", &secret);
        let token = mint(&ring, claims(), &personal()).unwrap();
        let mut segments = token.split('.');
        let header = segments.next().unwrap();
        let payload = URL_SAFE_NO_PAD.decode(segments.next().unwrap()).unwrap();
        let mut payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        payload["ext"] = serde_json::json!({ "from": "a newer version" });
        payload["cnf"] = serde_json::json!(1);
        let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload.to_string()));
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
                .unwrap();
        let verified = verify(&ring, "invitetomedia", &format!("{message}.{signature}")).unwrap();
        assert_eq!(verified.claims.mid, "1_abc");
        assert_eq!(verified.personal_data().unwrap(), personal());
    }
}
