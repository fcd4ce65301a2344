//! Server-rendered participant pages: one layout, no external assets, no JavaScript needed
//! (the one inline script, allowed by a per-response nonce, only auto-submits the hand-off
//! form). Every value is HTML-escaped.
//!
//! The layout is written out directly rather than through handlebars: the landing page is
//! served on every click of a link, and a template engine's context building and helper
//! dispatch were a measurable share of its cost (README, Performance).

use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub mod i18n;

pub use i18n::{Catalog, negotiate};

use crate::settings::ThemeSettings;
use crate::state::Tenant;
use crate::tokens::keyring::random_bytes;

/// Accent colour when a tenant sets none.
pub const DEFAULT_COLOR: &str = "#0a66c2";

/// The stylesheet; `--accent` is set per tenant before it.
const STYLE: &str = "*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;color:#1a1a1a;background:#f4f5f7}\
header{padding:16px 20px;background:#fff;border-bottom:3px solid var(--accent);display:flex;align-items:center;gap:12px}\
header img{max-height:36px;max-width:160px}header span{font-weight:600}\
main{max-width:480px;margin:24px auto;padding:24px 20px;background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08)}\
h1{font-size:1.4rem;margin:0 0 12px;overflow-wrap:anywhere}\
dl{margin:16px 0;display:grid;grid-template-columns:auto 1fr;gap:4px 12px}dt{color:#555}dd{margin:0;overflow-wrap:anywhere}\
label{display:block;margin:14px 0 4px;font-weight:600}\
input{width:100%;padding:10px 12px;font-size:1rem;border:1px solid #b8bcc4;border-radius:6px}\
input:focus{outline:2px solid var(--accent);border-color:var(--accent)}\
button{margin-top:20px;width:100%;padding:12px;font-size:1rem;font-weight:600;color:var(--on-accent);background:var(--accent);border:0;border-radius:6px;cursor:pointer}\
button.secondary{margin-top:10px;color:#1a1a1a;background:#fff;border:1px solid #6b7280}\
.error{padding:10px 12px;border-radius:6px;background:#fdecea;color:#8a1c12}.muted{color:#555;font-size:.9rem}";

/// A moment as a page shows it: readable text in UTC, and RFC 3339 for `<time datetime>`,
/// which the page's script writes in the reader's time zone.
#[derive(Debug, Default)]
pub struct Moment {
    /// Readable, UTC.
    pub text: String,
    /// RFC 3339.
    pub at: String,
}

/// What the invite offers, as the page shows it.
#[derive(Debug)]
pub struct InviteFacts {
    /// Media title.
    pub title: String,
    /// Inviter's name.
    pub inviter: String,
    /// Role.
    pub role: String,
    /// When a scheduled link opens (none for a link that opened when it was made).
    pub starts: Option<Moment>,
    /// Expiry.
    pub expires: Moment,
}

/// Where the join form is in the one-time code flow.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum CodeStep {
    /// No code involved: the form joins.
    #[default]
    None,
    /// A code is needed (or would move a used-up link here): the form asks for one.
    Offer,
    /// A code was sent: the form takes it, and can ask for a new one.
    Enter,
}

/// The join form.
#[derive(Debug, Default)]
pub struct FormFields {
    /// Open link: ask for names too.
    pub open: bool,
    /// The one-time code step.
    pub code: CodeStep,
    /// Prefilled email.
    pub email: String,
    /// Prefilled first name.
    pub first_name: String,
    /// Prefilled last name.
    pub last_name: String,
    /// Fields the page's message is about: marked invalid and described by the message.
    pub invalid: Vec<String>,
}

/// The hand-off of a grant to the platform.
#[derive(Debug)]
pub struct Handoff {
    /// The tenant's accept_url.
    pub url: String,
    /// The grant.
    pub grant: String,
    /// Media title, for the waiting line.
    pub title: String,
}

