//! Email addresses as invites accept them, and the domain rules of `RestrictNewUserDomains`.
//!
//! The accepted syntax is deliberately narrower than RFC 5322: a bare `local@domain` in
//! dot-atom form. Display names, domain literals and quoted local parts have no place in an
//! invite and are the usual way to smuggle a second address past a check.

use std::fmt;

/// Longest address accepted (RFC 5321 path limit).
const MAX_ADDRESS_LEN: usize = 254;
/// Longest local part accepted (RFC 5321).
const MAX_LOCAL_LEN: usize = 64;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// A syntactically valid email address, with its domain in lowercase ASCII (punycode) form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    local: String,
    domain: String,
}

impl EmailAddress {
    /// Parses an address, rejecting everything but `local@domain` (see the module doc).
    /// A single trailing dot on the domain is accepted and dropped.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        if input.is_empty() {
            return Err("must not be empty");
        }
        if input.chars().count() > MAX_ADDRESS_LEN {
            return Err("must be at most 254 characters");
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain whitespace or control characters");
        }
        let (local, domain) = match input.split_once('@') {
            Some((l, d)) if !d.contains('@') => (l, d),
            Some(_) => return Err("must contain exactly one @"),
            None => return Err("must contain an @"),
        };
        if local.is_empty() {
            return Err("local part must not be empty");
        }
        if local.len() > MAX_LOCAL_LEN {
            return Err("local part must be at most 64 characters");
        }
        if !is_dot_atom(local) {
            return Err("local part has characters or dots that are not allowed");
        }
        if domain.starts_with('[') {
            return Err("domain literals are not accepted");
        }
        let domain = normalize_domain(domain)?;
        if !domain.contains('.') {
            return Err("domain must contain a dot");
        }
        if local.len() + 1 + domain.len() > MAX_ADDRESS_LEN {
            return Err("must be at most 254 characters");
        }
        Ok(Self {
            local: local.to_owned(),
            domain,
        })
    }

    /// The domain in lowercase ASCII form, without a trailing dot.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The canonical comparison form: local part lowercased, domain lowercase ASCII.
    /// Two addresses name the same invitee when their canonical forms are equal.
    pub fn canonical(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }

    /// Whether two addresses are the same invitee (case-insensitive).
    pub fn same_as(&self, other: &EmailAddress) -> bool {
        self.domain == other.domain && self.local.to_lowercase() == other.local.to_lowercase()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl fmt::Debug for EmailAddress {
    // Addresses are personal data: debug output (and so any log built from it) shows only
    // the domain.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress(***@{})", self.domain)
    }
}

/// A domain of `RestrictNewUserDomains`: it blocks itself and every subdomain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRule(String);

impl DomainRule {
    /// Parses a configured domain, normalised as email domains are.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let domain = normalize_domain(input)?;
        Ok(Self(domain))
    }

    /// Whether `domain` (already normalised) is this domain or one of its subdomains, on label
    /// boundaries: `university.edu` matches `cs.university.edu`, not `notuniversity.edu`.
    pub fn matches(&self, domain: &str) -> bool {
        domain == self.0
            || (domain.len() > self.0.len()
                && domain.ends_with(&self.0)
                && domain.as_bytes()[domain.len() - self.0.len() - 1] == b'.')
    }

    /// The domain as configured, normalised.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Dot-atom local part: atext runs separated by single dots. Non-ASCII letters are allowed
/// (internationalised addresses, RFC 6531).
fn is_dot_atom(local: &str) -> bool {
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom.chars().all(|c| {
                c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c) || !c.is_ascii()
            })
    })
}

/// Lowercase ASCII (IDNA/punycode) form of a host name, one trailing dot dropped, every label
/// a valid LDH label.
fn normalize_domain(input: &str) -> Result<String, &'static str> {
    let trimmed = input.strip_suffix('.').unwrap_or(input);
    if trimmed.is_empty() {
        return Err("domain must not be empty");
    }
    // Plain ASCII host names (no punycode labels) need no IDNA processing: lowercasing is all
    // UTS 46 would do to them, and the label checks below still apply.
    let plain = trimmed
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !trimmed
            .split('.')
            .any(|l| l.len() >= 4 && l[..4].eq_ignore_ascii_case("xn--"));
    let ascii = if plain {
        trimmed.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii_strict(trimmed).map_err(|_| "domain is not a valid host name")?
    };
    if ascii.is_empty() || ascii.len() > 253 {
        return Err("domain is not a valid host name");
    }
    let valid_labels = ascii.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if !valid_labels {
        return Err("domain is not a valid host name");
    }
    if ascii
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("domain must not be an IP address");
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_addresses() {
        let cases = [
            ("ada@example.com", "ada@example.com"),
            (
                "Ada.Lovelace+tag@Example.COM",
                "ada.lovelace+tag@example.com",
            ),
            ("ada@example.com.", "ada@example.com"),
            ("o'brien@example.ie", "o'brien@example.ie"),
            ("ada@bücher.de", "ada@xn--bcher-kva.de"),
            ("ada@XN--BCHER-KVA.de", "ada@xn--bcher-kva.de"),
            ("jörg@example.de", "jörg@example.de"),
        ];
        for (input, canonical) in cases {
            let email = EmailAddress::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(email.canonical(), canonical, "{input}");
        }
    }

    #[test]
    fn rejects_hostile_or_invalid_addresses() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("{}@{}.com", "a".repeat(60), "b.".repeat(100));
        let cases: Vec<&str> = vec![
            "",
            "ada",
            "Ada <ada@example.com>",
            "ada@[127.0.0.1]",
            "\"ada\"@example.com",
            "ada@b@example.com",
            "ada @example.com",
            "ada@example.com\r\nBcc: x@y.com",
            "ada\u{0}@example.com",
            "ada@localhost",
            "ada@example..com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "ada@-example.com",
            "ada@example.com..",
            "ada@exa_mple.com",
            "ada@127.0.0.1",
            "@example.com",
            "ada@",
            &long_local,
            &long_total,
        ];
        for input in cases {
            assert!(EmailAddress::parse(input).is_err(), "accepted {input:?}");
        }
    }

    #[test]
    fn same_invitee_ignores_case_and_trailing_dot() {
        let a = EmailAddress::parse("Ada@Example.com").unwrap();
        let b = EmailAddress::parse("ada@example.com.").unwrap();
        let c = EmailAddress::parse("ada@example.org").unwrap();
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c));
    }

    #[test]
    fn domain_rules_match_on_label_boundaries() {
        let rule = DomainRule::parse("University.EDU.").unwrap();
        let idn = DomainRule::parse("bücher.de").unwrap();
        let cases = [
            (&rule, "prof@university.edu", true),
            (&rule, "prof@cs.university.edu", true),
            (&rule, "prof@CS.University.Edu.", true),
            (&rule, "prof@notuniversity.edu", false),
            (&rule, "prof@university.edu.evil.com", false),
            (&rule, "prof@edu.university.com", false),
            (&idn, "a@xn--bcher-kva.de", true),
            (&idn, "a@shop.bücher.de", true),
            (&idn, "a@buecher.de", false),
        ];
        for (rule, address, blocked) in cases {
            let email = EmailAddress::parse(address).unwrap();
            assert_eq!(rule.matches(email.domain()), blocked, "{rule:?} {address}");
        }
    }

    #[test]
    fn debug_hides_the_local_part() {
        let email = EmailAddress::parse("ada@example.com").unwrap();
        assert_eq!(format!("{email:?}"), "EmailAddress(***@example.com)");
    }
}
