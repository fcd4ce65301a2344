//! The participant's way in: `GET /i/{token}` shows the invitation and a join form and never
//! consumes a use (mail scanners and chat unfurlers fetch links); `POST /i/{token}` redeems
//! exactly like `POST /v1/redeem`, with the device cookie as device id, and hands the grant to
//! the platform by an auto-submitting form.

use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;

use crate::domain::invite::device_id;
use crate::domain::{InviteeRole, UseLimit};
use crate::email::template::format_expiry;
use crate::error::ApiError;
use crate::pages::{
    self, Catalog, CodeStep, FormFields, Handoff, InviteFacts, Moment, Page, negotiate,
};
use crate::service::code::{CodeRequest, send_code};
use crate::service::redeem::{RedeemRequest, redeem};
use crate::service::rfc3339;
use crate::service::{Invite, verify_invite};
use crate::state::{AppState, Live, Tenant};
use crate::store::UseStore;
use crate::store::unix_now;
use crate::tokens::{InvitePersonalData, random_id};

/// The device cookie.
pub const DEVICE_COOKIE: &str = "itm_device";

/// How long the device cookie lives: 180 days, in seconds.
const DEVICE_COOKIE_MAX_AGE: &str = "15552000";

/// The join form. Other fields are ignored (a browser or an extension may add some).
#[derive(Debug, Deserialize)]
pub struct JoinForm {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    /// A one-time code from the email.
    code: Option<String>,
    /// `send_code`: email a one-time code instead of joining.
    action: Option<String>,
}

/// The device of this browser: the cookie when present and valid, else a new id to set.
fn device(req: &HttpRequest) -> (String, bool) {
    match req
        .cookie(DEVICE_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| device_id(v).is_ok())
    {
        Some(existing) => (existing, false),
        None => (random_id(), true),
    }
}

fn with_cookie(
    live: &Live,
    mut response: HttpResponse,
    device: &str,
    is_new: bool,
) -> HttpResponse {
    if is_new {
        // Written out rather than through the cookie builder (the page is served on every
        // click); the value is a generated base64url id, which needs no quoting.
        let secure = if live.settings.server.public_base_url.starts_with("https://") {
            "; Secure"
        } else {
            ""
        };
        let mut cookie = String::with_capacity(96);
        cookie.push_str(DEVICE_COOKIE);
        cookie.push('=');
        cookie.push_str(device);
        cookie.push_str("; HttpOnly; SameSite=Lax");
        cookie.push_str(secure);
        cookie.push_str("; Path=/i/; Max-Age=");
        cookie.push_str(DEVICE_COOKIE_MAX_AGE);
        match HeaderValue::try_from(cookie) {
            Ok(value) => {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(e) => tracing::warn!(cause = %e, "cannot set the device cookie"),
        }
    }
    response
}

/// The page's language for this request: the browser's, then the invite's, then the tenant's.
fn language(req: &HttpRequest, invite: Option<&Invite<'_>>) -> &'static Catalog {
    language_of(
        req,
        invite.and_then(|i| i.token.claims.lng.as_deref()),
        invite.and_then(|i| i.tenant.default_language.as_deref()),
    )
}

/// [`language`] from the link's `lng` and the tenant's default.
fn language_of(req: &HttpRequest, lng: Option<&str>, tenant: Option<&str>) -> &'static Catalog {
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    negotiate(accept, lng, tenant)
}

fn facts(c: &Catalog, invite: &Invite<'_>, personal: &InvitePersonalData) -> InviteFacts {
    let claims = &invite.token.claims;
    let moment = |unix| Moment {
        text: format_expiry(unix, c.lang),
        at: rfc3339(unix),
    };
    InviteFacts {
        title: personal.title.clone(),
        inviter: personal.inviter_name.clone(),
        role: c.t(role_key(invite.role)).to_owned(),
        starts: (claims.nbf > claims.iat).then(|| moment(claims.nbf)),
        expires: moment(claims.exp),
    }
}

/// The catalogue key of a role's name.
fn role_key(role: InviteeRole) -> &'static str {
    match role {
        InviteeRole::Viewer => "role_viewer",
        InviteeRole::Speaker => "role_speaker",
        InviteeRole::Moderator => "role_moderator",
    }
}

