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
    })
    .map_err(|e| e.to_string())
}

#[test]
fn embedded_defaults_load() {
    let settings = load("development", "", &[]).unwrap();
    assert_eq!(settings.server.port, 8080);
    let demo = &settings.tenants["demo"];
    let module = demo.module_settings("demo").unwrap();
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
    let module = settings.tenants["demo"].module_settings("demo").unwrap();
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

#[test]
fn production_refuses_ephemeral_keys_and_the_demo_key() {
    let err = load("production", "", &[]).unwrap_err();
    assert!(err.contains("`keys`"), "{err}");
    let keys = r#"
[keys]
invite = [ { kid = "i1", alg = "HS256", secret = "0123456789abcdef0123456789abcdef" } ]
grant = [ { kid = "g1", alg = "EdDSA", private_key_file = "/nonexistent.pem" } ]
"#;
    // production.toml removes the demo key, so this loads.
    load("production", keys, &[]).unwrap();
    let with_demo = format!(
        "{keys}\n[tenants.demo]\napi_keys = [\"{}\"]",
        invitetomedia::settings::DEMO_API_KEY_HASH
    );
    let err = load("production", &with_demo, &[]).unwrap_err();
    assert!(err.contains("demo API key"), "{err}");
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
            "inviteEmailTemplate": "", "RestrictNewUserDomains": ["sso.example"], "AllowOpenLinks": true
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
    let manifest = std::fs::read_to_string("k8s/base/configmap.yaml").unwrap();
    let block = manifest
        .split("config.toml: |\n")
        .nth(1)
        .expect("the ConfigMap carries config.toml");
    let toml: String = block
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let settings = load("production", &toml, &[]).unwrap();
    assert_eq!(settings.server.host, "0.0.0.0");
    assert!(
        settings.tenants["acme"]
            .module_settings("acme")
            .unwrap()
            .enable
    );
    assert!(
        !settings.tenants["demo"]
            .module_settings("demo")
            .unwrap()
            .enable,
        "production.toml turns the demo off"
    );
}
