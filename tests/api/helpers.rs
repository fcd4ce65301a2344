//! Test harness: a real `redis-server` on a free port, the real app on port 0, and a client
//! with one helper per endpoint. Set `TEST_LOG=1` to see the service's logs.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use invitetomedia::settings::{LoadOptions, Settings};
use invitetomedia::startup::Application;
use invitetomedia::state::AppState;
use invitetomedia::tokens::random_id;
use serde_json::{Value, json};

/// The demo tenant's API key (config/default.toml).
pub const DEMO_KEY: &str = "demo-api-key";
/// The acme tenant's API key (open links, unlimited uses, listed inviters).
pub const ACME_KEY: &str = "acme-test-key";
/// The off tenant's API key (module disabled).
pub const OFF_KEY: &str = "off-test-key";
/// The invite HMAC secret tests sign their own tokens with.
pub const INVITE_SECRET: &str = "test-invite-hmac-0123456789abcdef0123";

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of the test's own, killed on drop (and by a watchdog if the test process
/// dies first).
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts a server on a free port with extra `redis-server` arguments (later ones win).
    pub fn start_with(extra: &[&str]) -> Self {
        Self::spawn(free_port(), extra)
    }

    /// Starts a server on `port` and waits until it answers.
    pub fn start_on(port: u16) -> Self {
        Self::spawn(port, &[])
    }

    // The watchdog outlives its handle on purpose: it kills the server if the test process dies.
    #[allow(clippy::zombie_processes)]
    fn spawn(port: u16, extra: &[&str]) -> Self {
        let port_text = port.to_string();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port_text,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--maxmemory-policy", "noeviction"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the README's test command installs it)");
        let watchdog = format!(
            "while kill -0 {} 2>/dev/null; do sleep 1; done; kill {} 2>/dev/null",
            std::process::id(),
            child.id()
        );
        Command::new("sh")
            .args(["-c", &watchdog])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            port,
            child: Some(child),
        };
        server.wait_ready();
        server
    }

    /// `redis://` URL of the server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// Stops the server (an outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): it accepts connections but answers nothing, like an
    /// overloaded or partitioned Redis.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("server running")
            .id()
            .to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// A synchronous connection, to look at keys.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A 3-primary Redis Cluster on free loopback ports (no replicas), stopped on drop.
pub struct RedisCluster {
    /// The nodes.
    pub nodes: Vec<RedisServer>,
    _dir: TempDir,
}

/// A directory removed on drop (cluster nodes write their nodes.conf there).
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl RedisCluster {
    /// Starts three nodes, joins them with `redis-cli --cluster create`, waits for `cluster_state:ok`.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "itm-cluster-{}-{}",
            std::process::id(),
            &random_id()[..6]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let nodes: Vec<RedisServer> = (0..3)
            .map(|i| {
                let port = free_port();
                let conf = dir.join(format!("nodes-{i}.conf"));
                RedisServer::spawn(
                    port,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        conf.to_str().unwrap(),
                        "--dir",
                        dir.to_str().unwrap(),
                    ],
                )
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli must be installed");
        assert!(status.success(), "redis-cli --cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &nodes {
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut node.connection())
                    .unwrap();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the cluster did not become ready"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self {
            nodes,
            _dir: TempDir(dir),
        }
    }

    /// `redis://` URLs of the nodes.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// One cluster for every test of the process; tests keep apart by key prefix.
pub fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

/// One Redis for every test of the process; tests keep apart by key prefix.
pub fn shared_redis() -> &'static RedisServer {
    static REDIS: OnceLock<RedisServer> = OnceLock::new();
    REDIS.get_or_init(RedisServer::start)
}

/// Signing keys shared by every app of the process, so several instances accept each
/// other's links.
fn grant_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| invitetomedia::tokens::keyring::generate("EdDSA").unwrap())
}

/// Which store an app uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// In-process.
    Memory,
    /// The shared Redis.
    Redis,
    /// The shared 3-node Redis Cluster.
    Cluster,
}