/// An error's title and message for a participant, in the page's language.
fn error_text(c: &Catalog, error: &ApiError) -> (String, String) {
    let key = match error {
        ApiError::MalformedToken => "malformed_token",
        ApiError::InvalidToken => "invalid_token",
        ApiError::ModuleDisabled => "module_disabled",
        ApiError::NotYetValid => "not_yet_valid",
        ApiError::Expired => "expired",
        ApiError::Exhausted => "exhausted",
        ApiError::Revoked => "revoked",
        ApiError::Locked => "locked",
        ApiError::EmailMismatch => "email_mismatch",
        ApiError::RestrictedDomain => "restricted_domain",
        ApiError::CodeRequired => "code_required",
        ApiError::InvalidCode { .. } => "invalid_code",
        ApiError::InvalidRequest(_) => "invalid_request",
        ApiError::RateLimited { .. } => "rate_limited",
        ApiError::StoreUnavailable { .. } => "store_unavailable",
        ApiError::EmailFailed => "email_failed",
        ApiError::CrossSiteRequest => "cross_site_request",
        _ => "error",
    };
    let message = match error {
        ApiError::InvalidCode { tries_left: None } => c.t("msg_code_expired").to_owned(),
        ApiError::InvalidCode {
            tries_left: Some(0),
        } => c.t("msg_code_void").to_owned(),
        ApiError::InvalidCode {
            tries_left: Some(n),
        } => c.f("msg_code_wrong", &[("n", &n.to_string())]),
        ApiError::InvalidRequest(_) => c.t("invalid_fields").to_owned(),
        _ => c.t(&format!("msg_{key}")).to_owned(),
    };
    (c.t(&format!("title_{key}")).to_owned(), message)
}

/// An error as the participant page, with its status and `Retry-After`: what `/i/` answers
/// instead of problem+json (the rate-limit middleware in `routes` uses it too).
pub(crate) fn status_page(
    c: &'static Catalog,
    tenant: Option<&Tenant>,
    error: &ApiError,
) -> HttpResponse {
    let (title, message) = error_text(c, error);
    let mut page = Page::new(error.code(), title);
    page.message = Some(message);
    page.lang = c;
    with_retry_after(pages::respond(error.status(), tenant, &page), error)
}

