//! End to end in a real headless Chromium (Debian's package), driven by Playwright from
//! tests/e2e: open a link, type the email, click Join, land on /demo/accept; reopen in the
//! same browser without using a second use; a second profile gets the "used up" page. The
//! landing page's screenshot is saved as target/landing-page.png. A page on another origin that
//! auto-posts a join form is refused, and the browser's device cookie survives it.

use std::process::Command;

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_joins_in_a_real_browser() {
    let (app, base) = browser_app("").await;
    let token = app
        .create_token(json!({ "invitee": { "role": "speaker" } }))
        .await;

    let link = token.clone();
    let attacked = app
        .create_token(json!({ "invitee": { "role": "viewer" } }))
        .await;
    let attacked_link = attacked.clone();
    let screenshot = in_crate("target/landing-page.png");
    let shot = screenshot.to_str().unwrap().to_owned();
    run_node("tests/e2e/landing.mjs", vec![base, token, shot, attacked]).await;
    assert!(screenshot.exists(), "the screenshot was saved");
    assert_eq!(
        app.introspect(&link).await.body["uses"],
        1,
        "re-entry in the same browser used nothing"
    );
    assert_eq!(
        app.introspect(&attacked_link).await.body["uses"],
        0,
        "the cross-site post consumed nothing"
    );
}

/// An app on a known port whose demo tenant hands grants to its own /demo/accept, with
/// `extra` TOML; and its base URL.
async fn browser_app(extra: &str) -> (TestApp, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let extra = format!("[tenants.demo]\naccept_url = \"{base}/demo/accept\"\n{extra}");
    let toml = test_toml(Backend::Memory, "redis://127.0.0.1:1", "b", &extra);
    let overrides = Overrides::new()
        .set("server.port", port)
        .set("server.public_base_url", &base);
    (spawn_overridden(&toml, &overrides).await, base)
}

/// A path in the crate.
fn in_crate(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs a browser script of tests/e2e with `args`; fails with its output unless it succeeds.
async fn run_node(script: &str, args: Vec<String>) {
    let script = in_crate(script);
    let output =
        tokio::task::spawn_blocking(move || Command::new("node").arg(script).args(args).output())
            .await
            .unwrap()
            .expect("node must be installed (the README's test command installs it)");
    assert!(
        output.status.success(),
        "browser checks failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The laptop-to-phone move with two browser contexts and a real relay catching the code email
/// (tests/e2e/move.mjs); the code page's screenshot is saved as target/code-sent.png.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitee_moves_the_link_from_laptop_to_phone() {
    let (relay, relay_url) = start_relay(&[]).await;
    let relay_base = relay_url.trim_end_matches("/send").to_owned();
    let (app, base) = browser_app(&relay_toml(&relay_url)).await;
    let token = app.create_token(json!({})).await;
    let link = token.clone();
    let screenshot = in_crate("target/code-sent.png");
    let shot = screenshot.to_str().unwrap().to_owned();
    run_node("tests/e2e/move.mjs", vec![base, token, relay_base, shot]).await;
    assert!(screenshot.exists(), "the screenshot was saved");
    assert_eq!(
        app.introspect(&link).await.body["uses"],
        1,
        "a move takes no extra use"
    );
    let received = relay.received.lock().unwrap();
    assert_eq!(received.len(), 1, "one code email");
    assert_eq!(received[0].1["to"][0]["email"], "ada@example.com");
}

/// A link scheduled a few seconds ahead counts down and turns into the form without a reload
/// (tests/e2e/scheduled.mjs); the scheduled page's screenshot is target/scheduled.png.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_link_counts_down_to_its_form() {
    let (_app, base) = browser_app("").await;
    let screenshot = in_crate("target/scheduled.png");
    let shot = screenshot.to_str().unwrap().to_owned();
    run_node(
        "tests/e2e/scheduled.mjs",
        vec![base, DEMO_KEY.to_owned(), shot],
    )
    .await;
    assert!(screenshot.exists(), "the screenshot was saved");
}

/// axe-core finds no WCAG 2.1 A/AA violation on any page state at phone and desktop widths,
/// in English and Arabic (right to left), with a light and a dark theme colour; the keyboard
/// alone joins; an error is announced and tied to its field (tests/e2e/a11y.mjs). The form at
/// phone width is saved as target/form-en.png, form-ar.png and form-ja.png.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_state_passes_axe_with_any_theme_colour() {
    for (colour, locale) in [
        ("#ffff00", "en"),
        ("#1a1a1a", "ar"),
        ("#ffff00", "ar"),
        ("#1a1a1a", "en"),
        ("#0a66c2", "ja"),
    ] {
        let theme = format!("theme = {{ primary_color = \"{colour}\" }}");
        let (_app, base) = browser_app(&theme).await;
        let shots = in_crate("target").to_str().unwrap().to_owned();
        let label = format!("{colour} {locale}");
        let args = vec![base, DEMO_KEY.to_owned(), label, locale.to_owned(), shots];
        run_node("tests/e2e/a11y.mjs", args).await;
    }
    for locale in ["en", "ar", "ja"] {
        assert!(
            in_crate(&format!("target/form-{locale}.png")).exists(),
            "{locale}"
        );
    }
}
