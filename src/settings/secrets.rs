//! Configuration values that must never print: secrets, URLs that may carry a password in
//! their userinfo, and the key files secrets are read from.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ConfigError;

/// A secret from configuration; never printed by `Debug` or `Serialize`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret text. Call only where the secret is used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"[redacted]\""
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "[redacted]" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A URL from configuration (it may carry a password in its userinfo): `Debug` and
/// `Serialize` print it with the userinfo replaced by `[redacted]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UrlText(String);

impl UrlText {
    /// The URL as configured, userinfo included. Call only where the URL is used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any userinfo replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        redact_userinfo(&self.0)
    }
}

impl From<&str> for UrlText {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl From<String> for UrlText {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for UrlText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

impl Serialize for UrlText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for UrlText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(UrlText)
    }
}

/// `scheme://user:password@host/...` → `scheme://[redacted]@host/...`; text without userinfo
/// (or that is no URL at all) unchanged. Works on text, so an invalid URL is redacted too.
pub fn redact_userinfo(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let rest = &text[scheme_end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{}://[redacted]@{}", &text[..scheme_end], &rest[at + 1..]),
        None => text.to_owned(),
    }
}

/// Reads a key file, for `secret_file`/`private_key_file`; the error names the key and the file.
pub fn read_key_file(key: &str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(key, format!("cannot read {}: {e}", path.display()))
            .in_file(path.display().to_string())
    })
}