/// Adds the error's `Retry-After` (store unavailable, rate limited) to a page.
fn with_retry_after(mut response: HttpResponse, error: &ApiError) -> HttpResponse {
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

fn form_page(
    c: &'static Catalog,
    invite: &Invite<'_>,
    personal: &InvitePersonalData,
    status: StatusCode,
    error: Option<&ApiError>,
    prefill: FormFields,
) -> HttpResponse {
    let mut page = Page::new(error.map_or("active", ApiError::code), c.t("title_invited"));
    page.lang = c;
    page.message = error.map(|e| match e {
        // On this page a 429 is the link's hourly limit of codes (the per-client limit answers
        // before the page is built).
        ApiError::RateLimited { retry_after } => c.f(
            "msg_too_many_codes",
            &[("minutes", &retry_after.div_ceil(60).to_string())],
        ),
        other => error_text(c, other).1,
    });
    if matches!(error, Some(ApiError::RestrictedDomain)) {
        page.link = invite
            .tenant
            .login_url
            .clone()
            .map(|url| (url, c.t("login_link").to_owned()));
    }
    page.invite = Some(facts(c, invite, personal));
    page.form = Some(FormFields {
        open: personal.is_open(),
        invalid: error.map(invalid_fields).unwrap_or_default(),
        ..prefill
    });
    pages::respond(status, Some(&invite.tenant), &page)
}

/// The form fields an error is about.
fn invalid_fields(error: &ApiError) -> Vec<String> {
    match error {
        ApiError::InvalidRequest(fields) => fields.iter().map(|f| f.field.clone()).collect(),
        ApiError::EmailMismatch | ApiError::RestrictedDomain => vec!["email".to_owned()],
        ApiError::InvalidCode { .. } => vec!["code".to_owned()],
        _ => Vec::new(),
    }
}

/// The step of the code flow a page for this browser starts at: a device new to the link
/// needs a code under `RequireEmailCode`.
fn first_code_step(invite: &Invite<'_>, personal: &InvitePersonalData, known: bool) -> CodeStep {
    if invite.tenant.module.require_email_code && !personal.is_open() && !known {
        CodeStep::Offer
    } else {
        CodeStep::None
    }
}

/// A scheduled link before its start: when it opens, a countdown, and the form, hidden until
/// the countdown ends (`data-code="scheduled"`, then `active`).
fn scheduled_page(
    c: &'static Catalog,
    invite: &Invite<'_>,
    personal: &InvitePersonalData,
    opens_in: i64,
    form: FormFields,
) -> HttpResponse {
    let mut page = Page::new("scheduled", c.t("title_invited"));
    page.lang = c;
    page.message = Some(c.t("msg_scheduled").to_owned());
    page.invite = Some(facts(c, invite, personal));
    page.opens_in = Some(opens_in);
    page.form = Some(FormFields {
        open: personal.is_open(),
        ..form
    });
    pages::respond(StatusCode::OK, Some(&invite.tenant), &page)
}

/// A used-up email-bound link, as a browser that is not one of its devices sees it: the 410
/// status, and a form that offers a code to move the link to this device.
fn used_up_page(
    c: &'static Catalog,
    invite: &Invite<'_>,
    personal: &InvitePersonalData,
    email: String,
) -> HttpResponse {
    let mut page = Page::new(ApiError::Exhausted.code(), c.t("title_exhausted"));
    page.lang = c;
    page.message = Some(c.t("msg_used_up_offer").to_owned());
    page.invite = Some(facts(c, invite, personal));
    page.form = Some(FormFields {
        code: CodeStep::Offer,
        email,
        ..FormFields::default()
    });
    pages::respond(StatusCode::GONE, Some(&invite.tenant), &page)
}

/// `GET /i/{token}` (and HEAD): the invitation, never consuming a use.
async fn show(req: &HttpRequest, state: &AppState, live: &Live, token: &str) -> HttpResponse {
    let (device, is_new) = device(req);
    let response = show_inner(req, state, live, token, &device).await;
    with_cookie(live, response, &device, is_new)
}

/// Every request under `/i/`, after the rate limit (`routes::rate_limit`). Served from a
/// scope's default service rather than a `/i/{token}` resource: the router would run a regex
/// over the ~600-character token on every click, a measurable share of the landing page's
/// cost.
pub async fn dispatch(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(token) = req
        .path()
        .strip_prefix("/i/")
        .filter(|t| !t.is_empty() && !t.contains('/'))
    else {
        return ApiError::NotFound.error_response();
    };
    // One configuration for the whole request, whatever a reload does meanwhile.
    let live = state.live();
    match *req.method() {
        Method::GET | Method::HEAD => show(&req, &state, &live, token).await,
        Method::POST => match serde_urlencoded::from_bytes::<JoinForm>(&body) {
            Ok(form) => join(&req, &state, &live, token, form).await,
            Err(e) => ApiError::MalformedRequest(format!("The form could not be read: {e}"))
                .error_response(),
        },
        _ => HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "GET, HEAD, POST"))
            .finish(),
    }
}

