//! The participant pages: `GET /i/{token}`, `POST /i/{token}`, `/demo/accept`.

use invitetomedia::tokens::verify_grant;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::json;

use crate::helpers::*;

/// A page response.
struct Html {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Html {
    fn code(&self) -> &str {
        let start = self
            .body
            .find("data-code=\"")
            .expect("main carries data-code")
            + 11;
        &self.body[start..start + self.body[start..].find('"').unwrap()]
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn device_cookie(&self) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("itm_device="))
            .map(str::to_owned)
    }

    /// The value of a hidden input.
    fn input(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker).unwrap() + marker.len();
        self.body[start..start + self.body[start..].find('"').unwrap()].to_owned()
    }
}

async fn page(
    app: &TestApp,
    method: &str,
    token: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> Html {
    let url = format!("{}/i/{token}", app.address);
    let mut request = match method {
        "GET" => app.client.get(url),
        "HEAD" => app.client.head(url),
        _ => app.client.post(url).form(form),
    };
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    Html {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

fn assert_page_headers(html: &Html) {
    assert_eq!(html.header("referrer-policy"), "no-referrer");
    assert_eq!(html.header("cache-control"), "no-store");
    assert_eq!(html.header("x-content-type-options"), "nosniff");
    let csp = html.header("content-security-policy");
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "script-src 'nonce-",
        "style-src 'nonce-",
    ] {
        assert!(csp.contains(part), "CSP lacks {part}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(html.header("content-type").starts_with("text/html"));
}

#[tokio::test]
async fn landing_shows_the_invitation_and_never_consumes() {
    let app = spawn_app().await;
    let token = app.create_token(json!({ "media": { "title": "Weekly <b>seminar</b> & \"Q&A\"" }, "invitee": { "role": "speaker" } })).await;
    for _ in 0..3 {
        let html = page(&app, "GET", &token, None, &[]).await;
        assert_eq!((html.status, html.code()), (200, "active"));
        assert_page_headers(&html);
        let body = &html.body;
        assert!(body.contains("<html lang=\"en\" dir=\"ltr\">"));
        assert!(body.contains("name=\"viewport\""));
        assert!(
            body.contains("Weekly &lt;b&gt;seminar&lt;/b&gt; &amp; &quot;Q&amp;A&quot;"),
            "title escaped"
        );
        assert!(!body.contains("<b>seminar"));
        assert!(
            body.contains("Prof One")
                && body.contains("Speaker")
                && body.contains("Demo University")
        );
        assert!(body.contains("<label for=\"email\">") && body.contains("id=\"email\""));
        assert!(
            !body.contains("first_name"),
            "a bound link asks only for the email"
        );
        let nonce = html
            .header("content-security-policy")
            .split("'nonce-")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap()
            .to_owned();
        assert!(body.contains(&format!("<style nonce=\"{nonce}\">")));
        let cookie = html.device_cookie().expect("a device cookie is set");
        for attribute in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/i/",
            "Secure",
            "Max-Age=15552000",
        ] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
    }
    let head = page(&app, "HEAD", &token, None, &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        app.introspect(&token).await.body["uses"],
        0,
        "GET and HEAD consumed nothing"
    );
}

#[tokio::test]
async fn joining_hands_the_grant_to_the_platform() {
    let app = spawn_app().await;
    let token = app.create_token(json!({})).await;
    let first = page(&app, "GET", &token, None, &[]).await;
    let cookie = first.device_cookie().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();

    let wrong = page(
        &app,
        "POST",
        &token,
        Some(&cookie),
        &[("email", "eve@example.com")],
    )
    .await;
    assert_eq!((wrong.status, wrong.code()), (403, "email_mismatch"));
    assert!(
        wrong.body.contains("value=\"eve@example.com\""),
        "the form comes back filled in"
    );
    assert!(
        wrong.device_cookie().is_none(),
        "a valid cookie is kept, not replaced"
    );

    let joined = page(
        &app,
        "POST",
        &token,
        Some(&cookie),
        &[("email", "Ada@Example.com")],
    )
    .await;
    assert_eq!((joined.status, joined.code()), (200, "granted"));
    assert!(
        joined.body.contains("Taking you to Weekly seminar"),
        "the hand-off names the media"
    );
    assert!(
        joined.body.contains("<span>Demo University</span>"),
        "and the tenant"
    );
    assert_page_headers(&joined);
    assert!(
        joined
            .body
            .contains("action=\"http://127.0.0.1:8080/demo/accept\"")
    );
    assert!(
        joined
            .header("content-security-policy")
            .contains("form-action 'self' http://127.0.0.1:8080;")
    );
    assert!(
        joined
            .body
            .contains("<button type=\"submit\">Continue</button>"),
        "works without JavaScript"
    );
    let nonce = joined
        .header("content-security-policy")
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_owned();
    assert!(joined.body.contains(&format!("<script nonce=\"{nonce}\">")));
    let grant = joined.input("grant");
    let claims = verify_grant(
        &app.state.live().grant_keys,
        "invitetomedia",
        &["demo-platform"],
        0,
        &grant,
    )
    .unwrap();
    assert_eq!(
        (claims.mid.as_str(), claims.role.as_str()),
        ("1_abc", "viewer")
    );

    // The same browser comes back: the form again (free re-entry), then another grant.
    let back = page(&app, "GET", &token, Some(&cookie), &[]).await;
    assert_eq!((back.status, back.code()), (200, "active"));
    let again = page(
        &app,
        "POST",
        &token,
        Some(&cookie),
        &[("email", "ada@example.com")],
    )
    .await;
    assert_eq!(again.code(), "granted");
    // Another browser: used up.
    let other = page(
        &app,
        "GET",
        &token,
        Some("itm_device=another-browser-0001"),
        &[],
    )
    .await;
    assert_eq!((other.status, other.code()), (410, "exhausted"));
    let other = page(&app, "POST", &token, None, &[("email", "ada@example.com")]).await;
    assert_eq!((other.status, other.code()), (410, "exhausted"));
    assert_eq!(app.introspect(&token).await.body["uses"], 1);
}

#[tokio::test]
async fn every_outcome_has_its_page_and_status() {
    let app = spawn_app().await;
    let revoked = app.create_token(json!({})).await;
    app.post(
        "/v1/invites/revoke",
        Some(DEMO_KEY),
        &json!({ "token": revoked }),
    )
    .await;
    let mut off = invite_body();
    merge(
        &mut off,
        json!({ "inviter": { "id": "alice" }, "invitee": { "email": null, "first_name": null, "last_name": null } }),
    );
    let open = app.create_token_as(ACME_KEY, &off).await;
    let tampered = format!("{}x", app.create_token(json!({})).await);
    let cases = [
        (revoked.as_str(), 410, "revoked"),
        (tampered.as_str(), 401, "invalid_token"),
        ("not-a-token", 400, "malformed_token"),
    ];
    for (token, status, code) in cases {
        let html = page(&app, "GET", token, None, &[]).await;
        assert_eq!((html.status, html.code()), (status, code), "{code}");
        assert_page_headers(&html);
    }
    // An open link asks for names; a restricted domain is refused with the form shown again.
    let html = page(&app, "GET", &open, None, &[]).await;
    assert!(html.body.contains("id=\"first_name\"") && html.body.contains("id=\"last_name\""));
    assert!(html.body.contains("Acme College"));
    let refused = page(
        &app,
        "POST",
        &open,
        None,
        &[
            ("email", "x@sso.example"),
            ("first_name", "X"),
            ("last_name", "Y"),
        ],
    )
    .await;
    assert_eq!((refused.status, refused.code()), (422, "restricted_domain"));
    let missing = page(&app, "POST", &open, None, &[("email", "grace@example.org")]).await;
    assert_eq!((missing.status, missing.code()), (422, "invalid_request"));
    assert!(
        missing
            .body
            .contains("Please check the highlighted fields.")
    );
    // The fields at fault are marked and described by the message.
    for field in ["first_name", "last_name"] {
        assert!(
            missing.body.contains(&format!(
                "id=\"{field}\" name=\"{field}\" type=\"text\" autocomplete"
            )),
            "{field}"
        );
    }
    assert_eq!(
        missing
            .body
            .matches("aria-invalid=\"true\" aria-describedby=\"message\"")
            .count(),
        2
    );
}

#[tokio::test]
async fn time_module_and_store_outcomes() {
    let app = spawn_app().await;
    let now = invitetomedia::store::unix_now();
    for (changes, status, code) in [
        (
            json!({ "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600 }),
            410,
            "expired",
        ),
        // Before its start a link counts down to its form (SPEC: scheduled, not an error).
        (json!({ "nbf": now + 3600 }), 200, "scheduled"),
    ] {
        let html = page(&app, "GET", &mint_invite(&app, "demo", changes), None, &[]).await;
        assert_eq!((html.status, html.code()), (status, code));
        assert_page_headers(&html);
    }
    let scheduled = mint_invite(&app, "demo", json!({ "nbf": now + 3600 }));
    let html = page(&app, "GET", &scheduled, None, &[]).await;
    assert!(
        html.body.contains("id=\"countdown\" data-seconds=\""),
        "{}",
        html.body
    );
    assert!(
        html.body
            .contains("<form id=\"join\" method=\"post\" action=\"\" hidden>")
    );
    let early = page(
        &app,
        "POST",
        &scheduled,
        None,
        &[("email", "ada@example.com")],
    )
    .await;
    assert_eq!((early.status, early.code()), (403, "not_yet_valid"));
    let token = app.create_token(json!({})).await;
    let disabled = spawn_with(
        Backend::Memory,
        "[tenants.demo.invitetomedia]\nenable = false",
    )
    .await;
    let html = page(&disabled, "GET", &token, None, &[]).await;
    assert_eq!((html.status, html.code()), (403, "module_disabled"));
    // A store that cannot be reached: 503 with Retry-After, never a form that cannot work.
    let down = spawn_configured(&test_toml(
        Backend::Redis,
        &format!("redis://127.0.0.1:{}", free_port()),
        "d",
        "",
    ))
    .await;
    let html = page(&down, "GET", &token, None, &[]).await;
    assert_eq!((html.status, html.code()), (503, "store_unavailable"));
    assert_eq!(html.header("retry-after"), "1");
}

#[tokio::test]
async fn a_fresh_or_invalid_cookie_is_replaced() {
    let toml = test_toml(Backend::Memory, "redis://127.0.0.1:1", "c", "");
    let overrides = Overrides::new().set("server.public_base_url", "http://127.0.0.1:1");
    let app = spawn_overridden(&toml, &overrides).await;
    let token = app.create_token(json!({})).await;
    let html = page(&app, "GET", &token, Some("itm_device=bad!"), &[]).await;
    let cookie = html.device_cookie().expect("an invalid cookie is replaced");
    assert!(!cookie.contains("Secure"), "no Secure flag on plain http");
}

#[tokio::test]
async fn tenant_theme_colours_the_page() {
    let app = spawn_with(Backend::Memory, "[tenants.demo.theme]\nprimary_color = \"#aa3300\"\nlogo_url = \"https://cdn.demo.test/logo.png\"").await;
    let token = app.create_token(json!({})).await;
    let html = page(&app, "GET", &token, None, &[]).await;
    assert!(html.body.contains("--accent:#aa3300"));
    assert!(
        html.body
            .contains("<img src=\"https://cdn.demo.test/logo.png\"")
    );
    assert!(
        html.header("content-security-policy")
            .contains("img-src https://cdn.demo.test;")
    );
    for (extra, key) in [
        (
            "[tenants.demo.theme]\nprimary_color = \"red\"",
            "tenants.demo.theme.primary_color",
        ),
        (
            "[tenants.demo.theme]\nlogo_url = \"http://cdn.demo.test/logo.png\"",
            "tenants.demo.theme.logo_url",
        ),
    ] {
        let err = invitetomedia::settings::Settings::load(&invitetomedia::settings::LoadOptions {
            config_dir: "config".into(),
            app_env: "test".into(),
            extra_toml: Some(extra.into()),
            env: Some(Default::default()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.key, key);
    }
}

#[tokio::test]
async fn demo_accept_verifies_grants() {
    let app = spawn_app().await;
    let token = app
        .create_token(json!({ "invitee": { "role": "moderator" } }))
        .await;
    let grant = app.redeem_as(&token, &device(1)).await.body["grant"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .client
        .post(format!("{}/demo/accept", app.address))
        .form(&[("grant", grant.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.text().await.unwrap();
    for expected in [
        "data-code=\"accepted\"",
        "data-field=\"media_id\">1_abc<",
        "data-field=\"role\">moderator<",
        "data-field=\"media_type\">room<",
        "data-field=\"name\">Ada Lovelace<",
        "data-field=\"email\">ada@example.com<",
    ] {
        assert!(body.contains(expected), "{expected} in {body}");
    }
    let forged = app
        .client
        .post(format!("{}/demo/accept", app.address))
        .form(&[("grant", format!("{grant}x"))])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    assert_eq!(app.get_text("/demo/accept").await.0, 200);
}

#[tokio::test]
async fn demo_accept_is_not_served_in_production() {
    let toml = test_toml(Backend::Memory, "redis://127.0.0.1:1", "p", "");
    let settings = invitetomedia::settings::Settings::load(&invitetomedia::settings::LoadOptions {
        config_dir: "config".into(),
        app_env: "production".into(),
        extra_toml: Some(toml),
        env: Some(Default::default()),
        ..Default::default()
    })
    .unwrap();
    let app = invitetomedia::startup::Application::build(settings)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    assert_eq!(
        client
            .get(format!("{address}/demo/accept"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let posted = client
        .post(format!("{address}/demo/accept"))
        .form(&[("grant", "a.b.c")])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 404);
    // And the demo tenant's published key opens nothing there.
    let create = client
        .post(format!("{address}/v1/invites"))
        .bearer_auth(DEMO_KEY)
        .json(&invite_body())
        .send()
        .await
        .unwrap();
    assert_eq!(create.status().as_u16(), 401);
}

/// A form post to `/i/{token}` with these request headers.
async fn post_with(app: &TestApp, token: &str, headers: &[(&str, &str)]) -> Html {
    let mut request = app
        .client
        .post(format!("{}/i/{token}", app.address))
        .form(&[("email", "ada@example.com")]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    Html {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

#[tokio::test]
async fn posts_from_other_sites_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.create_token(json!({})).await;
    let valid_cookie = format!("itm_device={}", device(1));
    let refused: [&[(&str, &str)]; 5] = [
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("sec-fetch-site", "none")],
        &[("origin", "https://evil.example")],
        // A browser's own page posts with Origin null: the fetch metadata still tells.
        &[("origin", "null"), ("sec-fetch-site", "cross-site")],
    ];
    for headers in refused {
        for cookie in [None, Some(valid_cookie.as_str())] {
            let mut all = headers.to_vec();
            if let Some(cookie) = cookie {
                all.push(("cookie", cookie));
            }
            let html = post_with(&app, &token, &all).await;
            assert_eq!(
                (html.status, html.code()),
                (403, "cross_site_request"),
                "{all:?}"
            );
            assert_eq!(html.device_cookie(), None, "no cookie is set: {all:?}");
            assert_page_headers(&html);
        }
    }
    assert_eq!(
        app.introspect(&token).await.body["uses"],
        0,
        "nothing consumed"
    );

    // Our own form: Origin null (no-referrer) or our own origin, same-origin fetch metadata,
    // or no such headers at all (older clients).
    let allowed: [&[(&str, &str)]; 3] = [
        &[("origin", "null"), ("sec-fetch-site", "same-origin")],
        &[("origin", "https://invites.example.test")],
        &[],
    ];
    for headers in allowed {
        let mut all = headers.to_vec();
        all.push(("cookie", valid_cookie.as_str()));
        let html = post_with(&app, &token, &all).await;
        assert_eq!((html.status, html.code()), (200, "granted"), "{all:?}");
        assert_eq!(
            html.device_cookie(),
            None,
            "a valid device cookie is never replaced: {all:?}"
        );
    }
    assert_eq!(app.introspect(&token).await.body["uses"], 1);
}

#[tokio::test]
async fn the_restricted_domain_page_links_to_the_sites_sign_in() {
    let toml = test_toml(Backend::Memory, "redis://127.0.0.1:1", "x", "");
    let overrides = Overrides::new().set(
        "tenants.acme.login_url",
        "https://lms.acme.test/login?next=/",
    );
    let app = spawn_overridden(&toml, &overrides).await;
    let mut body = invite_body();
    body["invitee"] = serde_json::json!({ "role": "viewer" });
    let open = app.create_token_as(ACME_KEY, &body).await;
    let fields = [
        ("email", "x@sso.example"),
        ("first_name", "X"),
        ("last_name", "Y"),
    ];
    let refused = page(&app, "POST", &open, None, &fields).await;
    assert_eq!((refused.status, refused.code()), (422, "restricted_domain"));
    assert!(
        refused
            .body
            .contains("<a href=\"https://lms.acme.test/login?next&#x3D;/\">"),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("aria-invalid=\"true\" aria-describedby=\"message\"")
    );
    // Without a login_url, no link.
    let plain = spawn_app().await;
    let open = plain.create_token_as(ACME_KEY, &body).await;
    let refused = page(&plain, "POST", &open, None, &fields).await;
    assert!(!refused.body.contains("<a href="));
}