/// The test configuration layered over config/default.toml.
pub fn test_toml(backend: Backend, redis_url: &str, prefix: &str, extra: &str) -> String {
    let invite_keys = format!("{{ kid = \"i1\", alg = \"HS256\", secret = \"{INVITE_SECRET}\" }}");
    test_toml_with_keys(backend, redis_url, prefix, &invite_keys, extra)
}

/// [`test_toml`] with these invite keys (the items of the `keys.invite` list).
pub fn test_toml_with_keys(
    backend: Backend,
    redis_url: &str,
    prefix: &str,
    invite_keys: &str,
    extra: &str,
) -> String {
    let (backend, nodes) = match backend {
        Backend::Memory => ("memory", String::new()),
        Backend::Redis => ("redis", String::new()),
        Backend::Cluster => {
            let urls: Vec<String> = shared_cluster()
                .urls()
                .iter()
                .map(|u| format!("{u:?}"))
                .collect();
            ("redis-cluster", urls.join(", "))
        }
    };
    format!(
        r#"
[server]
port = 0
public_base_url = "https://invites.example.test"
[store]
backend = "{backend}"
redis_url = "{redis_url}"
cluster_nodes = [{nodes}]
key_prefix = "{prefix}"
# Generous: a store call must not time out because the test machine is busy (tests run with
# both cores loaded). The outage tests prove the bound with a Redis that never answers.
timeout_ms = 2000
[keys]
invite = [ {invite_keys} ]
grant = [ {{ kid = "g1", alg = "EdDSA", private_key_pem = """{pem}""" }} ]
[tenants.acme]
name = "Acme College"
api_keys = ["{acme}"]
accept_url = "https://platform.acme.test/accept"
grant_audience = "acme-platform"
[tenants.acme.invitetomedia]
enable = true
LinkDuration = 60
LinkReusability = -1
AllowedUsers = {{ users = ["alice"], groups = ["faculty"] }}
inviteEmailTemplate = ""
RestrictNewUserDomains = ["sso.example"]
AllowOpenLinks = true
[tenants.off]
name = "Off Site"
api_keys = ["{off}"]
accept_url = "https://off.test/accept"
grant_audience = "off-platform"
[tenants.off.invitetomedia]
enable = false
{extra}
"#,
        pem = grant_pem(),
        acme = invitetomedia::state::hash_api_key(ACME_KEY),
        off = invitetomedia::state::hash_api_key(OFF_KEY),
    )
}

/// A production configuration that starts: https URLs, generated keys (or this invite secret),
/// one tenant `acme`; `server` and `store` are extra lines of those tables.
pub fn production_toml(secret: Option<&str>, server: &str, store: &str) -> String {
    let secret = secret.map_or_else(
        || invitetomedia::tokens::keyring::generate("HS256").unwrap(),
        str::to_owned,
    );
    let pem = invitetomedia::tokens::keyring::generate("EdDSA").unwrap();
    format!(
        r#"
[server]
public_base_url = "https://invites.example.test"
{server}
[store]
{store}
[keys]
invite = [ {{ kid = "i1", alg = "HS256", secret = "{secret}" }} ]
grant = [ {{ kid = "g1", alg = "EdDSA", private_key_pem = """{pem}""" }} ]
[tenants.acme]
name = "Acme"
accept_url = "https://platform.acme.test/accept"
grant_audience = "acme-platform"
"#
    )
}

/// Typed overrides of a configuration: dotted keys and values, applied by the loader's
/// environment layer (`server.port` becomes `INVITETOMEDIA__SERVER__PORT`), so no test edits
/// TOML text. A list is given as its comma-separated items.
#[derive(Debug, Clone, Default)]
pub struct Overrides(Vec<(String, String)>);

