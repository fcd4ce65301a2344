//! The participant pages' languages (SPEC §10): one message catalogue per language in
//! `locales/<lang>.toml`, compiled in and parsed once, and the choice of a page's language.
//!
//! Every catalogue has exactly the keys of `en.toml` (a test compares them), with the same
//! `{name}` placeholders. Messages avoid number agreement ("Tries left: 3"), so no plural rules
//! are needed.

use std::collections::HashMap;
use std::sync::LazyLock;

/// The languages, `en` first (the last resort), with their catalogues.
const SOURCES: [(&str, &str); 12] = [
    ("en", include_str!("../../locales/en.toml")),
    ("fr", include_str!("../../locales/fr.toml")),
    ("de", include_str!("../../locales/de.toml")),
    ("es", include_str!("../../locales/es.toml")),
    ("it", include_str!("../../locales/it.toml")),
    ("pt", include_str!("../../locales/pt.toml")),
    ("nl", include_str!("../../locales/nl.toml")),
    ("pl", include_str!("../../locales/pl.toml")),
    ("ja", include_str!("../../locales/ja.toml")),
    ("zh-Hans", include_str!("../../locales/zh-Hans.toml")),
    ("ar", include_str!("../../locales/ar.toml")),
    ("he", include_str!("../../locales/he.toml")),
];

/// One language's messages.
#[derive(Debug)]
pub struct Catalog {
    /// The BCP 47 tag, as `<html lang>` and `Content-Language` carry it.
    pub lang: &'static str,
    /// Written right to left (`ar`, `he`).
    pub rtl: bool,
    messages: HashMap<String, String>,
}

static CATALOGS: LazyLock<Vec<Catalog>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|(lang, text)| Catalog {
            lang,
            rtl: matches!(*lang, "ar" | "he"),
            messages: parse(text).unwrap_or_else(|e| panic!("locales/{lang}.toml: {e}")),
        })
        .collect()
});

fn parse(text: &str) -> Result<HashMap<String, String>, String> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| e.to_string())
}

/// Every catalogue, `en` first.
pub fn catalogs() -> &'static [Catalog] {
    &CATALOGS
}

/// English, the last resort.
pub fn english() -> &'static Catalog {
    &CATALOGS[0]
}

impl Catalog {
    /// The message `key` (its English text if this catalogue lacks it, which the tests forbid).
    pub fn t<'a>(&'a self, key: &'a str) -> &'a str {
        self.messages
            .get(key)
            .or_else(|| english().messages.get(key))
            .map_or(key, String::as_str)
    }

    /// The message `key` with its `{name}` placeholders filled.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut text = self.t(key).to_owned();
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// The keys this catalogue has.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.messages.keys().map(String::as_str)
    }
}

/// The page's language (SPEC §10): the best match of `Accept-Language` (quality values
/// honoured, `q=0` not acceptable, `*` no preference), then the invite's `lng`, then the
/// tenant's `default_language`, then `en`.
pub fn negotiate(
    accept_language: Option<&str>,
    invite: Option<&str>,
    tenant: Option<&str>,
) -> &'static Catalog {
    accept_language
        .and_then(best_accepted)
        .or_else(|| invite.and_then(matching))
        .or_else(|| tenant.and_then(matching))
        .unwrap_or_else(english)
}

/// The supported language the browser prefers most.
fn best_accepted(header: &str) -> Option<&'static Catalog> {
    let mut ranges: Vec<(&str, f32)> = header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let range = pieces.next()?.trim();
            let mut q = 1.0_f32;
            for parameter in pieces {
                let (name, value) = parameter.split_once('=')?;
                if name.trim().eq_ignore_ascii_case("q") {
                    q = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|q: &f32| (0.0..=1.0).contains(q))?;
                }
            }
            (q > 0.0 && !range.is_empty()).then_some((range, q))
        })
        .collect();
    // Stable: equal weights keep the browser's order.
    ranges.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranges.into_iter().find_map(|(range, _)| matching(range))
}

