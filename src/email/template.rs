//! Invite email templates in the platform's Email templates format, with the seed's `{TOKEN}`
//! syntax, compiled once at start-up into strict handlebars templates.
//!
//! A template file `<templates_dir>/<name>.toml`:
//!
//! ```toml
//! templateName = "invite"
//! [[localizedTemplate]]
//! languageCode = "en"
//! subject = "{INVITER} invited you to {TITLE}"
//! body = "<p>Hello {FIRSTNAME}, <a href=\"{URL}\">join</a> before {EXPIRES}.</p>"
//! bodyAsText = "Hello {FIRSTNAME}, join at {URL} before {EXPIRES}."
//! ```
//!
//! Only the tokens below are recognised; any other `{UPPERCASE}` token is a start-up error, and
//! every other brace is literal text. Values are HTML-escaped in `body` and plain in
//! `bodyAsText` and `subject`; a subject that would contain CR or LF is refused.

use std::collections::BTreeMap;
use std::path::Path;

use handlebars::Handlebars;
use serde::Deserialize;

/// The tokens a template may use.
pub const TOKENS: [&str; 10] = [
    "URL",
    "FIRSTNAME",
    "LASTNAME",
    "EMAIL",
    "TITLE",
    "INVITER",
    "ROLE",
    "EXPIRES",
    "STARTS",
    "CODE",
];

/// The language every template must have; the fallback of every other.
pub const FALLBACK_LANGUAGE: &str = "en";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    #[serde(rename = "templateName")]
    template_name: String,
    #[serde(rename = "localizedTemplate")]
    localized_template: Vec<LocalizedFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LocalizedFile {
    #[serde(rename = "languageCode")]
    language_code: String,
    subject: String,
    body: String,
    #[serde(rename = "bodyAsText")]
    body_as_text: String,
}

/// The values a message is rendered with.
#[derive(Debug, Clone, Default)]
pub struct TemplateValues {
    /// The invite link.
    pub url: String,
    /// Invitee's first name.
    pub first_name: String,
    /// Invitee's last name.
    pub last_name: String,
    /// Invitee's address.
    pub email: String,
    /// Media title.
    pub title: String,
    /// Inviter's name.
    pub inviter: String,
    /// Role id (`viewer`, `speaker`, `moderator`).
    pub role: String,
    /// When the link opens, unix seconds (formatted in the template's language).
    pub starts: i64,
    /// Link expiry, unix seconds (formatted in the template's language); in a code email, the
    /// code's.
    pub expires: i64,
    /// The one-time code (code emails; empty in invite emails).
    pub code: String,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Language of the entry used.
    pub language: String,
    /// Subject line (plain, no CR/LF).
    pub subject: String,
    /// HTML body.
    pub html: String,
    /// Plain-text body.
    pub text: String,
}

/// One compiled template with all its languages.
pub struct EmailTemplate {
    name: String,
    /// Lowercased language codes, in file order.
    languages: Vec<String>,
    html: Handlebars<'static>,
    plain: Handlebars<'static>,
    /// SHA-256 of the file's text: part of the revision of each tenant that sends it.
    digest: [u8; 32],
}

impl std::fmt::Debug for EmailTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailTemplate")
            .field("name", &self.name)
            .field("languages", &self.languages)
            .finish()
    }
}

/// The committed templates of `config/templates`, compiled in by name.
const COMPILED_IN: [(&str, &str); 2] = [
    ("invite", include_str!("../../config/templates/invite.toml")),
    ("code", include_str!("../../config/templates/code.toml")),
];

