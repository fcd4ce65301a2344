//! Live administration: the binary from any directory, `tenants_dir`, reload on file changes
//! (a Kubernetes volume's `..data` swap included) and on SIGHUP, what a failed reload leaves,
//! restart-only keys, `revision`, three replicas, and one whole configuration per request.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use invitetomedia::reload::{Reloaded, reload};
use invitetomedia::state::hash_api_key;
use invitetomedia::tokens::random_id;
use serde_json::{Value, json};

use crate::helpers::*;

const OLD_KEY: &str = "acme-reload-key-1";
const NEW_KEY: &str = "acme-reload-key-2";
const BETA_KEY: &str = "beta-reload-key";

/// A deployment's files: `config.toml`, `tenants/`, `keys/`, `templates/`.
struct Site {
    dir: PathBuf,
    _cleanup: TempDir,
}

impl Site {
    fn new(store: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("itm-site-{}", &random_id()[..10]));
        for sub in ["tenants", "keys", "templates", "run"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let site = Self {
            dir: dir.clone(),
            _cleanup: TempDir(dir),
        };
        write_atomic(&site.path("keys/i1"), INVITE_SECRET);
        write_atomic(
            &site.path("keys/g1.pem"),
            &invitetomedia::tokens::keyring::generate("EdDSA").unwrap(),
        );
        site.write_config(store, &["i1"], "");
        site.write_tenant(
            "acme",
            &acme_toml(OLD_KEY, "enable = true\nLinkDuration = 60"),
        );
        site
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// `config.toml` with these invite key files (the first signs) and extra tables.
    fn write_config(&self, store: &str, invite_kids: &[&str], extra: &str) {
        self.write_config_at("https://invites.example.test", store, invite_kids, extra);
    }

    /// [`Site::write_config`] with this `server.public_base_url`.
    fn write_config_at(&self, base: &str, store: &str, invite_kids: &[&str], extra: &str) {
        let keys: Vec<String> = invite_kids
            .iter()
            .map(|kid| {
                format!(
                    "{{ kid = \"{kid}\", alg = \"HS256\", secret_file = \"{}\" }}",
                    self.path(&format!("keys/{kid}")).display()
                )
            })
            .collect();
        let text = format!(
            r#"tenants_dir = "{tenants}"
[server]
public_base_url = "{base}"
[store]
{store}
timeout_ms = 2000
[keys]
invite = [ {keys} ]
grant = [ {{ kid = "g1", alg = "EdDSA", private_key_file = "{grant}" }} ]
[email]
templates_dir = "{templates}"
{extra}
"#,
            tenants = self.path("tenants").display(),
            keys = keys.join(", "),
            grant = self.path("keys/g1.pem").display(),
            templates = self.path("templates").display(),
        );
        write_atomic(&self.path("config.toml"), &text);
    }

    fn write_tenant(&self, id: &str, text: &str) {
        write_atomic(&self.path(&format!("tenants/{id}.toml")), text);
    }

    /// The binary, started in the site's `run/` directory (no `config/` there: the compiled-in
    /// defaults apply) with `config.toml` as `INVITETOMEDIA_CONFIG`.
    async fn start(&self) -> Binary {
        let port = free_port();
        let logs = self.path(&format!("run/{port}"));
        std::fs::create_dir_all(&logs).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_invitetomedia"));
        command
            .current_dir(self.path("run"))
            .env("INVITETOMEDIA_CONFIG", self.path("config.toml"));
        start_binary(command, logs, port, &Overrides::new(), true).await
    }
}

/// Writes a file the way careful tools do: a temporary file renamed over the old one, so a
/// reload never reads half a file.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension(format!("tmp-{}", &random_id()[..6]));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn acme_toml(key: &str, module: &str) -> String {
    format!(
        r#"name = "Acme"
api_keys = ["{hash}"]
accept_url = "https://platform.acme.test/accept"
grant_audience = "acme-platform"
[invitetomedia]
LinkReusability = -1
{module}
"#,
        hash = hash_api_key(key)
    )
}

fn beta_toml() -> String {
    format!(
        r#"name = "Beta"
api_keys = ["{}"]
accept_url = "https://platform.beta.test/accept"
grant_audience = "beta-platform"
[invitetomedia]
enable = true
"#,
        hash_api_key(BETA_KEY)
    )
}