/// One page.
#[derive(Debug)]
pub struct Page {
    /// `data-code` of the main element.
    pub code: String,
    /// Main heading.
    pub heading: String,
    /// A sentence under the heading.
    pub message: Option<String>,
    /// The invite's facts.
    pub invite: Option<InviteFacts>,
    /// The join form.
    pub form: Option<FormFields>,
    /// The grant hand-off.
    pub accept: Option<Handoff>,
    /// Label, value, field name rows (demo accept page).
    pub facts: Vec<(String, String, String)>,
    /// Seconds until a scheduled link opens: the page counts down, then shows the form.
    pub opens_in: Option<i64>,
    /// A link under the message: where to go instead (href, text).
    pub link: Option<(String, String)>,
    /// The page's language.
    pub lang: &'static Catalog,
}

impl Page {
    /// A page with a heading and a code only.
    pub fn new(code: &str, heading: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            heading: heading.into(),
            message: None,
            invite: None,
            form: None,
            accept: None,
            facts: Vec::new(),
            opens_in: None,
            link: None,
            lang: i18n::english(),
        }
    }
}

/// Appends `text` HTML-escaped (safe in element content and in quoted attributes).
fn escape(out: &mut String, text: &str) {
    let mut last = 0;
    for (i, b) in text.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#x27;",
            b'`' => "&#x60;",
            b'=' => "&#x3D;",
            _ => continue,
        };
        out.push_str(&text[last..i]);
        out.push_str(entity);
        last = i + 1;
    }
    out.push_str(&text[last..]);
}

/// `<input>` of the join form; one the message is about is marked invalid and described by it.
fn input(
    out: &mut String,
    form: &FormFields,
    id: &str,
    kind: &str,
    autocomplete: &str,
    max: u16,
    value: &str,
) {
    // Addresses read left to right on right-to-left pages too.
    let dir = if kind == "email" { " dir=\"ltr\"" } else { "" };
    let _ = write!(
        out,
        "<input id=\"{id}\" name=\"{id}\" type=\"{kind}\"{dir} autocomplete=\"{autocomplete}\" required maxlength=\"{max}\""
    );
    if form.invalid.iter().any(|f| f == id) {
        out.push_str(" aria-invalid=\"true\" aria-describedby=\"message\"");
    }
    out.push_str(" value=\"");
    escape(out, value);
    out.push_str("\">\n");
}