impl EmailTemplate {
    /// Loads and compiles `<dir>/<name>.toml`. Errors name the file and, for a bad token, the
    /// token.
    /// A file of that name in `dir` replaces the compiled-in template of the same name.
    pub fn load(dir: &Path, name: &str) -> Result<Self, String> {
        let path = dir.join(format!("{name}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(name, &text)
                .map_err(|e| format!("template file {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (_, text) = COMPILED_IN
                    .iter()
                    .find(|(n, _)| *n == name)
                    .ok_or_else(|| {
                        format!(
                            "template file {}: not found, and no template of that name is compiled in",
                            path.display()
                        )
                    })?;
                Self::parse(name, text).map_err(|e| format!("compiled-in template {name}: {e}"))
            }
            Err(e) => Err(format!("template file {}: {e}", path.display())),
        }
    }

    /// Compiles a template from the text of its file.
    pub fn parse(name: &str, text: &str) -> Result<Self, String> {
        let file: TemplateFile = toml_from_str(text)?;
        if file.template_name != name {
            return Err(format!(
                "templateName is {:?}, expected {name:?} (the file name)",
                file.template_name
            ));
        }
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        let mut plain = Handlebars::new();
        plain.set_strict_mode(true);
        plain.register_escape_fn(handlebars::no_escape);
        let mut languages = Vec::new();
        for entry in &file.localized_template {
            let lang = entry.language_code.trim().to_ascii_lowercase();
            if lang.is_empty() || languages.contains(&lang) {
                return Err(format!(
                    "languageCode {:?} is empty or repeated",
                    entry.language_code
                ));
            }
            let register = |hb: &mut Handlebars<'static>, part: &str, source: &str| {
                let converted = convert(source).map_err(|e| format!("{lang} {part}: {e}"))?;
                hb.register_template_string(&format!("{lang}/{part}"), converted)
                    .map_err(|e| format!("{lang} {part}: {e}"))
            };
            register(&mut plain, "subject", &entry.subject)?;
            register(&mut html, "body", &entry.body)?;
            register(&mut plain, "text", &entry.body_as_text)?;
            languages.push(lang);
        }
        if !languages.iter().any(|l| l == FALLBACK_LANGUAGE) {
            return Err(
                "needs a localizedTemplate with languageCode \"en\" (the fallback)".to_owned(),
            );
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref(),
        );
        Ok(Self {
            name: name.to_owned(),
            languages,
            html,
            plain,
            digest,
        })
    }

    /// SHA-256 of the template file's text.
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entry for `wanted` (exact, then its primary subtag), else `default`, else `en`.
    pub fn pick_language(&self, wanted: Option<&str>, default: Option<&str>) -> &str {
        let find = |code: &str| {
            let code = code.to_ascii_lowercase();
            let primary = code.split(['-', '_']).next().unwrap_or_default().to_owned();
            self.languages
                .iter()
                .find(|l| **l == code)
                .or_else(|| self.languages.iter().find(|l| **l == primary))
        };
        wanted
            .and_then(find)
            .or_else(|| default.and_then(find))
            .map(String::as_str)
            .unwrap_or(FALLBACK_LANGUAGE)
    }

    /// Renders the message in the chosen language.
    pub fn render(&self, language: &str, values: &TemplateValues) -> Result<Rendered, String> {
        let mut data = BTreeMap::new();
        data.insert("URL", values.url.clone());
        data.insert("FIRSTNAME", values.first_name.clone());
        data.insert("LASTNAME", values.last_name.clone());
        data.insert("EMAIL", values.email.clone());
        data.insert("TITLE", values.title.clone());
        data.insert("INVITER", values.inviter.clone());
        data.insert("ROLE", values.role.clone());
        data.insert("EXPIRES", format_expiry(values.expires, language));
        data.insert("STARTS", format_expiry(values.starts, language));
        data.insert("CODE", values.code.clone());
        let render = |hb: &Handlebars<'static>, part: &str| {
            hb.render(&format!("{language}/{part}"), &data)
                .map_err(|e| e.to_string())
        };
        let subject = render(&self.plain, "subject")?;
        if subject.contains(['\r', '\n']) {
            return Err("the subject would contain a line break".to_owned());
        }
        Ok(Rendered {
            language: language.to_owned(),
            subject: subject.trim().to_owned(),
            html: render(&self.html, "body")?,
            text: render(&self.plain, "text")?,
        })
    }
}