impl Overrides {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` (dotted, as in the documentation) to `value`.
    pub fn set(mut self, key: &str, value: impl ToString) -> Self {
        self.0.push((key.to_owned(), value.to_string()));
        self
    }

    /// The overrides as environment variables.
    pub fn vars(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(key, value)| {
                let name = format!("INVITETOMEDIA__{}", key.replace('.', "__").to_uppercase());
                (name, value.clone())
            })
            .collect()
    }
}

/// The loader's options for a test configuration: the test layer, overrides as the environment.
pub fn test_options(toml: &str, overrides: &Overrides) -> LoadOptions {
    LoadOptions {
        config_dir: "config".into(),
        app_env: "test".into(),
        extra_file: None,
        extra_toml: Some(toml.to_owned()),
        env: Some(overrides.vars().into_iter().collect()),
        tenants_dir: None,
    }
}

/// Loads settings the way the binary does, with the test layer and no process environment.
pub fn load_settings(toml: &str) -> Settings {
    load_overridden(toml, &Overrides::new())
}

/// [`load_settings`] with overrides.
pub fn load_overridden(toml: &str, overrides: &Overrides) -> Settings {
    Settings::load(&test_options(toml, overrides)).expect("test settings are valid")
}

/// A running app and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// HTTP client (no proxy, no redirects).
    pub client: reqwest::Client,
    /// The app's shared state.
    pub state: actix_web::web::Data<AppState>,
}

/// Starts an app on the memory store.
pub async fn spawn_app() -> TestApp {
    spawn_with(Backend::Memory, "").await
}

/// Starts an app on the shared Redis with its own key prefix.
pub async fn spawn_redis_app() -> TestApp {
    spawn_with(Backend::Redis, "").await
}

/// Starts an app on `backend` with extra TOML layered last.
pub async fn spawn_with(backend: Backend, extra: &str) -> TestApp {
    let prefix = format!("t{}", &random_id()[..10]);
    let url = if backend == Backend::Redis {
        shared_redis().url()
    } else {
        "redis://127.0.0.1:1".to_owned()
    };
    spawn_configured(&test_toml(backend, &url, &prefix, extra)).await
}

/// Why an app with the test configuration and `extra` fails to start (it must fail).
pub async fn startup_error(extra: &str) -> String {
    let toml = test_toml(Backend::Memory, "redis://127.0.0.1:1", "x", extra);
    Application::build(load_settings(&toml))
        .await
        .err()
        .expect("start-up fails")
        .to_string()
}

/// Starts an app from a full test configuration.
pub async fn spawn_configured(toml: &str) -> TestApp {
    spawn_overridden(toml, &Overrides::new()).await
}

/// Starts an app from a full test configuration with overrides.
pub async fn spawn_overridden(toml: &str, overrides: &Overrides) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        // The writer flushes whenever its queue empties; it lives as long as the test process.
        std::mem::forget(invitetomedia::telemetry::init(false));
    }
    let app = Application::build(load_overridden(toml, overrides))
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    // The timeout only turns a hang into a failure; no test relies on how fast anything is.
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        state,
    }
}

/// A valid create body for the demo tenant; tests change what they need.
pub fn invite_body() -> Value {
    json!({
        "media": { "id": "1_abc", "type": "room", "title": "Weekly seminar" },
        "inviter": { "id": "prof1", "name": "Prof One", "role": "privateOnlyRole", "groups": ["faculty"], "permission": "owner" },
        "invitee": { "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "role": "viewer" }
    })
}

/// A response: status and JSON body (Null when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON.
    pub body: Value,
}

impl Reply {
    async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Self {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// The problem `code`.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// POSTs `body` as JSON to `url`, with `key` as bearer token when given.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: &Value,
) -> Reply {
    let mut request = client.post(url).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    Reply::from(request.send().await.unwrap()).await
}

impl TestApp {
    /// POST JSON with an optional API key.
    pub async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Reply {
        post_json(&self.client, &format!("{}{path}", self.address), key, body).await
    }

    /// POST /v1/invites with the demo key and an `Idempotency-Key`.
    pub async fn create_idempotent(&self, key: &str, body: &Value) -> Reply {
        let request = self
            .client
            .post(format!("{}/v1/invites", self.address))
            .bearer_auth(DEMO_KEY)
            .header("Idempotency-Key", key)
            .json(body);
        Reply::from(request.send().await.unwrap()).await
    }

    /// POST a raw body.
    pub async fn post_raw(
        &self,
        path: &str,
        key: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    /// GET with an optional API key.
    pub async fn get(&self, path: &str, key: Option<&str>) -> Reply {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    /// GET, the body as text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// DELETE with an API key.
    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        Reply::from(
            self.client
                .delete(format!("{}{path}", self.address))
                .bearer_auth(key)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// `POST /v1/invites` as the demo tenant.
    pub async fn create(&self, body: &Value) -> Reply {
        self.post("/v1/invites", Some(DEMO_KEY), body).await
    }

    /// POST /v1/invites with `key`.
    pub async fn create_as(&self, key: &str, body: &Value) -> Reply {
        self.post("/v1/invites", Some(key), body).await
    }

    /// Creates a link with `key`, asserting 201, and returns its token.
    pub async fn create_token_as(&self, key: &str, body: &Value) -> String {
        let reply = self.post("/v1/invites", Some(key), body).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body["token"].as_str().unwrap().to_owned()
    }

    /// Creates a demo link from `invite_body()` with `changes` merged in, returning its token.
    pub async fn create_token(&self, changes: Value) -> String {
        let mut body = invite_body();
        merge(&mut body, changes);
        self.create_token_as(DEMO_KEY, &body).await
    }

    /// `POST /v1/redeem`.
    pub async fn redeem(&self, body: &Value) -> Reply {
        self.post("/v1/redeem", None, body).await
    }

    /// Redeems `token` as ada from `device`.
    pub async fn redeem_as(&self, token: &str, device: &str) -> Reply {
        self.redeem(&json!({ "token": token, "email": "ada@example.com", "device_id": device }))
            .await
    }

    /// `POST /v1/invites/introspect` as the demo tenant.
    pub async fn introspect(&self, token: &str) -> Reply {
        self.post(
            "/v1/invites/introspect",
            Some(DEMO_KEY),
            &json!({ "token": token }),
        )
        .await
    }
}

/// Deep-merges `changes` into `target` (null removes a key).
pub fn merge(target: &mut Value, changes: Value) {
    match (target, changes) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, v) in c {
                if v.is_null() {
                    t.remove(&k);
                } else {
                    merge(t.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (t, c) => *t = c,
    }
}

/// A device id of the right shape, distinct per `n`.
pub fn device(n: usize) -> String {
    format!("device-{n:012}")
}

/// Mints a demo-style invite for tenant `tid` with claims changed by `changes` (times, limits),
/// signed with the test key: for links the API would not create (expired, not yet valid...).
pub fn mint_invite(app: &TestApp, tid: &str, changes: Value) -> String {
    use invitetomedia::tokens::{InviteClaims, InvitePersonalData, invite::mint};
    let base = crate::tokens::with(
        crate::tokens::claims(tid),
        json!({ "max": 1, "role": "viewer" }),
    );
    let mut claims: InviteClaims =
        serde_json::from_value(crate::tokens::with(base, changes)).unwrap();
    claims.jti = random_id();
    let personal = InvitePersonalData {
        email: "ada@example.com".into(),
        first_name: "Ada".into(),
        last_name: "L".into(),
        ..Default::default()
    };
    mint(&app.state.live().invite_keys, claims, &personal).unwrap()
}

/// The real `invitetomedia` binary on `port`, started from a config file and ready.
pub struct Binary {
    /// The process.
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client (no proxy).
    pub client: reqwest::Client,
    /// Its stdout (the log), when captured.
    pub log: std::path::PathBuf,
    _dir: TempDir,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    /// POST JSON with an optional API key.
    pub async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Reply {
        post_json(&self.client, &format!("{}{path}", self.base), key, body).await
    }

    /// GET with an optional API key.
    pub async fn get(&self, path: &str, key: Option<&str>) -> Reply {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    /// The value of one series of `/metrics` (name with its labels, as exposed).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    }

    /// The log so far (with `capture_log`).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Waits until `check` holds, polling; fails with `what` after a minute. Only turns a hang into
/// a failure: nothing is asserted about how soon.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the binary with `toml` as `INVITETOMEDIA_CONFIG`, listening on `port`; with
/// `capture_log` its stdout goes to `Binary::log` at `RUST_LOG=debug`.
pub async fn spawn_binary(toml: &str, port: u16, capture_log: bool) -> Binary {
    spawn_binary_with(toml, port, &Overrides::new(), capture_log).await
}

/// [`spawn_binary`] with overrides (given as the environment variables the binary reads).
pub async fn spawn_binary_with(
    toml: &str,
    port: u16,
    overrides: &Overrides,
    capture_log: bool,
) -> Binary {
    let dir = std::env::temp_dir().join(format!("itm-bin-{port}-{}", &random_id()[..6]));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    std::fs::write(&file, toml).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_invitetomedia"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("INVITETOMEDIA_CONFIG", &file);
    start_binary(command, dir, port, overrides, capture_log).await
}

/// Starts `command` (the binary, its configuration in place) on `port` with `overrides`, and
/// waits until it is ready. `dir` is removed when the `Binary` drops.
pub async fn start_binary(
    mut command: Command,
    dir: std::path::PathBuf,
    port: u16,
    overrides: &Overrides,
    capture_log: bool,
) -> Binary {
    let log = dir.join("service.log");
    command
        .env_remove("APP_ENV")
        .env("INVITETOMEDIA__SERVER__PORT", port.to_string())
        .envs(overrides.vars())
        .stderr(Stdio::null());
    if capture_log {
        command
            .env("RUST_LOG", "debug")
            .stdout(std::fs::File::create(&log).unwrap());
    } else {
        command.stdout(Stdio::null());
    }
    let child = command.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(
            Instant::now() < deadline,
            "the service did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Binary {
        child,
        base,
        client,
        log,
        _dir: TempDir(dir),
    }
}

/// What the relay does with the next request.
#[derive(Debug, Clone, Copy)]
pub enum Act {
    /// Answer with this status.
    Status(u16),
    /// Wait this many milliseconds, then answer 200.
    Hang(u64),
    /// Answer 302 to /elsewhere.
    Redirect,
}

/// A real HTTP email relay standing in for the platform's mail service.
#[derive(Default)]
pub struct Relay {
    /// What the next requests get.
    pub script: Mutex<VecDeque<Act>>,
    /// Authorization header and JSON body of every request.
    pub received: Mutex<Vec<(String, Value)>>,
    /// Requests that followed a redirect.
    pub redirected_hits: Mutex<usize>,
}

async fn relay_handler(
    relay: web::Data<Relay>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    relay
        .received
        .lock()
        .unwrap()
        .push((auth, body.into_inner()));
    let act = relay
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Act::Status(202));
    match act {
        Act::Status(code) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).finish()
        }
        Act::Hang(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            HttpResponse::Ok().finish()
        }
        Act::Redirect => HttpResponse::Found()
            .insert_header(("location", "/elsewhere"))
            .finish(),
    }
}

/// The `[email]` tables that send through the relay at `url` (its `[email.http]` table last,
/// so a caller may add keys to it).
pub fn relay_toml(url: &str) -> String {
    format!(
        "[email]\ntransport = \"http\"\nfrom = \"Invitations <invites@demo.test>\"\n[email.http]\nurl = \"{url}\"\nbearer_token = \"relay-token\"\n"
    )
}

/// `GET /last`: the last message received, for a browser test to read a code from.
async fn last_message(relay: web::Data<Relay>) -> HttpResponse {
    match relay.received.lock().unwrap().last() {
        Some((_, body)) => HttpResponse::Ok().json(body),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn elsewhere(relay: web::Data<Relay>) -> HttpResponse {
    *relay.redirected_hits.lock().unwrap() += 1;
    HttpResponse::Ok().finish()
}

/// Starts a relay that plays `script`, then answers 202.
pub async fn start_relay(script: &[Act]) -> (web::Data<Relay>, String) {
    let relay = web::Data::new(Relay::default());
    relay.script.lock().unwrap().extend(script.iter().copied());
    let data = relay.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/send", web::post().to(relay_handler))
            .route("/elsewhere", web::post().to(elsewhere))
            .route("/last", web::get().to(last_message))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://127.0.0.1:{}/send", server.addrs()[0].port());
    tokio::spawn(server.run());
    (relay, url)
}