fn render(page: &Page, nonce: &str, tenant: &str, color: &str, logo: Option<&str>) -> String {
    let mut o = String::with_capacity(3072);
    let c = page.lang;
    o.push_str("<!doctype html>\n<html lang=\"");
    o.push_str(c.lang);
    o.push_str(if c.rtl {
        "\" dir=\"rtl\">"
    } else {
        "\" dir=\"ltr\">"
    });
    o.push_str("\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    o.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n<title>");
    escape(&mut o, &page.heading);
    o.push_str(" · ");
    escape(&mut o, tenant);
    o.push_str("</title>\n<style nonce=\"");
    o.push_str(nonce);
    o.push_str("\">:root{--accent:");
    o.push_str(color);
    o.push_str(";--on-accent:");
    o.push_str(on_accent(color));
    o.push('}');
    o.push_str(STYLE);
    o.push_str("</style>\n</head>\n<body>\n<header>");
    if let Some(logo) = logo {
        o.push_str("<img src=\"");
        escape(&mut o, logo);
        o.push_str("\" alt=\"\">");
    }
    o.push_str("<span>");
    escape(&mut o, tenant);
    o.push_str("</span></header>\n<main data-code=\"");
    escape(&mut o, &page.code);
    o.push_str("\">\n<h1>");
    escape(&mut o, &page.heading);
    o.push_str("</h1>\n");
    if let Some(message) = &page.message {
        // Next to a form the message is what went wrong, announced at once; a code just sent
        // or a link not open yet is news, not an error.
        let news = matches!(page.code.as_str(), "code_sent" | "scheduled");
        o.push_str(if page.form.is_some() && !news {
            "<p id=\"message\" class=\"error\" role=\"alert\">"
        } else {
            "<p id=\"message\" role=\"status\">"
        });
        escape(&mut o, message);
        o.push_str("</p>\n");
    }
    if let Some((href, text)) = &page.link {
        o.push_str("<p><a href=\"");
        escape(&mut o, href);
        o.push_str("\">");
        escape(&mut o, text);
        o.push_str("</a></p>\n");
    }
    if let Some(seconds) = page.opens_in {
        let _ = writeln!(
            o,
            "<p id=\"countdown\" data-seconds=\"{seconds}\">{} <span dir=\"ltr\">{}</span></p>",
            c.t("countdown"),
            countdown_text(seconds)
        );
    }
    if let Some(invite) = &page.invite {
        o.push_str("<dl>\n");
        for (label, value) in [
            (c.t("fact_media"), &invite.title),
            (c.t("fact_inviter"), &invite.inviter),
            (c.t("fact_role"), &invite.role),
        ] {
            if !value.is_empty() {
                // A name or title keeps its own direction inside a page of the other.
                o.push_str("<dt>");
                escape(&mut o, label);
                o.push_str("</dt><dd><bdi>");
                escape(&mut o, value);
                o.push_str("</bdi></dd>\n");
            }
        }
        let starts = invite.starts.as_ref().map(|m| (c.t("fact_opens"), m));
        for (label, moment) in starts
            .into_iter()
            .chain([(c.t("fact_expires"), &invite.expires)])
        {
            o.push_str("<dt>");
            escape(&mut o, label);
            o.push_str("</dt><dd>");
            time(&mut o, moment);
            o.push_str("</dd>\n");
        }
        o.push_str("</dl>\n");
    }
    if let Some(form) = &page.form {
        o.push_str(if page.opens_in.is_some() {
            "<form id=\"join\" method=\"post\" action=\"\" hidden>\n"
        } else {
            "<form id=\"join\" method=\"post\" action=\"\">\n"
        });
        let label = |o: &mut String, id: &str, key: &str| {
            o.push_str("<label for=\"");
            o.push_str(id);
            o.push_str("\">");
            escape(o, c.t(key));
            o.push_str("</label>\n");
        };
        if form.open {
            label(&mut o, "first_name", "label_first_name");
            input(
                &mut o,
                form,
                "first_name",
                "text",
                "given-name",
                200,
                &form.first_name,
            );
            label(&mut o, "last_name", "label_last_name");
            input(
                &mut o,
                form,
                "last_name",
                "text",
                "family-name",
                200,
                &form.last_name,
            );
            label(&mut o, "email", "label_email");
        } else {
            label(&mut o, "email", "label_email_bound");
        }
        input(&mut o, form, "email", "email", "email", 254, &form.email);
        let button = |o: &mut String, attributes: &str, key: &str| {
            o.push_str("<button");
            o.push_str(attributes);
            o.push('>');
            escape(o, c.t(key));
            o.push_str("</button>\n");
        };
        match form.code {
            CodeStep::None => button(&mut o, " type=\"submit\"", "button_join"),
            CodeStep::Offer => {
                o.push_str("<p class=\"muted\">");
                escape(&mut o, c.t("note_code_offer"));
                o.push_str("</p>\n");
                button(
                    &mut o,
                    " type=\"submit\" name=\"action\" value=\"send_code\"",
                    "button_send_code",
                );
            }
            CodeStep::Enter => {
                label(&mut o, "code", "label_code");
                o.push_str("<input id=\"code\" name=\"code\" type=\"text\" dir=\"ltr\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{6}\" minlength=\"6\" maxlength=\"6\" required");
                if form.invalid.iter().any(|f| f == "code") {
                    o.push_str(" aria-invalid=\"true\" aria-describedby=\"message\"");
                }
                o.push_str(">\n");
                button(&mut o, " type=\"submit\"", "button_join");
                button(
                    &mut o,
                    " class=\"secondary\" type=\"submit\" name=\"action\" value=\"send_code\" formnovalidate",
                    "button_new_code",
                );
            }
        }
        o.push_str("</form>\n");
    }
    if let Some(accept) = &page.accept {
        o.push_str("<form id=\"handoff\" method=\"post\" action=\"");
        escape(&mut o, &accept.url);
        o.push_str("\">\n<input type=\"hidden\" name=\"grant\" value=\"");
        escape(&mut o, &accept.grant);
        o.push_str("\">\n<p class=\"muted\">");
        let title = if accept.title.is_empty() {
            c.t("handoff_session")
        } else {
            &accept.title
        };
        escape(&mut o, &c.f("handoff_taking", &[("title", title)]));
        o.push_str("</p>\n<button type=\"submit\">");
        escape(&mut o, c.t("button_continue"));
        let _ = write!(
            o,
            "</button>\n</form>\n<script nonce=\"{nonce}\">document.getElementById(\"handoff\").submit();</script>\n"
        );
    }
    if !page.facts.is_empty() {
        o.push_str("<dl>\n");
        for (label, value, field) in &page.facts {
            o.push_str("<dt>");
            escape(&mut o, label);
            o.push_str("</dt><dd data-field=\"");
            escape(&mut o, field);
            o.push_str("\">");
            escape(&mut o, value);
            o.push_str("</dd>\n");
        }
        o.push_str("</dl>\n");
    }
    o.push_str("</main>\n");
    if page.invite.is_some() || page.opens_in.is_some() {
        let _ = writeln!(o, "<script nonce=\"{nonce}\">{SCRIPT}</script>");
    }
    o.push_str("</body>\n</html>\n");
    o
}

