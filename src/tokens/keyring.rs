//! Signing keys by `kid`, parsed once at start-up. The first key of a ring signs; every key
//! verifies, which is how keys rotate without downtime.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::settings::{ConfigError, KeySettings, read_key_file};
pub use crate::tuning::random_bytes;

/// Shortest HS256 secret accepted, bytes (the HMAC-SHA256 block-size half; RFC 7518 §3.2).
const MIN_HS256_SECRET: usize = 32;

/// What a keyring signs; decides which algorithms are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Invite tokens: HS256 (the issuer is the verifier) or EdDSA.
    Invite,
    /// Grants: EdDSA only, because the platform verifies them with the public key.
    Grant,
}

impl Purpose {
    /// The `typ` header of the tokens this ring signs.
    pub const fn typ(self) -> &'static str {
        match self {
            Self::Invite => "invite+jwt",
            Self::Grant => "grant+jwt",
        }
    }

    fn section(self) -> &'static str {
        match self {
            Self::Invite => "keys.invite",
            Self::Grant => "keys.grant",
        }
    }
}

/// One key: its id, pinned algorithm and the material prepared for every use.
pub struct Key {
    /// Key id, carried in token headers.
    pub kid: String,
    /// The only algorithm this key accepts.
    pub alg: Algorithm,
    /// The HMAC key of an HS256 key, its inner and outer pads computed once (jsonwebtoken
    /// would set the key up again for every signature and every check).
    pub(crate) hmac: Option<hmac::Key>,
    /// For jsonwebtoken verification of EdDSA signatures.
    pub(crate) decoding: DecodingKey,
    /// base64url of this key's compact header `{"alg":…,"typ":…,"kid":…}` for the tokens of
    /// its ring's purpose, built once.
    pub(crate) header: String,
    /// The Ed25519 pair, kept parsed so a grant signature costs one signing operation.
    pub(crate) ed25519: Option<Ed25519KeyPair>,
    /// AEAD key for the invitee's personal data inside invite tokens, derived from this key.
    pub(crate) aead: LessSafeKey,
    /// HMAC key for the digests of one-time codes of the links this key signs, derived from it.
    pub(crate) code_mac: hmac::Key,
}

impl fmt::Debug for Key {
    // Key material never prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// The raw Ed25519 public key, base64url (JWK `x`), for EdDSA keys.
    pub fn public_x(&self) -> Option<String> {
        self.ed25519
            .as_ref()
            .map(|pair| URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()))
    }

    fn hs256(purpose: Purpose, kid: &str, secret: &[u8]) -> Self {
        Self::assemble(
            purpose,
            kid,
            Algorithm::HS256,
            Some(hmac::Key::new(hmac::HMAC_SHA256, secret)),
            DecodingKey::from_secret(secret),
            None,
            secret,
        )
    }

    fn ed25519(purpose: Purpose, kid: &str, pkcs8: &[u8]) -> Result<Self, &'static str> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|_| "is not an Ed25519 PKCS#8 private key")?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let decoding =
            DecodingKey::from_ed_components(&x).map_err(|_| "has an unusable public key")?;
        // The PKCS#8 document contains the private seed: it is the secret the AEAD key derives from.
        Ok(Self::assemble(
            purpose,
            kid,
            Algorithm::EdDSA,
            None,
            decoding,
            Some(pair),
            pkcs8,
        ))
    }

    fn assemble(
        purpose: Purpose,
        kid: &str,
        alg: Algorithm,
        hmac: Option<hmac::Key>,
        decoding: DecodingKey,
        ed25519: Option<Ed25519KeyPair>,
        ikm: &[u8],
    ) -> Self {
        let alg_name = if alg == Algorithm::EdDSA {
            "EdDSA"
        } else {
            "HS256"
        };
        let header = URL_SAFE_NO_PAD.encode(
            serde_json::json!({ "alg": alg_name, "typ": purpose.typ(), "kid": kid }).to_string(),
        );
        // A distinct derived key: the same secret never serves as both MAC key and cipher key.
        let prk = Salt::new(HKDF_SHA256, b"invitetomedia/invite-pii/v1").extract(ikm);
        let info = [kid.as_bytes()];
        let okm = prk
            .expand(&info, &AES_256_GCM)
            .expect("AES-256 key length is valid for HKDF-SHA256");
        let aead = LessSafeKey::new(UnboundKey::from(okm));
        let code_mac = hmac::Key::from(
            Salt::new(HKDF_SHA256, b"invitetomedia/one-time-code/v1")
                .extract(ikm)
                .expand(&info, hmac::HMAC_SHA256)
                .expect("an HMAC-SHA256 key length is valid for HKDF-SHA256"),
        );
        Self {
            kid: kid.to_owned(),
            alg,
            hmac,
            decoding,
            header,
            ed25519,
            aead,
            code_mac,
        }
    }
}