fn toml_from_str(text: &str) -> Result<TemplateFile, String> {
    let config = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .map_err(|e| format!("does not parse: {e}"))?;
    config
        .try_deserialize()
        .map_err(|e| format!("does not parse: {e}"))
}

/// Turns the seed's `{TOKEN}` syntax into handlebars, escaping any literal `{{` so template
/// text can never reach handlebars as an expression.
fn convert(source: &str) -> Result<String, String> {
    let mut out = String::with_capacity(source.len() + 16);
    let mut rest = source;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let token_len = after
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || *b == b'_')
            .count();
        if token_len > 0 && after.as_bytes().get(token_len) == Some(&b'}') {
            let token = &after[..token_len];
            if !TOKENS.contains(&token) {
                return Err(format!(
                    "unknown token {{{token}}} (known: {})",
                    TOKENS.map(|t| format!("{{{t}}}")).join(" ")
                ));
            }
            // A backslash right before `{{` would escape it: double it so it stays literal.
            if out.ends_with('\\') {
                out.push('\\');
            }
            out.push_str("{{");
            out.push_str(token);
            out.push_str("}}");
            rest = &after[token_len + 1..];
        } else {
            // A literal brace: escape it when it would open a handlebars expression.
            out.push_str(if after.starts_with('{') { "\\{" } else { "{" });
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A readable UTC date and time in the template's language.
pub fn format_expiry(unix: i64, language: &str) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix) else {
        return String::new();
    };
    let month = t.month() as usize - 1;
    let (day, year, hm) = (
        t.day(),
        t.year(),
        format!("{:02}:{:02} UTC", t.hour(), t.minute()),
    );
    match language.split(['-', '_']).next().unwrap_or_default() {
        "fr" => {
            const M: [&str; 12] = [
                "janvier",
                "février",
                "mars",
                "avril",
                "mai",
                "juin",
                "juillet",
                "août",
                "septembre",
                "octobre",
                "novembre",
                "décembre",
            ];
            format!("{day} {} {year} à {hm}", M[month])
        }
        "de" => {
            const M: [&str; 12] = [
                "Januar",
                "Februar",
                "März",
                "April",
                "Mai",
                "Juni",
                "Juli",
                "August",
                "September",
                "Oktober",
                "November",
                "Dezember",
            ];
            format!("{day}. {} {year}, {hm}", M[month])
        }
        "es" => {
            const M: [&str; 12] = [
                "enero",
                "febrero",
                "marzo",
                "abril",
                "mayo",
                "junio",
                "julio",
                "agosto",
                "septiembre",
                "octubre",
                "noviembre",
                "diciembre",
            ];
            format!("{day} de {} de {year}, {hm}", M[month])
        }
        _ => {
            const M: [&str; 12] = [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ];
            format!("{day} {} {year}, {hm}", M[month])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
templateName = "invite"
[[localizedTemplate]]
languageCode = "en"
subject = "{INVITER} invited you to {TITLE}"
body = "<p>{FIRSTNAME} {LASTNAME} ({EMAIL}) as {ROLE}: <a href=\"{URL}\">join</a> by {EXPIRES}. {{literal}} {lower} \\ a{color:red}</p>"
bodyAsText = "{FIRSTNAME} {LASTNAME} <{EMAIL}> {ROLE} {URL} {EXPIRES} {TITLE}\\{ROLE}"
[[localizedTemplate]]
languageCode = "fr"
subject = "Invitation : {TITLE}"
body = "<p>Bonjour {FIRSTNAME}, avant le {EXPIRES}</p>"
bodyAsText = "Bonjour {FIRSTNAME}, avant le {EXPIRES}"
"#;

    fn values() -> TemplateValues {
        TemplateValues {
            url: "https://x.test/i/abc?a=1&b=2".into(),
            first_name: "Ada <script>".into(),
            last_name: "O'Brien & Co".into(),
            email: "ada@example.com".into(),
            title: "Seminar \"A\"".into(),
            inviter: "Prof One".into(),
            role: "speaker".into(),
            starts: 1_795_596_000,  // 2026-11-25 08:40 UTC
            expires: 1_795_600_800, // 2026-11-25 10:00 UTC
            code: "042917".into(),
        }
    }

    #[test]
    fn every_token_renders_escaped_in_html_and_plain_in_text() {
        let t = EmailTemplate::parse("invite", FILE).unwrap();
        let r = t.render("en", &values()).unwrap();
        assert_eq!(r.subject, "Prof One invited you to Seminar \"A\"");
        assert!(
            r.html
                .contains("Ada &lt;script&gt; O&#x27;Brien &amp; Co (ada@example.com) as speaker"),
            "{}",
            r.html
        );
        assert!(
            r.html
                .contains("href=\"https://x.test/i/abc?a&#x3D;1&amp;b&#x3D;2\""),
            "{}",
            r.html
        );
        assert!(r.html.contains("25 November 2026, 10:00 UTC"), "{}", r.html);
        assert!(
            r.html.contains("{{literal}} {lower} \\ a{color:red}"),
            "literal braces survive: {}",
            r.html
        );
        assert_eq!(
            r.text,
            "Ada <script> O'Brien & Co <ada@example.com> speaker https://x.test/i/abc?a=1&b=2 25 November 2026, 10:00 UTC Seminar \"A\"\\speaker"
        );
    }

    #[test]
    fn languages_and_fallback() {
        let t = EmailTemplate::parse("invite", FILE).unwrap();
        assert_eq!(t.pick_language(Some("fr"), None), "fr");
        assert_eq!(t.pick_language(Some("FR-ca"), None), "fr");
        assert_eq!(t.pick_language(Some("de"), None), "en");
        assert_eq!(t.pick_language(None, Some("fr")), "fr");
        assert_eq!(t.pick_language(Some("de"), Some("fr")), "fr");
        assert_eq!(t.pick_language(None, None), "en");
        let r = t.render("fr", &values()).unwrap();
        assert_eq!(
            r.text,
            "Bonjour Ada <script>, avant le 25 novembre 2026 à 10:00 UTC"
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let cases = [
            (
                FILE.replace("{ROLE}:", "{COLOUR}:"),
                "unknown token {COLOUR}",
            ),
            (
                FILE.replace("templateName = \"invite\"", "templateName = \"other\""),
                "templateName",
            ),
            (
                FILE.replace("languageCode = \"en\"", "languageCode = \"de\""),
                "\"en\"",
            ),
            (
                FILE.replace("languageCode = \"fr\"", "languageCode = \"EN\""),
                "repeated",
            ),
            ("templateName = ".to_owned(), "does not parse"),
            (FILE.replace("bodyAsText", "bodyText"), "does not parse"),
        ];
        for (text, needle) in cases {
            let err = EmailTemplate::parse("invite", &text).unwrap_err();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn subjects_never_carry_line_breaks() {
        let t = EmailTemplate::parse("invite", FILE).unwrap();
        let mut v = values();
        v.inviter = "Eve\r\nBcc: victim@example.com".into();
        assert!(t.render("en", &v).unwrap_err().contains("line break"));
    }

    #[test]
    fn expiry_in_each_language() {
        let t = 1_795_600_800;
        assert_eq!(format_expiry(t, "en"), "25 November 2026, 10:00 UTC");
        assert_eq!(format_expiry(t, "de"), "25. November 2026, 10:00 UTC");
        assert_eq!(format_expiry(t, "es"), "25 de noviembre de 2026, 10:00 UTC");
        assert_eq!(format_expiry(t, "pt"), "25 November 2026, 10:00 UTC");
    }
}
