//! Configuration: layers, case-insensitive overrides, errors naming the key, and the settings
//! endpoint.

use invitetomedia::settings::{LoadOptions, Settings};
use serde_json::json;

use crate::helpers::*;

fn load(app_env: &str, toml: &str, env: &[(&str, &str)]) -> Result<Settings, String> {
    Settings::load(&LoadOptions {
        config_dir: "config".into(),
        app_env: app_env.into(),
        extra_file: None,
        extra_toml: Some(toml.to_owned()),
        env: Some(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        tenants_dir: None,
    })
    .map_err(|e| e.to_string())
}

#[test]
fn embedded_defaults_load() {
    let settings = load("development", "", &[]).unwrap();
    assert_eq!(settings.server.port, 8080);
    let demo = &settings.tenants["demo"];
    let module = &demo.invitetomedia;
    assert!(module.enable);
    assert_eq!(module.link_duration, 1440);
    assert_eq!(module.invite_email_template, "invite");
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(settings.server.worker_count(), 2 * cores);
    let one = load("development", "[server]\nworkers = 1", &[]).unwrap();
    assert_eq!(one.server.worker_count(), 1);
}

#[test]
fn environment_overrides_match_keys_case_insensitively() {
    let env = [
        ("INVITETOMEDIA__SERVER__PORT", "9000"),
        (
            "INVITETOMEDIA__TENANTS__DEMO__INVITETOMEDIA__LINKDURATION",
            "60",
        ),
        (
            "INVITETOMEDIA__TENANTS__DEMO__INVITETOMEDIA__LINKREUSABILITY",
            "-1",
        ),
        (
            "INVITETOMEDIA__TENANTS__DEMO__INVITETOMEDIA__ENABLE",
            "false",
        ),
        (
            "INVITETOMEDIA__TENANTS__DEMO__INVITETOMEDIA__RESTRICTNEWUSERDOMAINS",
            "a.edu, b.edu",
        ),
        ("INVITETOMEDIA_CONFIG_IGNORED", "x"),
    ];
    let settings = load(
        "development",
        "[tenants.demo.invitetomedia]\nLinkDuration = 120",
        &env,
    )
    .unwrap();
    assert_eq!(settings.server.port, 9000);
    let module = &settings.tenants["demo"].invitetomedia;
    assert_eq!(
        module.link_duration, 60,
        "the environment wins over every file"
    );
    assert_eq!(module.link_reusability.as_i64(), -1);
    assert!(!module.enable);
    let domains: Vec<&str> = module
        .restrict_new_user_domains
        .iter()
        .map(|d| d.as_str())
        .collect();
    assert_eq!(domains, ["a.edu", "b.edu"]);
}

#[test]
fn configuration_errors_name_the_key() {
    let cases = [
        (
            "[tenants.demo.invitetomedia]\nLinkDuration = 0",
            "tenants.demo.invitetomedia.LinkDuration",
        ),
        (
            "[tenants.demo.invitetomedia]\nLinkDuration = 525601",
            "tenants.demo.invitetomedia.LinkDuration",
        ),
        (
            "[tenants.demo.invitetomedia]\nLinkReusability = 0",
            "tenants.demo.invitetomedia.LinkReusability",
        ),
        (
            "[tenants.demo.invitetomedia]\nLinkReusability = -2",
            "tenants.demo.invitetomedia.LinkReusability",
        ),
        (
            "[tenants.demo.invitetomedia]\nAllowedUsers = \"viewerRole\"",
            "tenants.demo.invitetomedia.AllowedUsers",
        ),
        (
            "[tenants.demo.invitetomedia]\nAllowedUsers = { users = [] }",
            "tenants.demo.invitetomedia.AllowedUsers",
        ),
        (
            "[tenants.demo.invitetomedia]\nRestrictNewUserDomains = [\"not a domain\"]",
            "tenants.demo.invitetomedia.RestrictNewUserDomains",
        ),
        (
            "[tenants.demo]\napi_keys = [\"plaintext-key\"]",
            "tenants.demo.api_keys",
        ),
        (
            "[tenants.demo]\naccept_url = \"javascript:alert(1)\"",
            "tenants.demo.accept_url",
        ),
        ("[tenants.Other]\nname = \"x\"", "tenants.Other"),
        (
            "[server]\npublic_base_url = \"not a url\"",
            "server.public_base_url",
        ),
        (
            "[store]\nbackend = \"redis\"\nredis_url = \"http://x\"",
            "store.redis_url",
        ),
        ("[store]\nkey_prefix = \"{bad}\"", "store.key_prefix"),
        ("[store]\ntimeout_ms = 0", "store.timeout_ms"),
        ("[server]\nworkers = 0", "server.workers"),
        ("[email]\ntransport = \"http\"", "email.http.url"),
        (
            "[server.rate_limit]\nrequests_per_second = 0\nburst = 5",
            "server.rate_limit.requests_per_second",
        ),
        (
            "[server.rate_limit]\nrequests_per_second = 5\nburst = 0",
            "server.rate_limit.burst",
        ),
        (
            "[server.rate_limit]\nrequests_per_second = 5\nburst = 5\ntrusted_proxies = [\"10.0.0.0/33\"]",
            "server.rate_limit.trusted_proxies",
        ),
        (
            "[server]\ncors_allowed_origins = [\"https://app.example/path\"]",
            "server.cors_allowed_origins",
        ),
        (
            "[server]\nshutdown_timeout_seconds = 3601",
            "server.shutdown_timeout_seconds",
        ),
        (
            "[server]\ndrain_delay_seconds = 301",
            "server.drain_delay_seconds",
        ),
        (
            "[server]\nyield_after_us = 1000001",
            "server.yield_after_us",
        ),
        (
            "[security]\nmax_email_attempts = 0",
            "security.max_email_attempts",
        ),
        (
            "[security]\nmax_email_attempts = 101",
            "security.max_email_attempts",
        ),
        ("[security]\nunknown = 1", "unknown"),
        (
            "[tenants.other]\nname = \"Other\"\naccept_url = \"https://o.example/accept\"\ngrant_audience = \"demo-platform\"",
            "tenants.other.grant_audience",
        ),
        (
            "[server]\npublic_base_url = \"https://user:pw@invites.example\"",
            "server.public_base_url",
        ),
    ];
    for (toml, key) in cases {
        let err = load("development", toml, &[]).unwrap_err();
        assert!(err.contains(&format!("`{key}`")), "{toml}: {err}");
    }
    let err = load("development", "[server]\nport = \"eighty\"", &[]).unwrap_err();
    assert!(err.contains("server.port"), "{err}");
    let err = load("development", "[server]\nnonsense = 1", &[]).unwrap_err();
    assert!(err.contains("nonsense"), "{err}");
}

/// Builds the state of a configuration: keys, templates, store.
fn build(
    settings: Settings,
) -> Result<invitetomedia::state::AppState, invitetomedia::settings::ConfigError> {
    let configured_tenants_dir = settings.tenants_dir.clone();
    invitetomedia::startup::build_state(invitetomedia::settings::Loaded {
        settings,
        watched: Default::default(),
        configured_tenants_dir,
    })
}

/// Loads and builds (keys included) a production configuration with these environment
/// overrides and, if given, this invite secret.
fn production(env: &[(&str, &str)], secret: Option<&str>) -> Result<Settings, String> {
    let settings = load("production", &production_toml(secret, "", ""), env)?;
    build(settings.clone()).map_err(|e| e.to_string())?;
    Ok(settings)
}

/// The HS256 placeholder of k8s/secret.example.yaml, as an operator would copy it.
fn example_secret_placeholder() -> String {
    let manifest = std::fs::read_to_string("k8s/secret.example.yaml").unwrap();
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("invite-i1:"))
        .expect("the example Secret has invite-i1")
        .trim()
        .to_owned()
}