async fn show_inner(
    req: &HttpRequest,
    state: &AppState,
    live: &Live,
    token: &str,
    device: &str,
) -> HttpResponse {
    let invite = match verify_invite(live, token) {
        Ok(invite) => invite,
        Err(e) => return status_page(language(req, None), None, &e),
    };
    let c = language(req, Some(&invite));
    let tenant = &invite.tenant;
    // Before its start a link shows when it opens, counting down to the form; redemption
    // itself accepts it from `leeway` seconds earlier.
    let now = unix_now();
    let opens_in = invite.token.claims.nbf - now;
    let usable = if opens_in > 0 && tenant.module.enable {
        Ok(())
    } else {
        invite.check_usable(live.leeway())
    };
    if let Err(e) = usable {
        return status_page(c, Some(tenant), &e);
    }
    let Ok(personal) = invite.token.personal_data() else {
        return status_page(c, None, &ApiError::InvalidToken);
    };
    let status = match state
        .timed(
            "status",
            state.store.status(&invite.link_ref(live), Some(device)),
        )
        .await
    {
        Ok(status) => status,
        Err(e) => return status_page(c, Some(tenant), &e),
    };
    if status.revoked {
        return status_page(c, Some(tenant), &ApiError::Revoked);
    }
    if status.locked {
        return status_page(c, Some(tenant), &ApiError::Locked);
    }
    // A device that already redeemed re-enters for free, even on a used-up link. On an open
    // link a use is a device and an address, and the address is not known before the form is
    // posted: the form shows, and its answer says whether this participant is in.
    if let UseLimit::Limited(max) = invite.max
        && status.uses >= u64::from(max.get())
        && !status.device_known
        && !personal.is_open()
    {
        return used_up_page(c, &invite, &personal, String::new());
    }
    let code = first_code_step(&invite, &personal, status.device_known);
    let fields = FormFields {
        code,
        ..FormFields::default()
    };
    if opens_in > 0 {
        return scheduled_page(c, &invite, &personal, opens_in, fields);
    }
    form_page(c, &invite, &personal, StatusCode::OK, None, fields)
}

/// Whether a browser marks this POST as sent from another site: `Sec-Fetch-Site` present and
/// not `same-origin`, or an `Origin` that is neither `null` (what our own form sends under
/// `Referrer-Policy: no-referrer`) nor our own. Such a post could spend the visitor's use, or,
/// since a SameSite=Lax cookie is not sent with it, have us set a new device cookie over the
/// visitor's and wipe their re-entry.
fn is_cross_site(req: &HttpRequest, live: &Live) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return true;
    }
    headers
        .get(header::ORIGIN)
        .is_some_and(|origin| origin != "null" && origin != live.public_origin.as_str())
}

/// `POST /i/{token}`: redeem with the device cookie, then hand the grant to the platform.
/// A post from another site is refused before anything is read or set.
async fn join(
    req: &HttpRequest,
    state: &AppState,
    live: &Live,
    token: &str,
    form: JoinForm,
) -> HttpResponse {
    if is_cross_site(req, live) {
        return status_page(language(req, None), None, &ApiError::CrossSiteRequest);
    }
    let (device, is_new) = device(req);
    if form.action.as_deref() == Some("send_code") {
        let response = send_code_page(req, state, live, token, form).await;
        return with_cookie(live, response, &device, is_new);
    }
    let request = RedeemRequest {
        token: Some(token.to_owned()),
        email: form
            .email
            .clone()
            .filter(|e| !e.trim().is_empty())
            .map(|e| e.trim().to_owned()),
        first_name: form.first_name.clone().filter(|v| !v.trim().is_empty()),
        last_name: form.last_name.clone().filter(|v| !v.trim().is_empty()),
        device_id: Some(device.clone()),
        code: form
            .code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
    };
    let response = match redeem(state, live, request).await {
        Ok(redeemed) => {
            // From the redemption: the token is not verified a second time.
            let c = language_of(
                req,
                redeemed.lng.as_deref(),
                redeemed.tenant.default_language.as_deref(),
            );
            let mut page = Page::new("granted", c.t("title_joining"));
            page.lang = c;
            page.accept = Some(Handoff {
                url: redeemed.accept_url,
                grant: redeemed.grant,
                title: redeemed.media_title,
            });
            pages::respond(StatusCode::OK, Some(&redeemed.tenant), &page)
        }
        Err(error) => retry_or_status(req, live, token, error, form),
    };
    with_cookie(live, response, &device, is_new)
}

