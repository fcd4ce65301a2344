//! Values configuration is parsed into once, at the edge: each type can only hold a valid
//! value, so nothing downstream checks or parses the text again.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The SHA-256 of a platform API key, as configured in `api_keys` (`sha256:<64 hex digits>`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKeyHash([u8; 32]);

impl ApiKeyHash {
    /// The hash of a presented key.
    pub fn of(key: &str) -> Self {
        let hash = digest(&SHA256, key.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(hash.as_ref());
        Self(out)
    }

    /// Parses `sha256:<64 hex digits>` (either case).
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || {
            "each entry must be sha256:<64 hex digits> (see `invitetomedia hash-key`)".to_owned()
        };
        let hex = text.trim().strip_prefix("sha256:").ok_or_else(invalid)?;
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(invalid());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(Self(out))
    }
}

impl fmt::Display for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl Serialize for ApiKeyHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ApiKeyHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A colour `#rrggbb`, kept lowercase.
#[derive(Clone, PartialEq, Eq)]
pub struct Colour(String);

impl Colour {
    /// Parses `#rrggbb`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hex = text.strip_prefix('#').unwrap_or_default();
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{text:?} must be a colour #rrggbb"));
        }
        Ok(Self(text.to_ascii_lowercase()))
    }

    /// `#rrggbb`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Serialize for Colour {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An absolute `http://` or `https://` URL with a host. Whether https is required depends on
/// `APP_ENV`, so the production rule is checked with the whole configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpUrl(url::Url);

impl HttpUrl {
    /// Parses an http(s) URL with a host.
    pub fn parse(text: &str) -> Result<Self, String> {
        // Messages quote the text without its userinfo: it may hold a password.
        let shown = super::redact_userinfo(text);
        let url = url::Url::parse(text).map_err(|e| format!("{shown:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("{shown:?} must be an http:// or https:// URL"));
        }
        Ok(Self(url))
    }

    /// The URL.
    pub fn url(&self) -> &url::Url {
        &self.0
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether its scheme is https.
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    /// Whether it carries a user name or password.
    pub fn has_userinfo(&self) -> bool {
        !self.0.username().is_empty() || self.0.password().is_some()
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&super::redact_userinfo(self.0.as_str()), f)
    }
}

impl Serialize for HttpUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::redact_userinfo(self.0.as_str()))
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_hashes_parse_once_and_print_as_configured() {
        let hash = ApiKeyHash::of("k");
        let text = hash.to_string();
        assert_eq!(ApiKeyHash::parse(&text).unwrap(), hash);
        assert_eq!(
            ApiKeyHash::parse(&text.to_uppercase().replace("SHA256", "sha256")).unwrap(),
            hash
        );
        for bad in [
            "",
            "sha256:",
            "sha256:zz",
            "md5:00",
            &text[..70],
            &format!("{text}0"),
        ] {
            assert!(ApiKeyHash::parse(bad).is_err(), "{bad:?}");
        }
        // Multi-byte text of the right length must not split a character.
        assert!(ApiKeyHash::parse(&format!("sha256:{}", "é".repeat(32))).is_err());
    }

    #[test]
    fn colours_and_urls() {
        assert_eq!(Colour::parse("#AA3300").unwrap().as_str(), "#aa3300");
        for bad in ["red", "#abc", "aa3300", "#gg0000"] {
            assert!(Colour::parse(bad).is_err(), "{bad:?}");
        }
        let url = HttpUrl::parse("https://u:p@x.test/a").unwrap();
        assert!(url.is_https() && url.has_userinfo());
        assert_eq!(format!("{url:?}"), "\"https://[redacted]@x.test/a\"");
        for bad in ["ftp://x.test", "x.test", "https://"] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad:?}");
        }
    }
}
