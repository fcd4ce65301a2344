//! What the real binary writes to its log: never a token, a key or a secret, and every line
//! up to the last.

use std::process::Command;

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_ids_not_tokens_or_secrets() {
    let redis = RedisServer::start();
    let port = free_port();
    let toml = test_toml(Backend::Redis, &redis.url(), "l", "");
    let mut bin = spawn_binary(&toml, port, true).await;
    // Create with an email (log transport prints the message), open, join, redeem, revoke.
    let mut body = invite_body();
    body["send_email"] = json!(true);
    let created = bin.post("/v1/invites", Some(DEMO_KEY), &body).await.body;
    let token = created["token"].as_str().unwrap().to_owned();
    let jti = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["email"]["status"], "sent");
    bin.client
        .get(format!("{}/i/{token}", bin.base))
        .send()
        .await
        .unwrap();
    let redeem = json!({ "token": token, "email": "ada@example.com", "device_id": device(1) });
    let redeemed = bin.post("/v1/redeem", None, &redeem).await.body;
    let grant = redeemed["grant"].as_str().unwrap().to_owned();
    let forged = json!({ "token": format!("{token}x"), "email": "a@b.co" });
    bin.post("/v1/redeem", None, &forged).await;
    bin.post(
        "/v1/invites/revoke",
        Some(DEMO_KEY),
        &json!({ "token": token }),
    )
    .await;

    let pid = bin.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    bin.child.wait().unwrap();
    let text = std::fs::read_to_string(&bin.log).unwrap();
    assert!(text.contains(&jti), "the invite id is logged:\n{text}");
    assert!(text.contains("invite redeemed"), "{text}");
    // Lines are written by a thread of their own; the last one, logged as the process ends,
    // is written out before it exits.
    let last = text.lines().last().unwrap_or_default();
    assert!(last.contains("stopped"), "last line: {last}");
    assert!(
        text.contains("invite email") && text.contains("a***@example.com"),
        "the log transport logged the message, its address masked"
    );
    // Whole values: a short one ("Ada") could occur by chance in a random id.
    for personal in ["ada@example.com", "Lovelace", "Weekly seminar"] {
        assert!(!text.contains(personal), "{personal} appears in the log");
    }
    let signature = token.rsplit('.').next().unwrap();
    for (what, secret) in [
        ("the token", token.as_str()),
        ("the token's signature", signature),
        ("the grant", grant.as_str()),
        ("the API key", DEMO_KEY),
        ("the invite secret", INVITE_SECRET),
    ] {
        assert!(!text.contains(secret), "{what} appears in the log");
    }
}