/// Keys by id; the first signs.
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<Key>,
    by_kid: HashMap<String, usize>,
    /// Whether the keys were generated at start-up (no keys configured).
    pub ephemeral: bool,
}

impl Keyring {
    /// Builds a ring from configuration. With no keys configured, one ephemeral key is
    /// generated (the caller warns; production configurations refuse this earlier).
    pub fn from_settings(
        purpose: Purpose,
        configured: &[KeySettings],
        production: bool,
    ) -> Result<Self, ConfigError> {
        if configured.is_empty() {
            let key = match purpose {
                Purpose::Invite => Key::hs256(purpose, "ephemeral-invite", &secret_bytes::<32>()),
                Purpose::Grant => {
                    let pkcs8 =
                        Ed25519KeyPair::generate_pkcs8v1(&aws_lc_rs::rand::SystemRandom::new())
                            .map_err(|_| {
                                ConfigError::new(
                                    purpose.section(),
                                    "cannot generate an ephemeral key",
                                )
                            })?;
                    Key::ed25519(purpose, "ephemeral-grant", pkcs8.as_ref())
                        .map_err(|p| ConfigError::new(purpose.section(), p))?
                }
            };
            return Ok(Self::new(vec![key], true));
        }
        let mut keys = Vec::with_capacity(configured.len());
        for (index, settings) in configured.iter().enumerate() {
            let key = load_key(purpose, index, settings, production)?;
            if keys.iter().any(|k: &Key| k.kid == key.kid) {
                return Err(ConfigError::new(
                    format!("{}[{index}].kid", purpose.section()),
                    "kids must be unique",
                ));
            }
            keys.push(key);
        }
        Ok(Self::new(keys, false))
    }

    fn new(keys: Vec<Key>, ephemeral: bool) -> Self {
        let by_kid = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.kid.clone(), i))
            .collect();
        Self {
            keys,
            by_kid,
            ephemeral,
        }
    }

    /// The key that signs new tokens.
    pub fn signer(&self) -> &Key {
        &self.keys[0]
    }

    /// The key with this id, if the ring holds it. Keys are never fetched from elsewhere.
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.by_kid.get(kid).map(|&i| &self.keys[i])
    }

    /// Every key, signer first.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// What may be shown of the ring: each key's id, algorithm and public key (EdDSA).
    pub fn public_fingerprint(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for key in &self.keys {
            out.extend_from_slice(key.kid.as_bytes());
            out.extend_from_slice(format!("{:?}", key.alg).as_bytes());
            if let Some(pair) = &key.ed25519 {
                out.extend_from_slice(pair.public_key().as_ref());
            }
        }
        out
    }

    /// [`Keyring::public_fingerprint`] and each HS256 key's MAC of a fixed text: tells whether a
    /// key file's content changed. Derived from the secrets, so it is compared, never shown (a
    /// shown MAC would let anyone test guesses of a weak secret offline).
    pub fn fingerprint(&self) -> Vec<u8> {
        let mut out = self.public_fingerprint();
        for key in &self.keys {
            if let Some(mac) = &key.hmac {
                out.extend_from_slice(hmac::sign(mac, b"invitetomedia key fingerprint").as_ref());
            }
        }
        out
    }
}