/// The supported language a tag names: exactly, as Simplified Chinese (`zh`, `zh-CN`,
/// `zh-Hans…`, `zh-SG`), or by its primary subtag (`pt-BR` → `pt`). `*` names none.
fn matching(tag: &str) -> Option<&'static Catalog> {
    let tag = tag.trim().to_ascii_lowercase();
    if tag.is_empty() || tag == "*" || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    let find = |lang: &str| {
        catalogs()
            .iter()
            .find(|c| c.lang.eq_ignore_ascii_case(lang))
    };
    if let Some(exact) = find(&tag) {
        return Some(exact);
    }
    let primary = tag.split('-').next().unwrap_or_default();
    if primary == "zh" {
        let simplified = tag == "zh"
            || tag.starts_with("zh-hans")
            || ["zh-cn", "zh-sg", "zh-my"].contains(&tag.as_str());
        return simplified.then(|| find("zh-Hans")).flatten();
    }
    find(primary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_has_exactly_the_messages_of_english() {
        let english: std::collections::BTreeSet<&str> = english().keys().collect();
        assert!(english.len() > 50, "{}", english.len());
        for catalog in catalogs() {
            let keys: std::collections::BTreeSet<&str> = catalog.keys().collect();
            assert_eq!(keys, english, "locales/{}.toml", catalog.lang);
            for key in &english {
                let placeholders = |text: &str| {
                    let mut names: Vec<String> = text
                        .split('{')
                        .skip(1)
                        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
                        .collect();
                    names.sort();
                    names
                };
                assert_eq!(
                    placeholders(catalog.t(key)),
                    placeholders(super::english().t(key)),
                    "{} {key}",
                    catalog.lang
                );
                assert!(!catalog.t(key).trim().is_empty(), "{} {key}", catalog.lang);
            }
        }
    }

    #[test]
    fn languages_are_negotiated_as_spec_10_says() {
        let lang = |accept: Option<&str>, invite: Option<&str>, tenant: Option<&str>| {
            negotiate(accept, invite, tenant).lang
        };
        for (accept, tenant, expected) in [
            ("fr-CA,fr;q=0.9", None, "fr"),
            ("zh-CN", None, "zh-Hans"),
            ("zh", None, "zh-Hans"),
            ("zh-Hans-CN", None, "zh-Hans"),
            ("zh-TW", Some("de"), "de"),
            ("pt-BR", None, "pt"),
            ("xx", Some("de"), "de"),
            ("xx", None, "en"),
            ("*", None, "en"),
            ("*", Some("it"), "it"),
            ("!!garbage;;q=x,,", None, "en"),
            ("de;q=0.5, ja;q=0.8", None, "ja"),
            ("ja;q=0, he", None, "he"),
            ("en-US,en;q=0.9,ar;q=0.8", Some("fr"), "en"),
            ("AR", None, "ar"),
            ("", Some("nl"), "nl"),
            ("pl;q=1.5", None, "en"),
        ] {
            assert_eq!(
                lang(Some(accept), None, tenant),
                expected,
                "{accept:?} {tenant:?}"
            );
        }
        // The invite's language comes after the browser's, before the tenant's.
        assert_eq!(lang(None, Some("es-MX"), Some("de")), "es");
        assert_eq!(lang(Some("xx"), Some("it"), Some("de")), "it");
        assert_eq!(lang(None, None, None), "en");
        assert!(negotiate(Some("he"), None, None).rtl && !negotiate(Some("fr"), None, None).rtl);
    }

    #[test]
    fn placeholders_are_filled() {
        let fr = negotiate(Some("fr"), None, None);
        assert_eq!(
            fr.f("msg_code_wrong", &[("n", "3")]),
            "Ce code n'est pas correct. Essais restants : 3."
        );
    }
}
