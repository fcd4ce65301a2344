//! Invite emails through a real HTTP relay standing in for the platform's mail service.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_every_backend;
use invitetomedia::tokens::random_id;

async fn app_with_relay(url: &str) -> TestApp {
    let extra = format!("{}timeout_ms = 300\n", relay_toml(url));
    spawn_with(Backend::Memory, &extra).await
}

fn email_body(language: &str) -> Value {
    let mut body = invite_body();
    merge(
        &mut body,
        json!({ "send_email": true, "language": language, "media": { "title": "Seminar <b>&</b>" } }),
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_the_exact_payload_with_the_bearer_token() {
    let (relay, url) = start_relay(&[]).await;
    let app = app_with_relay(&url).await;
    let reply = app.create(&email_body("fr-CA")).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["email"], json!({ "status": "sent" }));
    let link = reply.body["url"].as_str().unwrap();

    let received = relay.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (auth, payload) = &received[0];
    assert_eq!(auth, "Bearer relay-token");
    let keys: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["from", "html", "subject", "text", "to"]);
    assert_eq!(payload["from"], "Invitations <invites@demo.test>");
    assert_eq!(
        payload["to"],
        json!([{ "email": "ada@example.com", "name": "Ada Lovelace" }])
    );
    assert_eq!(
        payload["subject"],
        "Prof One vous invite à Seminar <b>&</b>"
    );
    let html = payload["html"].as_str().unwrap();
    assert!(html.contains("Seminar &lt;b&gt;&amp;&lt;/b&gt;"), "{html}");
    assert!(html.contains("lang=\"fr\""));
    let text = payload["text"].as_str().unwrap();
    assert!(
        text.contains(link),
        "the text body carries the link: {text}"
    );
    assert!(text.contains("« Seminar <b>&</b> »"), "{text}");
    assert!(text.contains(" UTC"), "{text}");

    let metrics = app.get_text("/metrics").await.1;
    assert!(
        metrics.contains("invitetomedia_emails_total{tenant=\"demo\",outcome=\"sent\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_server_errors_then_succeeds() {
    let (relay, url) = start_relay(&[Act::Status(500), Act::Status(503)]).await;
    let app = app_with_relay(&url).await;
    let reply = app.create(&email_body("en")).await;
    assert_eq!(reply.body["email"]["status"], "sent");
    assert_eq!(relay.received.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_three_tries_and_keeps_the_link() {
    let (relay, url) = start_relay(&[Act::Status(500); 10]).await;
    let app = app_with_relay(&url).await;
    let reply = app.create(&email_body("en")).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body["email"]["status"], "failed");
    let detail = reply.body["email"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("500") && detail.contains("3 tries"),
        "{detail}"
    );
    assert_eq!(relay.received.lock().unwrap().len(), 3, "no retry storm");
    // The link works although the email failed.
    let token = reply.body["token"].as_str().unwrap();
    assert_eq!(app.redeem_as(token, &device(1)).await.status, 200);
    let metrics = app.get_text("/metrics").await.1;
    assert!(
        metrics.contains("invitetomedia_emails_total{tenant=\"demo\",outcome=\"failed\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_relay_is_bounded_by_the_timeout() {
    // The relay hangs far longer than the test client waits: an answer proves the bound.
    let (relay, url) = start_relay(&[Act::Hang(600_000); 3]).await;
    let app = app_with_relay(&url).await;
    let reply = app.create(&email_body("en")).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body["email"]["status"], "failed");
    assert!(
        reply.body["email"]["detail"]
            .as_str()
            .unwrap()
            .contains("within 300 ms"),
        "{:?}",
        reply.body
    );
    assert_eq!(relay.received.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_and_refusals_are_not_followed_or_retried() {
    let (relay, url) = start_relay(&[Act::Redirect]).await;
    let app = app_with_relay(&url).await;
    let reply = app.create(&email_body("en")).await;
    assert_eq!(reply.body["email"]["status"], "failed");
    assert!(
        reply.body["email"]["detail"]
            .as_str()
            .unwrap()
            .contains("302")
    );
    assert_eq!(relay.received.lock().unwrap().len(), 1);
    assert_eq!(
        *relay.redirected_hits.lock().unwrap(),
        0,
        "the redirect was not followed"
    );

    let (relay, url) = start_relay(&[Act::Status(400)]).await;
    let app = app_with_relay(&url).await;
    let reply = app.create(&email_body("en")).await;
    assert!(
        reply.body["email"]["detail"]
            .as_str()
            .unwrap()
            .contains("400")
    );
    assert_eq!(
        relay.received.lock().unwrap().len(),
        1,
        "a refusal is final"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_relay_fails_the_email_not_the_invite() {
    let app = app_with_relay(&format!("http://127.0.0.1:{}/send", free_port())).await;
    let reply = app.create(&email_body("en")).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body["email"]["status"], "failed");
    assert!(
        reply.body["email"]["detail"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{:?}",
        reply.body
    );
}

#[tokio::test]
async fn the_log_transport_sends() {
    let app = spawn_app().await;
    let reply = app.create(&email_body("de")).await;
    assert_eq!(reply.body["email"], json!({ "status": "sent" }));
}

#[tokio::test]
async fn a_missing_or_broken_template_stops_start_up() {
    // A file in templates_dir replaces the compiled-in template of its name, broken or not.
    let dir = std::env::temp_dir().join(format!("itm-tpl-{}", &random_id()[..8]));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    std::fs::write(dir.join("invite.toml"), "templateName = \"other\"\n").unwrap();
    let broken = format!("[email]\ntemplates_dir = \"{}\"", dir.display());
    for (extra, needle) in [
        (
            "[tenants.demo.invitetomedia]\ninviteEmailTemplate = \"nosuch\"",
            "nosuch.toml",
        ),
        (broken.as_str(), "invite.toml"),
    ] {
        let err = startup_error(extra).await;
        assert!(
            err.contains("tenants.demo.invitetomedia.inviteEmailTemplate") && err.contains(needle),
            "{err}"
        );
    }
}

#[tokio::test]
async fn the_committed_templates_are_compiled_in() {
    // A templates_dir without invite.toml: the compiled-in one sends.
    let app = spawn_with(Backend::Memory, "[email]\ntemplates_dir = \"tests\"").await;
    let reply = app.create(&email_body("fr")).await;
    assert_eq!(reply.body["email"], json!({ "status": "sent" }));
}

on_every_backend!(an_idempotent_create_answers_the_same_link);

/// A retried create with its `Idempotency-Key` is the same link: same id and times, a token that
/// shares its uses; the same key with another body is 409; a key is checked.
async fn an_idempotent_create_answers_the_same_link(backend: Backend) {
    let app = spawn_with(backend, "").await;
    let key = format!("create-{}", random_id());
    let body = invite_body();
    let first = app.create_idempotent(&key, &body).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    // The same content with its keys in another order is the same request.
    let reordered: Value = serde_json::from_str(
        &serde_json::to_string(&json!({
            "invitee": body["invitee"], "inviter": body["inviter"], "media": body["media"]
        }))
        .unwrap(),
    )
    .unwrap();
    let again = app.create_idempotent(&key, &reordered).await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    for field in ["id", "starts_at", "expires_at", "media_id", "max_uses"] {
        assert!(!first.body[field].is_null(), "{field}");
        assert_eq!(first.body[field], again.body[field], "{field}");
    }
    // Two tokens, one link: they share the single use.
    let (a, b) = (
        first.body["token"].as_str().unwrap(),
        again.body["token"].as_str().unwrap(),
    );
    assert_eq!(app.redeem_as(a, &device(1)).await.status, 200);
    assert_eq!(app.redeem_as(b, &device(2)).await.code(), "exhausted");
    assert_eq!(app.redeem_as(b, &device(1)).await.body["reentry"], true);

    let mut other = body.clone();
    other["media"]["id"] = json!("1_other");
    let conflict = app.create_idempotent(&key, &other).await;
    assert_eq!(
        (conflict.status, conflict.code()),
        (409, "idempotency_conflict")
    );
    let fresh = app.create_idempotent(&format!("{key}-2"), &body).await;
    assert_ne!(fresh.body["id"], first.body["id"]);
    let without = app.create(&body).await;
    assert_ne!(without.body["id"], first.body["id"]);
    for bad in ["has space", &"k".repeat(256), "caf\u{e9}"] {
        let refused = app.create_idempotent(bad, &body).await;
        assert_eq!(
            (refused.status, refused.code()),
            (422, "invalid_request"),
            "{bad:?}"
        );
        assert_eq!(refused.body["errors"][0]["field"], "Idempotency-Key");
    }
}

/// Twenty creates with one key and `send_email`, at once, across three replicas sharing Redis
/// (or the Cluster): one link, exactly one message at the relay.
async fn one_email_for_concurrent_idempotent_creates(backend: Backend) {
    let (relay, url) = start_relay(&[]).await;
    let prefix = format!("d{}", &random_id()[..10]);
    let redis_url = if backend == Backend::Redis {
        shared_redis().url()
    } else {
        "redis://127.0.0.1:1".to_owned()
    };
    let extra = format!(
        "[email]\ntransport = \"http\"\nfrom = \"Invitations <invites@demo.test>\"\n[email.http]\nurl = \"{url}\"\ntimeout_ms = 5000\n"
    );
    let toml = test_toml(backend, &redis_url, &prefix, &extra);
    let replicas = [
        spawn_configured(&toml).await,
        spawn_configured(&toml).await,
        spawn_configured(&toml).await,
    ];
    let key = format!("email-{}", random_id());
    let body = email_body("en");
    let replies = futures_util::future::join_all(
        (0..20).map(|i| replicas[i % 3].create_idempotent(&key, &body)),
    )
    .await;
    let ids: std::collections::BTreeSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{:?}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one link");
    assert_eq!(relay.received.lock().unwrap().len(), 1, "one email");
    // Once the first request is done, a repeat reports its email as sent.
    let later = replicas[0].create_idempotent(&key, &body).await;
    assert_eq!(later.body["email"], json!({ "status": "sent" }));
    assert_eq!(relay.received.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_email_for_concurrent_idempotent_creates_on_redis() {
    one_email_for_concurrent_idempotent_creates(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_email_for_concurrent_idempotent_creates_on_the_cluster() {
    one_email_for_concurrent_idempotent_creates(Backend::Cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_create_needs_the_store() {
    let mut redis = RedisServer::start();
    let prefix = format!("o{}", &random_id()[..8]);
    let app = spawn_configured(&test_toml(Backend::Redis, &redis.url(), &prefix, "")).await;
    redis.stop();
    let refused = app.create_idempotent("k-down", &invite_body()).await;
    assert_eq!((refused.status, refused.code()), (503, "store_unavailable"));
    assert!(refused.header("retry-after").is_some());
    // Without the header, creating needs no store.
    assert_eq!(app.create(&invite_body()).await.status, 201);
}