#[test]
fn production_refuses_what_would_hurt_a_deployment() {
    let settings = production(&[], None).unwrap();
    assert!(
        !settings.tenants.contains_key("demo"),
        "production has no demo tenant"
    );
    let err = load(
        "production",
        "[server]\npublic_base_url = \"https://invites.example.test\"",
        &[],
    )
    .unwrap_err();
    assert!(err.contains("`keys`"), "ephemeral keys: {err}");
    let placeholder = example_secret_placeholder();
    let demo_key = invitetomedia::settings::DEMO_API_KEY_HASH;
    // (environment overrides, invite secret, the key the error names)
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
    let cases: [Case; 6] = [
        (
            &[(
                "INVITETOMEDIA__SERVER__PUBLIC_BASE_URL",
                "http://invites.example.test",
            )],
            None,
            "server.public_base_url",
        ),
        (
            &[(
                "INVITETOMEDIA__TENANTS__ACME__ACCEPT_URL",
                "http://platform.acme.test/accept",
            )],
            None,
            "tenants.acme.accept_url",
        ),
        (
            &[
                ("INVITETOMEDIA__EMAIL__TRANSPORT", "http"),
                (
                    "INVITETOMEDIA__EMAIL__HTTP__URL",
                    "http://relay.example.test/send",
                ),
            ],
            None,
            "email.http.url",
        ),
        (
            &[("INVITETOMEDIA__TENANTS__ACME__API_KEYS", demo_key)],
            None,
            "tenants.acme.api_keys",
        ),
        (&[], Some(placeholder.as_str()), "keys.invite[0].secret"),
        (
            &[],
            Some("Password-0123456789abcdef0123456789abcdef"),
            "keys.invite[0].secret",
        ),
    ];
    for (env, secret, key) in cases {
        let err = production(env, secret).unwrap_err();
        assert!(
            err.contains(&format!("`{key}`")),
            "{env:?} {secret:?}: {err}"
        );
    }
    // Development takes what production refuses.
    let dev = load(
        "development",
        &production_toml(Some(&placeholder), "", ""),
        &[],
    )
    .unwrap();
    build(dev).unwrap();
}