fn load_key(
    purpose: Purpose,
    index: usize,
    settings: &KeySettings,
    production: bool,
) -> Result<Key, ConfigError> {
    let field = |name: &str| format!("{}[{index}].{name}", purpose.section());
    let kid = settings.kid.trim();
    if kid.is_empty() || kid.len() > 64 || !kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            field("kid"),
            "must be 1 to 64 printable characters",
        ));
    }
    match (purpose, settings.alg.as_str()) {
        (Purpose::Invite, "HS256") => {
            // Errors about the secret name where it came from: the key, and the file if any.
            let (secret, refuse) = match (&settings.secret, &settings.secret_file) {
                (s, None) if !s.is_empty() => (
                    s.expose().to_owned(),
                    Box::new(|p: String| ConfigError::new(field("secret"), p))
                        as Box<dyn Fn(String) -> ConfigError>,
                ),
                (s, Some(path)) if s.is_empty() => (
                    read_key_file(&field("secret_file"), path)?,
                    Box::new(move |p: String| {
                        ConfigError::new(field("secret_file"), p)
                            .in_file(path.display().to_string())
                    }) as Box<dyn Fn(String) -> ConfigError>,
                ),
                _ => {
                    return Err(ConfigError::new(
                        field("secret"),
                        "give exactly one of secret or secret_file",
                    ));
                }
            };
            let secret = secret.trim();
            if secret.len() < MIN_HS256_SECRET {
                return Err(refuse(
                    "an HS256 secret must be at least 32 bytes".to_owned(),
                ));
            }
            if production && let Some(word) = placeholder_word(secret) {
                return Err(refuse(format!(
                    "contains {word:?}: a placeholder, not a secret (APP_ENV=production; generate one with `invitetomedia keygen --alg HS256`)"
                )));
            }
            Ok(Key::hs256(purpose, kid, secret.as_bytes()))
        }
        (_, "EdDSA") => {
            let pem = match (&settings.private_key_pem, &settings.private_key_file) {
                (p, None) if !p.is_empty() => p.expose().to_owned(),
                (p, Some(path)) if p.is_empty() => read_key_file(&field("private_key_file"), path)?,
                _ => {
                    return Err(ConfigError::new(
                        field("private_key_pem"),
                        "give exactly one of private_key_pem or private_key_file",
                    ));
                }
            };
            let der = pem_to_der(&pem).ok_or_else(|| {
                ConfigError::new(field("private_key_pem"), "is not a PEM PRIVATE KEY block")
            })?;
            Key::ed25519(purpose, kid, &der)
                .map_err(|p| ConfigError::new(field("private_key_pem"), p))
        }
        (Purpose::Invite, _) => Err(ConfigError::new(field("alg"), "must be HS256 or EdDSA")),
        (Purpose::Grant, _) => Err(ConfigError::new(field("alg"), "must be EdDSA")),
    }
}

/// Words that mark a placeholder or a hand-typed HS256 secret (the example Secret's
/// `REPLACE-WITH-…` among them); production refuses secrets containing one.
const PLACEHOLDER_WORDS: [&str; 6] = [
    "replace",
    "change",
    "example",
    "placeholder",
    "secret",
    "password",
];

/// The first placeholder word `secret` contains, case-insensitively.
fn placeholder_word(secret: &str) -> Option<&'static str> {
    let lower = secret.to_ascii_lowercase();
    PLACEHOLDER_WORDS
        .into_iter()
        .find(|word| lower.contains(word))
}

/// Decodes a `-----BEGIN PRIVATE KEY-----` block.
fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PRIVATE KEY-----")?
        .strip_suffix("-----END PRIVATE KEY-----")?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}

/// Encodes PKCS#8 DER as a PEM `PRIVATE KEY` block.
pub fn der_to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// Fresh cryptographically random bytes straight from the generator: for key material.
pub fn secret_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source is available");
    bytes
}