/// `POST /i/{token}` with `action=send_code`: email a one-time code to the invited address,
/// then ask for it (`data-code="code_sent"`).
async fn send_code_page(
    req: &HttpRequest,
    state: &AppState,
    live: &Live,
    token: &str,
    form: JoinForm,
) -> HttpResponse {
    let request = CodeRequest {
        token: Some(token.to_owned()),
        email: form
            .email
            .clone()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty()),
    };
    match send_code(state, live, request).await {
        Ok(_) => match verify_invite(live, token) {
            Ok(invite) => {
                let c = language(req, Some(&invite));
                let Ok(personal) = invite.token.personal_data() else {
                    return status_page(c, None, &ApiError::InvalidToken);
                };
                let mut page = Page::new("code_sent", c.t("title_code_sent"));
                page.lang = c;
                page.message = Some(c.t("msg_code_sent").to_owned());
                page.invite = Some(facts(c, &invite, &personal));
                page.form = Some(FormFields {
                    code: CodeStep::Enter,
                    email: form.email.unwrap_or_default(),
                    ..FormFields::default()
                });
                // A status, not an error: the message is announced politely.
                pages::respond(StatusCode::OK, Some(&invite.tenant), &page)
            }
            Err(e) => status_page(language(req, None), None, &e),
        },
        Err(error) => retry_or_status(req, live, token, error, form),
    }
}

/// Errors the participant can fix show the form again; the others show the link's status.
fn retry_or_status(
    req: &HttpRequest,
    live: &Live,
    token: &str,
    error: ApiError,
    form: JoinForm,
) -> HttpResponse {
    let step = match &error {
        ApiError::InvalidRequest(_)
        | ApiError::EmailMismatch
        | ApiError::RestrictedDomain
        | ApiError::StoreUnavailable { .. } => Some(if form.code.is_some() {
            CodeStep::Enter
        } else if form.action.is_some() {
            CodeStep::Offer
        } else {
            CodeStep::None
        }),
        ApiError::CodeRequired => Some(CodeStep::Offer),
        ApiError::InvalidCode {
            tries_left: Some(n),
        } if *n > 0 => Some(CodeStep::Enter),
        // Void, expired or used: a new code is needed.
        ApiError::InvalidCode { .. } | ApiError::RateLimited { .. } | ApiError::EmailFailed => {
            Some(CodeStep::Offer)
        }
        _ => None,
    };
    let invite = verify_invite(live, token).ok();
    let c = language(req, invite.as_ref());
    match (invite, step) {
        (Some(invite), _) if matches!(error, ApiError::Exhausted) => {
            let Ok(personal) = invite.token.personal_data() else {
                return status_page(c, None, &ApiError::InvalidToken);
            };
            if personal.is_open() {
                status_page(c, Some(&invite.tenant), &error)
            } else {
                used_up_page(c, &invite, &personal, form.email.unwrap_or_default())
            }
        }
        (Some(invite), Some(code)) => {
            let Ok(personal) = invite.token.personal_data() else {
                return status_page(c, None, &ApiError::InvalidToken);
            };
            let prefill = FormFields {
                open: false,
                code,
                email: form.email.unwrap_or_default(),
                first_name: form.first_name.unwrap_or_default(),
                last_name: form.last_name.unwrap_or_default(),
                invalid: Vec::new(),
            };
            let page = form_page(c, &invite, &personal, error.status(), Some(&error), prefill);
            with_retry_after(page, &error)
        }
        (Some(invite), None) => status_page(c, Some(&invite.tenant), &error),
        (None, _) => status_page(c, None, &error),
    }
}