#[test]
fn app_env_must_be_known() {
    for env in ["staging", "prod", "Production", ""] {
        let err = load(env, "", &[]).unwrap_err();
        assert!(err.contains("`APP_ENV`"), "{env:?}: {err}");
    }
    for env in ["development", "test"] {
        load(env, "", &[]).unwrap();
    }
}

#[test]
fn urls_print_without_their_credentials() {
    let settings = load(
        "development",
        r#"
[store]
redis_url = "redis://:hunter2-redis@redis.internal:6379/0"
cluster_nodes = ["redis://node-user:hunter2-node@10.0.0.1:7000", "redis://10.0.0.2:7000"]
[email.http]
url = "https://relay-user:hunter2-relay@relay.example.test/send"
bearer_token = "hunter2-bearer"
"#,
        &[],
    )
    .unwrap();
    let debug = format!("{settings:?}");
    let json = serde_json::to_string(&settings).unwrap();
    for printed in [&debug, &json] {
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("redis://[redacted]@redis.internal:6379/0"),
            "{printed}"
        );
        assert!(
            printed.contains("redis://[redacted]@10.0.0.1:7000"),
            "{printed}"
        );
        assert!(printed.contains("redis://10.0.0.2:7000"), "{printed}");
    }
    assert_eq!(
        settings.store.redis_url.expose(),
        "redis://:hunter2-redis@redis.internal:6379/0",
        "the service itself uses the URL as given"
    );
}

#[tokio::test]
async fn settings_endpoint_reports_the_effective_table() {
    let app = spawn_app().await;
    let reply = app.get("/v1/settings", Some(ACME_KEY)).await;
    assert_eq!(reply.status, 200);
    let b = &reply.body;
    assert_eq!(b["tenant"], "acme");
    assert_eq!(
        b["invitetomedia"],
        json!({
            "enable": true, "LinkDuration": 60, "LinkReusability": -1,
            "AllowedUsers": { "users": ["alice"], "groups": ["faculty"] },
            "inviteEmailTemplate": "", "RestrictNewUserDomains": ["sso.example"], "AllowOpenLinks": true,
            "RequireEmailCode": false, "codeEmailTemplate": "code"
        })
    );
    assert_eq!(b["email_enabled"], false);
    assert_eq!(
        b["roles"]["room"],
        json!(["viewer", "speaker", "moderator"])
    );
    assert_eq!(b["roles"]["video"], json!(["viewer"]));
    assert_eq!(
        app.get("/v1/settings", Some(DEMO_KEY)).await.body["email_enabled"],
        true
    );
    assert_eq!(app.get("/v1/settings", None).await.status, 401);
}

#[test]
fn the_kubernetes_config_map_is_a_valid_production_configuration() {
    // The file a ConfigMap key projects: the block under `<key>: |`, unindented.
    let projected = |manifest: &str, key: &str| -> String {
        let manifest = std::fs::read_to_string(manifest).unwrap();
        let block = manifest
            .split(&format!("{key}: |\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("the ConfigMap carries {key}"));
        block
            .lines()
            .take_while(|l| l.is_empty() || l.starts_with("    "))
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let toml = projected("k8s/base/configmap.yaml", "config.toml");
    let tenants = std::env::temp_dir().join(format!("itm-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&tenants).unwrap();
    let _cleanup = TempDir(tenants.clone());
    std::fs::write(
        tenants.join("acme.toml"),
        projected("k8s/base/tenants.yaml", "acme.toml"),
    )
    .unwrap();
    let dir = tenants.display().to_string();
    let settings = load(
        "production",
        &toml,
        &[("INVITETOMEDIA__TENANTS_DIR", dir.as_str())],
    )
    .unwrap();
    assert_eq!(settings.server.host, "0.0.0.0");
    assert!(settings.tenants["acme"].invitetomedia.enable);
    assert!(
        !settings.tenants.contains_key("demo"),
        "production has no demo tenant"
    );
}

#[test]
fn a_syntax_error_never_quotes_the_line() {
    // The line may hold a secret: the error gives its position and the parser's words only.
    let err = load(
        "development",
        "[keys]\ninvite = [ { kid = \"i1\", alg = \"HS256\", secret = \"do-not-print-me-0123456789abcdef",
        &[],
    )
    .unwrap_err();
    assert!(!err.contains("do-not-print-me"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");
}

#[test]
fn a_bad_secret_in_a_file_names_the_file() {
    let dir = std::env::temp_dir().join(format!("itm-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    let file = dir.join("short");
    std::fs::write(&file, "too-short").unwrap();
    let toml = format!(
        "[keys]\ninvite = [ {{ kid = \"i1\", alg = \"HS256\", secret_file = \"{}\" }} ]",
        file.display()
    );
    let settings = load("development", &toml, &[]).unwrap();
    let err = build(settings).unwrap_err();
    assert_eq!(err.key, "keys.invite[0].secret_file");
    assert_eq!(
        err.file.as_deref(),
        Some(file.display().to_string().as_str())
    );
    assert!(!err.to_string().contains("too-short"));
}