/// A random URL-safe id of 128 bits (22 characters): token ids and generated device ids.
pub fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// A new key for `invitetomedia keygen`: an HS256 secret, or an Ed25519 PKCS#8 PEM.
pub fn generate(alg: &str) -> Result<String, String> {
    match alg {
        "HS256" => Ok(URL_SAFE_NO_PAD.encode(secret_bytes::<48>())),
        "EdDSA" => Ed25519KeyPair::generate_pkcs8v1(&aws_lc_rs::rand::SystemRandom::new())
            .map(|doc| der_to_pem(doc.as_ref()))
            .map_err(|_| "cannot generate a key".to_owned()),
        other => Err(format!("unknown algorithm {other:?}: use HS256 or EdDSA")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;

    fn key(kid: &str, alg: &str, secret: &str, pem: &str) -> KeySettings {
        KeySettings {
            kid: kid.into(),
            alg: alg.into(),
            secret: Secret::from(secret),
            secret_file: None,
            private_key_pem: Secret::from(pem),
            private_key_file: None,
        }
    }

    #[test]
    fn configured_keys_parse_and_rotate() {
        let pem = generate("EdDSA").unwrap();
        let ring = Keyring::from_settings(
            Purpose::Invite,
            &[
                key("new", "EdDSA", "", &pem),
                key("old", "HS256", &"s".repeat(32), ""),
            ],
            true,
        )
        .unwrap();
        assert_eq!(ring.signer().kid, "new");
        assert_eq!(ring.get("old").unwrap().alg, Algorithm::HS256);
        assert!(ring.get("missing").is_none());
        assert!(!ring.ephemeral);
    }

    #[test]
    fn bad_keys_are_config_errors_naming_the_key() {
        let pem = generate("EdDSA").unwrap();
        let cases = [
            (
                Purpose::Invite,
                key("i1", "HS256", "too short", ""),
                "keys.invite[0].secret",
            ),
            (
                Purpose::Invite,
                key("i1", "HS256", "", ""),
                "keys.invite[0].secret",
            ),
            (
                Purpose::Invite,
                key("i1", "RS256", "", ""),
                "keys.invite[0].alg",
            ),
            (
                Purpose::Grant,
                key("g1", "HS256", &"s".repeat(40), ""),
                "keys.grant[0].alg",
            ),
            (
                Purpose::Grant,
                key(
                    "g1",
                    "EdDSA",
                    "",
                    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                ),
                "keys.grant[0].private_key_pem",
            ),
            (
                Purpose::Grant,
                key("", "EdDSA", "", &pem),
                "keys.grant[0].kid",
            ),
        ];
        for (purpose, settings, expected) in cases {
            let err = Keyring::from_settings(purpose, &[settings], false).unwrap_err();
            assert_eq!(err.key, expected, "{err}");
        }
    }

    #[test]
    fn production_refuses_placeholder_secrets() {
        let placeholder = "REPLACE-WITH-invitetomedia-keygen--alg-HS256";
        let cases = [
            placeholder,
            "0123456789abcdef0123456789abcdef-CHANGE-me",
            "my-Example-key-0123456789abcdef0123456789",
            "PlaceHolder0123456789abcdef0123456789abcdef",
            "the-secret-0123456789abcdef0123456789abcdef",
            "password0123456789abcdef0123456789abcdef",
        ];
        for secret in cases {
            let err =
                Keyring::from_settings(Purpose::Invite, &[key("i1", "HS256", secret, "")], true)
                    .unwrap_err();
            assert_eq!(err.key, "keys.invite[0].secret", "{secret}");
            assert!(
                Keyring::from_settings(Purpose::Invite, &[key("i1", "HS256", secret, "")], false)
                    .is_ok(),
                "development takes {secret}"
            );
        }
        let generated = generate("HS256").unwrap();
        assert!(
            Keyring::from_settings(Purpose::Invite, &[key("i1", "HS256", &generated, "")], true)
                .is_ok()
        );
    }

    #[test]
    fn duplicate_kids_are_refused() {
        let s = "s".repeat(32);
        let err = Keyring::from_settings(
            Purpose::Invite,
            &[key("a", "HS256", &s, ""), key("a", "HS256", &s, "")],
            false,
        )
        .unwrap_err();
        assert_eq!(err.key, "keys.invite[1].kid");
    }

    #[test]
    fn debug_never_shows_material() {
        let ring = Keyring::from_settings(
            Purpose::Invite,
            &[key(
                "i1",
                "HS256",
                "super-secret-value-that-is-long-enough",
                "",
            )],
            false,
        )
        .unwrap();
        let printed = format!("{ring:?}");
        assert!(printed.contains("i1"));
        assert!(!printed.contains("super-secret"));
    }
}