/// The pages' one script, nonce-allowed: writes every `<time datetime>` in the reader's time
/// zone and language, and on a scheduled page counts down the seconds the server said remain
/// (so a wrong clock in the browser does not matter), then shows the form. Without scripts the
/// page keeps UTC and says when the link opens.
const SCRIPT: &str = "(function(){var l=document.documentElement.lang;\
document.querySelectorAll('time[datetime]').forEach(function(t){try{t.textContent=new Intl.DateTimeFormat(l,{dateStyle:'long',timeStyle:'short'}).format(new Date(t.getAttribute('datetime')))}catch(e){}});\
var c=document.getElementById('countdown');if(!c)return;var end=Date.now()+1000*Number(c.getAttribute('data-seconds')),s=c.querySelector('span');\
function tick(){var r=Math.ceil((end-Date.now())/1000);if(r<=0){document.getElementById('join').hidden=false;c.hidden=true;document.querySelector('main').setAttribute('data-code','active');return}\
var h=Math.floor(r/3600),m=Math.floor(r%3600/60),x=r%60;s.textContent=(h?h+':'+(m<10?'0':''):'')+m+':'+(x<10?'0':'')+x;setTimeout(tick,1000-(end-Date.now())%1000)}tick()})();";

/// The text colour that reads best on `color` (`#rrggbb`): black or white, whichever has the
/// higher contrast (WCAG relative luminance), so any tenant colour keeps buttons readable.
fn on_accent(color: &str) -> &'static str {
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(color.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0))
            / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    // Contrast with black (L + 0.05) / 0.05 against with white 1.05 / (L + 0.05).
    if (luminance + 0.05) * (luminance + 0.05) > 0.0525 {
        "#000"
    } else {
        "#fff"
    }
}