async fn create(bin: &Binary, key: &str) -> Reply {
    bin.post("/v1/invites", Some(key), &invite_body()).await
}

async fn token(bin: &Binary, key: &str) -> String {
    let created = create(bin, key).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["token"].as_str().unwrap().to_owned()
}

async fn redeem(bin: &Binary, token: &str) -> Reply {
    let body = json!({ "token": token, "email": "ada@example.com", "device_id": device(1) });
    bin.post("/v1/redeem", None, &body).await
}

async fn settings(bin: &Binary, key: &str) -> Value {
    let reply = bin.get("/v1/settings", Some(key)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

async fn reloads(bin: &Binary, outcome: &str) -> f64 {
    bin.metric(&format!(
        "invitetomedia_config_reloads_total{{outcome=\"{outcome}\"}}"
    ))
    .await
    .unwrap_or(-1.0)
}

/// The `kid` in a token's header.
fn kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&bytes).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn sighup(bin: &Binary) {
    let status = Command::new("kill")
        .args(["-HUP", &bin.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_from_an_empty_directory() {
    let dir = std::env::temp_dir().join(format!("itm-empty-{}", &random_id()[..10]));
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("invitetomedia");
    std::fs::copy(env!("CARGO_BIN_EXE_invitetomedia"), &binary).unwrap();
    let mut command = Command::new(&binary);
    command.current_dir(&dir).env_remove("INVITETOMEDIA_CONFIG");
    let port = free_port();
    let bin = start_binary(command, dir.join("logs"), port, &Overrides::new(), false).await;
    let _cleanup = TempDir(dir);
    let token = token(&bin, DEMO_KEY).await;
    let redeemed = redeem(&bin, &token).await;
    assert_eq!(redeemed.status, 200, "{:?}", redeemed.body);
    assert!(redeemed.body["grant"].as_str().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_edits_reload_tenants_api_keys_settings_and_signing_keys() {
    let site = Site::new("backend = \"memory\"");
    let bin = site.start().await;
    let first = token(&bin, OLD_KEY).await;
    assert_eq!(kid(&first), "i1");
    let acme = settings(&bin, OLD_KEY).await;
    let demo = settings(&bin, DEMO_KEY).await;
    assert_eq!(acme["invitetomedia"]["LinkDuration"], 60);
    assert_eq!(
        bin.metric("invitetomedia_config_generation").await,
        Some(1.0)
    );

    // Module off: redemptions are refused as soon as the edit is seen.
    site.write_tenant(
        "acme",
        &acme_toml(OLD_KEY, "enable = false\nLinkDuration = 60"),
    );
    eventually("enable = false applied", || async {
        redeem(&bin, &first).await.body["code"] == "module_disabled"
    })
    .await;
    let changed = settings(&bin, OLD_KEY).await;
    assert_ne!(changed["revision"], acme["revision"]);
    assert_eq!(settings(&bin, DEMO_KEY).await["revision"], demo["revision"]);
    assert_eq!(
        bin.metric("invitetomedia_config_generation").await,
        Some(2.0)
    );
    assert!(
        bin.metric("invitetomedia_config_last_reload_success_timestamp_seconds")
            .await
            .unwrap()
            > 1.7e9
    );

    // API key rotation: the new key works and the old one stops.
    site.write_tenant(
        "acme",
        &acme_toml(NEW_KEY, "enable = true\nLinkDuration = 60"),
    );
    eventually("the new API key accepted", || async {
        bin.get("/v1/settings", Some(NEW_KEY)).await.status == 200
    })
    .await;
    assert_eq!(bin.get("/v1/settings", Some(OLD_KEY)).await.status, 401);
    assert_eq!(redeem(&bin, &first).await.status, 200);

    // A tenant added and removed by a file.
    site.write_tenant("beta", &beta_toml());
    eventually("tenant beta added", || async {
        create(&bin, BETA_KEY).await.status == 201
    })
    .await;
    std::fs::remove_file(site.path("tenants/beta.toml")).unwrap();
    eventually("tenant beta removed", || async {
        create(&bin, BETA_KEY).await.status == 401
    })
    .await;

    // Signing-key rotation without a restart: a new key signs, the old one still verifies,
    // then the old one is retired.
    write_atomic(
        &site.path("keys/i2"),
        "a-second-invite-hmac-key-0123456789abcdef",
    );
    site.write_config("backend = \"memory\"", &["i2", "i1"], "");
    eventually("the new signing key signs", || async {
        kid(&token(&bin, NEW_KEY).await) == "i2"
    })
    .await;
    assert_eq!(redeem(&bin, &first).await.status, 200);
    site.write_config("backend = \"memory\"", &["i2"], "");
    eventually("the old signing key retired", || async {
        redeem(&bin, &first).await.body["code"] == "invalid_token"
    })
    .await;
    let fresh = token(&bin, NEW_KEY).await;
    assert_eq!(redeem(&bin, &fresh).await.status, 200);
    assert_eq!(reloads(&bin, "error").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_an_unchanged_configuration_keeps_its_generation() {
    let site = Site::new("backend = \"memory\"");
    let bin = site.start().await;
    let revision = settings(&bin, OLD_KEY).await["revision"].clone();
    // One reload follows start-up (for changes made while starting); then the signal's.
    eventually("the reload after start-up", || async {
        reloads(&bin, "ok").await >= 1.0
    })
    .await;
    let before = reloads(&bin, "ok").await;
    sighup(&bin);
    eventually("the SIGHUP reload counted", || async {
        reloads(&bin, "ok").await > before
    })
    .await;
    assert_eq!(
        bin.metric("invitetomedia_config_generation").await,
        Some(1.0)
    );
    assert_eq!(settings(&bin, OLD_KEY).await["revision"], revision);
    eventually("the signal logged", || async {
        bin.log_text().contains("SIGHUP")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_volume_swap_is_seen() {
    // The kubelet's layout: visible names are symlinks into `..data`, itself a symlink to a
    // timestamped directory; an update writes a new directory and renames a new `..data`
    // symlink over the old one. The visible files are never written.
    let site = Site::new("backend = \"memory\"");
    let mounted = site.path("tenants");
    std::fs::remove_file(mounted.join("acme.toml")).unwrap();
    let version = |name: &str, module: &str| {
        let dir = mounted.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("acme.toml"), acme_toml(OLD_KEY, module)).unwrap();
    };
    version(
        "..2026_12_03_00_00_00.1",
        "enable = true\nLinkDuration = 60",
    );
    std::os::unix::fs::symlink("..2026_12_03_00_00_00.1", mounted.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/acme.toml", mounted.join("acme.toml")).unwrap();
    let bin = site.start().await;
    assert_eq!(
        settings(&bin, OLD_KEY).await["invitetomedia"]["LinkDuration"],
        60
    );

    version(
        "..2026_12_03_00_01_00.2",
        "enable = true\nLinkDuration = 90",
    );
    std::os::unix::fs::symlink("..2026_12_03_00_01_00.2", mounted.join("..data_tmp")).unwrap();
    std::fs::rename(mounted.join("..data_tmp"), mounted.join("..data")).unwrap();
    std::fs::remove_dir_all(mounted.join("..2026_12_03_00_00_00.1")).unwrap();
    eventually("the swapped ConfigMap applied", || async {
        settings(&bin, OLD_KEY).await["invitetomedia"]["LinkDuration"] == 90
    })
    .await;
    assert_eq!(reloads(&bin, "error").await, 0.0);
}

/// One kind of bad configuration: what to write, and what the error must name.
struct BadFile {
    what: &'static str,
    key: &'static str,
    file: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_changes_nothing() {
    let site = Site::new("backend = \"memory\"");
    let bin = site.start().await;
    let good = acme_toml(OLD_KEY, "enable = true\nLinkDuration = 60");
    let revision = settings(&bin, OLD_KEY).await["revision"].clone();
    let cases = [
        BadFile {
            what: "syntax",
            key: "line 2",
            file: "acme.toml",
        },
        BadFile {
            what: "unknown key",
            key: "tenants.acme.colour",
            file: "acme.toml",
        },
        BadFile {
            what: "bad value",
            key: "tenants.acme.invitetomedia.LinkDuration",
            file: "acme.toml",
        },
        BadFile {
            what: "missing template",
            key: "tenants.acme.invitetomedia.inviteEmailTemplate",
            file: "nosuch.toml",
        },
        BadFile {
            what: "unreadable key file",
            key: "keys.invite[0].secret_file",
            file: "keys/missing",
        },
        BadFile {
            what: "tenant in two places",
            key: "tenants.acme",
            file: "acme.toml",
        },
    ];
    for case in cases {
        let errors = reloads(&bin, "error").await;
        match case.what {
            "syntax" => site.write_tenant("acme", "name = \"Acme\"\napi_keys = [\n"),
            "unknown key" => site.write_tenant("acme", &format!("colour = \"red\"\n{good}")),
            "bad value" => site.write_tenant(
                "acme",
                &acme_toml(OLD_KEY, "enable = true\nLinkDuration = 0"),
            ),
            "missing template" => site.write_tenant(
                "acme",
                &acme_toml(
                    OLD_KEY,
                    "enable = true\nLinkDuration = 60\ninviteEmailTemplate = \"nosuch\"",
                ),
            ),
            "unreadable key file" => site.write_config("backend = \"memory\"", &["missing"], ""),
            "tenant in two places" => site.write_config(
                "backend = \"memory\"",
                &["i1"],
                "[tenants.acme]\nname = \"Acme twice\"",
            ),
            other => unreachable!("{other}"),
        }
        eventually(&format!("{}: the reload refused", case.what), || async {
            reloads(&bin, "error").await > errors
        })
        .await;
        // The old configuration keeps serving, unchanged.
        assert_eq!(create(&bin, OLD_KEY).await.status, 201, "{}", case.what);
        let now = settings(&bin, OLD_KEY).await;
        assert_eq!(now["revision"], revision, "{}", case.what);
        assert_eq!(now["invitetomedia"]["LinkDuration"], 60, "{}", case.what);
        // The log names the key and the file (the log is written by a thread of its own).
        eventually(&format!("{}: the error logged", case.what), || async {
            bin.log_text().lines().any(|l| {
                l.contains("configuration reload failed")
                    && l.contains(case.key)
                    && l.contains(case.file)
            })
        })
        .await;
        // Put the good files back; the next reload succeeds.
        let oks = reloads(&bin, "ok").await;
        site.write_tenant("acme", &good);
        site.write_config("backend = \"memory\"", &["i1"], "");
        eventually(&format!("{}: good files reloaded", case.what), || async {
            reloads(&bin, "ok").await > oks
        })
        .await;
    }
    assert_eq!(
        bin.metric("invitetomedia_config_generation").await,
        Some(1.0)
    );
}

/// A configuration that names a key file not there yet is refused; the file appearing later (a
/// name the running configuration does not know) is what fixes it, and reloads by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_a_failed_reload_needs_reloads_when_it_appears() {
    let site = Site::new("backend = \"memory\"");
    let bin = site.start().await;
    let errors = reloads(&bin, "error").await;
    site.write_config("backend = \"memory\"", &["i3", "i1"], "");
    eventually("the reload refused", || async {
        reloads(&bin, "error").await > errors
    })
    .await;
    assert_eq!(kid(&token(&bin, OLD_KEY).await), "i1");
    write_atomic(
        &site.path("keys/i3"),
        "a-third-invite-hmac-key-0123456789abcdef",
    );
    eventually("the new key signs once its file exists", || async {
        kid(&token(&bin, OLD_KEY).await) == "i3"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_only_keys_warn_and_everything_else_applies() {
    let site = Site::new("backend = \"memory\"");
    let bin = site.start().await;
    let before = create(&bin, OLD_KEY).await;
    let url = |reply: &Reply| reply.body["url"].as_str().unwrap().to_owned();
    assert!(url(&before).starts_with("https://invites.example.test/i/"));
    // [server] is restart-only: the public URL stays; [security] and the tenant apply.
    site.write_config_at(
        "https://elsewhere.example.test",
        "backend = \"memory\"",
        &["i1"],
        "[security]\nmax_email_attempts = 3",
    );
    site.write_tenant(
        "acme",
        &acme_toml(OLD_KEY, "enable = true\nLinkDuration = 30"),
    );
    eventually("the tenant change applied", || async {
        settings(&bin, OLD_KEY).await["invitetomedia"]["LinkDuration"] == 30
    })
    .await;
    eventually("the warning logged", || async {
        bin.log_text()
            .lines()
            .any(|l| l.contains("take effect on restart") && l.contains("server.public_base_url"))
    })
    .await;
    let after = create(&bin, OLD_KEY).await;
    assert!(url(&after).starts_with("https://invites.example.test/i/"));
    // Three wrong emails lock a link now.
    let token = after.body["token"].as_str().unwrap();
    for _ in 0..3 {
        let wrong = json!({ "token": token, "email": "eve@example.com" });
        let reply = bin.post("/v1/redeem", None, &wrong).await;
        assert_eq!(reply.code(), "email_mismatch");
    }
    assert_eq!(redeem(&bin, token).await.code(), "locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_applies_the_change_on_redis() {
    let redis = RedisServer::start();
    let store = format!(
        "backend = \"redis\"\nredis_url = \"{}\"\nkey_prefix = \"r{}\"",
        redis.url(),
        &random_id()[..6]
    );
    let site = Site::new(&store);
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(site.start().await);
    }
    let token = token(&replicas[0], OLD_KEY).await;
    for bin in &replicas {
        assert_eq!(redeem(bin, &token).await.status, 200);
    }
    site.write_tenant(
        "acme",
        &acme_toml(OLD_KEY, "enable = false\nLinkDuration = 60"),
    );
    for bin in &replicas {
        eventually("module_disabled on every replica", || async {
            redeem(bin, &token).await.body["code"] == "module_disabled"
        })
        .await;
    }
}

/// Under a storm of reloads alternating two configurations, every request is answered by one
/// of them whole: with configuration X's API key (a tenant's table), a link always gets X's
/// issuer (a section of the whole configuration) and X's LinkDuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sees_one_whole_configuration() {
    let config = |issuer: &str, key: &str, minutes: u32| {
        format!(
            "[tokens]\nissuer = \"{issuer}\"\n[tenants.acme]\nname = \"Acme\"\napi_keys = [\"{}\"]\naccept_url = \"https://platform.acme.test/accept\"\ngrant_audience = \"acme-platform\"\n[tenants.acme.invitetomedia]\nenable = true\nLinkDuration = {minutes}\nAllowedUsers = \"privateOnlyRole\"",
            hash_api_key(key)
        )
    };
    let x = config("issuer-x", OLD_KEY, 60);
    let y = config("issuer-y", NEW_KEY, 120);
    let overrides = Overrides::new().set("server.port", 0);
    let app = spawn_overridden(&x, &overrides).await;
    let state = app.state.clone();
    let storm = tokio::task::spawn_blocking(move || {
        let mut applied = 0;
        for i in 0..200 {
            let toml = if i % 2 == 0 { &y } else { &x };
            let options = test_options(toml, &overrides);
            if reload(&state, &options).unwrap() != Reloaded::Unchanged {
                applied += 1;
            }
        }
        applied
    });
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let app = Arc::clone(&app);
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..100 {
                let reply = app.create_as(OLD_KEY, &invite_body()).await;
                seen.push((reply.status, reply.body));
            }
            seen
        }));
    }
    for task in tasks {
        for (status, body) in task.await.unwrap() {
            match status {
                201 => {
                    let token = body["token"].as_str().unwrap();
                    let payload = token.split('.').nth(1).unwrap();
                    let claims: Value = serde_json::from_slice(
                        &base64::Engine::decode(
                            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                            payload,
                        )
                        .unwrap(),
                    )
                    .unwrap();
                    assert_eq!(claims["iss"], "issuer-x", "X's key, X's issuer");
                    let expires = body["expires_at"].as_str().unwrap();
                    let expires = time::OffsetDateTime::parse(
                        expires,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .unwrap();
                    let minutes = (expires - time::OffsetDateTime::now_utc()).whole_minutes();
                    assert!(
                        minutes <= 60,
                        "X's key, X's LinkDuration: {minutes} minutes"
                    );
                }
                401 => {}
                other => panic!("unexpected {other}: {body}"),
            }
        }
    }
    assert_eq!(storm.await.unwrap(), 200);
    assert_eq!(
        app.state.metrics.config_generation.get(),
        201,
        "every alternation applied"
    );
}
