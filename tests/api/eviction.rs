//! Redis's eviction policy (every key of the service has a TTL, so any policy but `noeviction`
//! can evict use counters and revocation markers): production refuses to start, development
//! warns, and a policy that cannot be read leaves `invitetomedia_store_eviction_policy_verified`
//! at 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// A production configuration of the real binary on `redis_url`, port `port`.
fn production_config(redis_url: &str, port: u16) -> String {
    production_toml(
        None,
        &format!("port = {port}"),
        &format!("backend = \"redis\"\nredis_url = \"{redis_url}\"\nkey_prefix = \"ev{port}\""),
    )
}

/// The real binary started with `APP_ENV=production` and `config`, its standard error piped.
fn start_production(config: &str) -> (std::process::Child, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "itm-ev-{}",
        &invitetomedia::tokens::random_id()[..8]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    std::fs::write(&file, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_invitetomedia"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_ENV", "production")
        .env("INVITETOMEDIA_CONFIG", &file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, dir)
}

/// Runs the real binary in production until it exits (at most 20 s); returns whether it
/// succeeded and its standard error.
fn run_production(config: &str) -> (bool, String) {
    let (mut child, dir) = start_production(config);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the service did not stop on an evicting Redis");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (status.success(), stderr)
}

#[test]
fn production_refuses_every_evicting_policy_and_names_it() {
    for policy in ["volatile-lru", "allkeys-lru", "volatile-ttl"] {
        let redis = RedisServer::start_with(&["--maxmemory-policy", policy]);
        let (ok, stderr) = run_production(&production_config(&redis.url(), free_port()));
        assert!(!ok, "{policy}: started");
        assert!(
            stderr.contains(&format!("maxmemory-policy is {policy}")),
            "{policy}: {stderr}"
        );
    }
}

async fn verified_gauge(app: &TestApp) -> String {
    let metrics = app.get_text("/metrics").await.1;
    metrics
        .lines()
        .find(|l| l.starts_with("invitetomedia_store_eviction_policy_verified "))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn development_starts_and_reports_what_it_could_verify() {
    let cases = [
        (vec!["--maxmemory-policy", "volatile-lru"], "0"),
        (vec!["--maxmemory-policy", "noeviction"], "1"),
        // Managed Redis often disables CONFIG: the policy cannot be read.
        (
            vec![
                "--maxmemory-policy",
                "noeviction",
                "--rename-command",
                "CONFIG",
                "",
            ],
            "0",
        ),
    ];
    for (args, verified) in cases {
        let redis = RedisServer::start_with(&args);
        let app = spawn_configured(&test_toml(Backend::Redis, &redis.url(), "ev", "")).await;
        assert_eq!(
            verified_gauge(&app).await,
            format!("invitetomedia_store_eviction_policy_verified {verified}"),
            "{args:?}"
        );
        let token = app.create_token(serde_json::json!({})).await;
        assert_eq!(
            app.redeem_as(&token, &device(1)).await.status,
            200,
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn production_starts_when_the_policy_cannot_be_read() {
    let redis = RedisServer::start_with(&[
        "--maxmemory-policy",
        "noeviction",
        "--rename-command",
        "CONFIG",
        "",
    ]);
    let port = free_port();
    let (mut child, dir) = start_production(&production_config(&redis.url(), port));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        if let Ok(r) = client.get(format!("{base}/metrics")).send().await {
            break r.text().await.unwrap();
        }
        assert!(child.try_wait().unwrap().is_none(), "the service stopped");
        assert!(Instant::now() < deadline, "the service did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        metrics.contains("invitetomedia_store_eviction_policy_verified 0\n"),
        "{metrics}"
    );
}
