//! Participant pages in twelve languages (SPEC §10): each page says which language it is in
//! (`<html lang dir>`, `Content-Language`, `Vary: Accept-Language`) and is written in it.

use serde_json::json;

use crate::helpers::*;

/// The landing page of a fresh link, asked for with this `Accept-Language`.
async fn landing(app: &TestApp, accept: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let token = app.create_token(json!({})).await;
    let response = app
        .client
        .get(format!("{}/i/{token}", app.address))
        .header("accept-language", accept)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

async fn written_in(lang: &str, dir: &str, join: &str, role: &str) {
    let app = spawn_app().await;
    let (status, headers, body) = landing(&app, lang).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!("<html lang=\"{lang}\" dir=\"{dir}\">")),
        "{body}"
    );
    assert_eq!(headers.get("content-language").unwrap(), lang);
    assert_eq!(headers.get("vary").unwrap(), "Accept-Language");
    assert!(
        body.contains(&format!(">{join}</button>")),
        "{lang}: {body}"
    );
    assert!(
        body.contains(&format!("<dd><bdi>{role}</bdi></dd>")),
        "{lang}: the role's name: {body}"
    );
    // Addresses stay left to right on every page.
    assert!(body.contains("type=\"email\" dir=\"ltr\""));
}

macro_rules! languages {
    ($($name:ident: $lang:literal, $dir:literal, $join:literal, $role:literal;)+) => {
        $(
            #[tokio::test]
            async fn $name() {
                written_in($lang, $dir, $join, $role).await;
            }
        )+
    };
}

languages! {
    english: "en", "ltr", "Join", "Viewer";
    french: "fr", "ltr", "Rejoindre", "Spectateur";
    german: "de", "ltr", "Teilnehmen", "Zuschauer";
    spanish: "es", "ltr", "Unirse", "Espectador";
    italian: "it", "ltr", "Partecipa", "Spettatore";
    portuguese: "pt", "ltr", "Participar", "Espectador";
    dutch: "nl", "ltr", "Deelnemen", "Kijker";
    polish: "pl", "ltr", "Dołącz", "Widz";
    japanese: "ja", "ltr", "参加する", "視聴者";
    simplified_chinese: "zh-Hans", "ltr", "加入", "观众";
    arabic: "ar", "rtl", "انضمام", "مشاهد";
    hebrew: "he", "rtl", "הצטרפות", "צופה";
}

#[tokio::test]
async fn accept_language_is_negotiated() {
    let toml = test_toml(Backend::Memory, "redis://127.0.0.1:1", "x", "");
    let overrides = Overrides::new().set("tenants.demo.default_language", "de");
    let app = spawn_overridden(&toml, &overrides).await;
    let plain = spawn_app().await;
    for (app, accept, expected) in [
        (&app, "fr-CA,fr;q=0.9", "fr"),
        (&app, "zh-CN", "zh-Hans"),
        (&app, "pt-BR", "pt"),
        (&app, "xx", "de"),
        (&plain, "*", "en"),
        (&plain, "%%%;;q=,,x-;q", "en"),
        (&app, "it;q=0.2, nl;q=0.7", "nl"),
    ] {
        let (_, headers, body) = landing(app, accept).await;
        assert_eq!(
            headers.get("content-language").unwrap(),
            expected,
            "{accept}"
        );
        assert!(
            body.contains(&format!("<html lang=\"{expected}\"")),
            "{accept}"
        );
    }
    // The invite's own language comes before the tenant's.
    let mut body = invite_body();
    body["language"] = json!("es");
    let token = app.create_token_as(DEMO_KEY, &body).await;
    let page = app.get_text(&format!("/i/{token}")).await.1;
    assert!(page.contains("<html lang=\"es\""), "{page}");
    // And the hand-off after joining is in it too.
    let joined = app
        .client
        .post(format!("{}/i/{token}", app.address))
        .form(&[("email", "ada@example.com")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        joined.contains("data-code=\"granted\"") && joined.contains("<html lang=\"es\""),
        "{joined}"
    );
}

#[tokio::test]
async fn error_pages_are_written_in_the_page_language_too() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/i/not-a-token", app.address))
        .header("accept-language", "ar")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers().get("content-language").unwrap(), "ar");
    let body = response.text().await.unwrap();
    assert!(
        body.contains("dir=\"rtl\"") && body.contains("هذا ليس رابط دعوة"),
        "{body}"
    );
}