/// `h:mm:ss` or `m:ss`, as the countdown starts before the script runs.
fn countdown_text(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// `<time datetime="…">text</time>`.
fn time(out: &mut String, moment: &Moment) {
    out.push_str("<time datetime=\"");
    escape(out, &moment.at);
    out.push_str("\">");
    escape(out, &moment.text);
    out.push_str("</time>");
}

/// Renders `page` for `tenant` (or the service itself) with the security headers every page
/// carries; the CSP lets forms post to the page itself and the tenant's accept_url origin.
pub fn respond(status: StatusCode, tenant: Option<&Tenant>, page: &Page) -> HttpResponse {
    let nonce = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
    let theme = tenant.map(|t| &t.theme);
    let logo = theme.and_then(|t| t.logo_url.as_ref()).map(|u| u.as_str());
    let color = theme
        .and_then(|t| t.primary_color.as_ref())
        .map(|c| c.as_str())
        .unwrap_or(DEFAULT_COLOR);
    let body = render(
        page,
        &nonce,
        tenant.map_or("Invitation", |t| t.name.as_str()),
        color,
        logo,
    );
    let sources = tenant.map_or(SERVICE_PAGE_SOURCES, |t| t.page_sources.as_str());
    let mut csp = String::with_capacity(96 + sources.len());
    csp.push_str("default-src 'none'; style-src 'nonce-");
    csp.push_str(&nonce);
    csp.push_str("'; script-src 'nonce-");
    csp.push_str(&nonce);
    csp.push_str("'; ");
    csp.push_str(sources);
    let mut response = HttpResponseBuilder::new(status);
    security_headers(&mut response);
    response
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((
            header::CONTENT_LANGUAGE,
            HeaderValue::from_static(page.lang.lang),
        ))
        .insert_header((header::VARY, HeaderValue::from_static("Accept-Language")));
    response.content_type("text/html; charset=utf-8").body(body)
}

/// The CSP directives of the service's own pages (no tenant known) after the nonces.
const SERVICE_PAGE_SOURCES: &str =
    "img-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The CSP directives of a tenant's pages after the nonces: the logo's origin for images and
/// the accept_url's origin for the hand-off form. Built once per tenant at start-up (parsing
/// two URLs per page view was a measurable share of the landing page's cost).
pub fn page_sources(theme: &ThemeSettings, accept_url: &str) -> String {
    let img = theme
        .logo_url
        .as_ref()
        .map_or_else(|| "'none'".to_owned(), |url| url.origin());
    let form = origin(accept_url).map_or_else(String::new, |o| format!(" {o}"));
    format!("img-src {img}; form-action 'self'{form}; frame-ancestors 'none'; base-uri 'none'")
}

/// Headers of every participant page.
pub fn security_headers(response: &mut HttpResponseBuilder) {
    response
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_content_and_attributes() {
        let mut out = String::new();
        escape(&mut out, "a<b>&\"c\"'d'=`e`");
        assert_eq!(
            out,
            "a&lt;b&gt;&amp;&quot;c&quot;&#x27;d&#x27;&#x3D;&#x60;e&#x60;"
        );
    }

    #[test]
    fn text_on_the_accent_colour_keeps_its_contrast() {
        for (accent, text) in [
            ("#ffff00", "#000"),
            ("#1a1a1a", "#fff"),
            ("#0a66c2", "#fff"),
            ("#ffffff", "#000"),
            ("#000000", "#fff"),
            ("#777777", "#000"),
        ] {
            assert_eq!(on_accent(accent), text, "{accent}");
        }
    }

    #[test]
    fn every_user_value_is_escaped() {
        let evil = "\"><script>alert(1)</script>";
        let mut page = Page::new("active", evil);
        page.message = Some(evil.into());
        page.invite = Some(InviteFacts {
            title: evil.into(),
            inviter: evil.into(),
            role: evil.into(),
            starts: Some(Moment {
                text: evil.into(),
                at: evil.into(),
            }),
            expires: Moment {
                text: evil.into(),
                at: evil.into(),
            },
        });
        page.form = Some(FormFields {
            open: true,
            code: CodeStep::Enter,
            email: evil.into(),
            first_name: evil.into(),
            last_name: evil.into(),
            invalid: vec!["email".into(), "code".into()],
        });
        page.link = Some((evil.into(), evil.into()));
        page.accept = Some(Handoff {
            url: evil.into(),
            grant: evil.into(),
            title: evil.into(),
        });
        page.facts = vec![(evil.into(), evil.into(), evil.into())];
        let html = render(&page, "n0nce", evil, "#000000", Some(evil));
        assert!(!html.contains("<script>alert"), "{html}");
        assert_eq!(
            html.matches("<script nonce=\"n0nce\">").count(),
            html.matches("<script").count(),
            "only nonce'd scripts: the hand-off and the page script"
        );
        assert_eq!(html.matches("<script").count(), 2);
    }
}
