//! Validated pieces of invite and redeem requests: display texts, identifiers, device ids, and
//! the collector of per-field problems that becomes a 422 `invalid_request`.

use serde::Serialize;

/// Longest name or title, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Longest platform identifier (media id, user id, group id), in characters.
pub const MAX_ID_CHARS: usize = 128;
/// Device ids are long enough to be unguessable when generated and short enough to store.
pub const DEVICE_ID_CHARS: std::ops::RangeInclusive<usize> = 16..=128;

/// One problem with one field of a request, reported under `errors` of a 422.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `invitee.email`.
    pub field: String,
    /// What is wrong, for a developer.
    pub message: String,
}

/// Collects field problems so a request is answered with all of them at once.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Records a problem with `field`.
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// Unwraps a parse result, recording its error under `field`.
    pub fn check<T, E: Into<String>>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.push(field, e)).ok()
    }

    /// Requires a present value, recording "is required" otherwise.
    pub fn require<'a, T: ?Sized>(&mut self, field: &str, value: Option<&'a T>) -> Option<&'a T> {
        if value.is_none() {
            self.push(field, "is required");
        }
        value
    }

    /// `Ok(())` when nothing was recorded.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }

    /// Whether anything was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A name or title: 1..=200 characters, no control characters (CR, LF, NUL, ...), so it is
/// safe in an email subject and on a page.
pub fn display_text(value: &str) -> Result<String, &'static str> {
    let count = value.chars().count();
    if value.trim().is_empty() {
        return Err("must not be empty");
    }
    if count > MAX_TEXT_CHARS {
        return Err("must be at most 200 characters");
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(value.trim().to_owned())
}

/// A platform identifier: 1..=128 printable characters without whitespace.
pub fn identifier(value: &str) -> Result<String, &'static str> {
    if value.is_empty() {
        return Err("must not be empty");
    }
    if value.chars().count() > MAX_ID_CHARS {
        return Err("must be at most 128 characters");
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must be printable characters without whitespace");
    }
    Ok(value.to_owned())
}

/// An `Idempotency-Key` header: 1..=255 visible ASCII characters.
pub fn idempotency_key(value: &str) -> Result<&str, &'static str> {
    if (1..=255).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value)
    } else {
        Err("must be 1 to 255 visible ASCII characters")
    }
}

/// A device id: 16..=128 characters of `[A-Za-z0-9_-]`.
pub fn device_id(value: &str) -> Result<String, &'static str> {
    if !DEVICE_ID_CHARS.contains(&value.len())
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("must be 16 to 128 characters of A-Z, a-z, 0-9, _ and -");
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_texts() {
        let long = "é".repeat(201);
        let max = "é".repeat(200);
        let cases: [(&str, bool); 8] = [
            ("Ada", true),
            ("Weekly seminar — 2026", true),
            (&max, true),
            ("", false),
            ("   ", false),
            ("Ada\r\nBcc: x", false),
            ("Ada\u{0}", false),
            (&long, false),
        ];
        for (input, ok) in cases {
            assert_eq!(display_text(input).is_ok(), ok, "{input:?}");
        }
    }

    #[test]
    fn identifiers() {
        let long = "x".repeat(129);
        let cases: [(&str, bool); 6] = [
            ("1_abc", true),
            ("prof1@example", true),
            ("", false),
            ("a b", false),
            ("a\tb", false),
            (&long, false),
        ];
        for (input, ok) in cases {
            assert_eq!(identifier(input).is_ok(), ok, "{input:?}");
        }
    }

    #[test]
    fn device_ids() {
        let long = "a".repeat(129);
        let cases: [(&str, bool); 6] = [
            ("abcdefghijklmnop", true),
            ("A-b_C-d_E-f_G-h_0123", true),
            ("short", false),
            ("abcdefghijklmnop!", false),
            ("abcdefghijklmnopé", false),
            (&long, false),
        ];
        for (input, ok) in cases {
            assert_eq!(device_id(input).is_ok(), ok, "{input:?}");
        }
    }
}
