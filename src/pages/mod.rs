//! Server-rendered participant pages: one layout, no external assets, no JavaScript needed
//! (the one inline script, allowed by a per-response nonce, only auto-submits the hand-off
//! form). Every value is HTML-escaped by handlebars.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use handlebars::Handlebars;
use serde::Serialize;

use crate::state::Tenant;
use crate::tokens::keyring::random_bytes;

/// Accent colour when a tenant sets none.
pub const DEFAULT_COLOR: &str = "#0a66c2";

/// The compiled page template.
pub struct Pages {
    registry: Handlebars<'static>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pages")
    }
}

impl Default for Pages {
    fn default() -> Self {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(false);
        registry
            .register_template_string("page", include_str!("page.hbs"))
            .expect("the page template compiles");
        Self { registry }
    }
}

/// What the invite offers, as the page shows it.
#[derive(Debug, Serialize)]
pub struct InviteFacts {
    /// Media title.
    pub title: String,
    /// Inviter's name.
    pub inviter: String,
    /// Role.
    pub role: String,
    /// Expiry, readable.
    pub expires: String,
}

/// The join form.
#[derive(Debug, Default, Serialize)]
pub struct FormFields {
    /// Open link: ask for names too.
    pub open: bool,
    /// Prefilled email.
    pub email: String,
    /// Prefilled first name.
    pub first_name: String,
    /// Prefilled last name.
    pub last_name: String,
}

/// The hand-off of a grant to the platform.
#[derive(Debug, Serialize)]
pub struct Handoff {
    /// The tenant's accept_url.
    pub url: String,
    /// The grant.
    pub grant: String,
    /// Media title, for the waiting line.
    pub title: String,
}

/// One page.
#[derive(Debug, Serialize)]
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
        }
    }
}

#[derive(Serialize)]
struct Rendering<'a> {
    #[serde(flatten)]
    page: &'a Page,
    nonce: &'a str,
    tenant: &'a str,
    color: &'a str,
    logo: Option<&'a str>,
}

impl Pages {
    /// Renders `page` for `tenant` (or the service itself) with the security headers every page
    /// carries. `form_target` is the accept_url whose origin the CSP lets forms post to.
    pub fn respond(
        &self,
        status: StatusCode,
        tenant: Option<&Tenant>,
        page: &Page,
    ) -> HttpResponse {
        let nonce = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
        let theme = tenant.map(|t| &t.theme);
        let logo = theme.and_then(|t| t.logo_url.as_deref());
        let rendering = Rendering {
            page,
            nonce: &nonce,
            tenant: tenant.map_or("Invitation", |t| t.name.as_str()),
            color: theme
                .and_then(|t| t.primary_color.as_deref())
                .unwrap_or(DEFAULT_COLOR),
            logo,
        };
        let body = match self.registry.render("page", &rendering) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(cause = %e, "page rendering failed");
                return HttpResponse::InternalServerError().finish();
            }
        };
        let form_origin = tenant
            .and_then(|t| origin(&t.accept_url))
            .unwrap_or_default();
        let img = logo.and_then(origin).unwrap_or_else(|| "'none'".to_owned());
        let csp = format!(
            "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; img-src {img}; \
             form-action 'self' {form_origin}; frame-ancestors 'none'; base-uri 'none'"
        );
        let mut response = HttpResponseBuilder::new(status);
        security_headers(&mut response);
        response.insert_header((header::CONTENT_SECURITY_POLICY, csp));
        response.content_type("text/html; charset=utf-8").body(body)
    }
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
