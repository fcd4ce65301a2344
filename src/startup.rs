//! The application: builds shared state from settings, binds its own listener (port 0 picks a
//! free one, which is how every test starts the real app) and runs until stopped.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service};
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};
use futures_util::FutureExt;

use crate::error::ApiError;
use crate::metrics::{RouteLabels, method_label};
use crate::routes::RouteLabel;
use crate::settings::{ConfigError, Loaded, Settings, StoreBackend};
use crate::state::{AppState, Live};
use crate::store::{MemoryStore, RedisStore, Store, UseStore};
use crate::tuning;

/// Largest request body, bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Why the service could not start.
#[derive(Debug)]
pub enum StartupError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The listener could not be bound.
    Io(std::io::Error),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => write!(f, "{e}"),
            Self::Io(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

impl std::error::Error for StartupError {}

impl From<ConfigError> for StartupError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl From<std::io::Error> for StartupError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// A built, bound, not yet running service.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

/// Builds the shared state: keys, store and tenants. Fails on any configuration problem.
pub fn build_state(loaded: Loaded) -> Result<AppState, ConfigError> {
    let live = Live::build(loaded, None)?;
    let settings = &live.settings;
    let store = match settings.store.backend {
        StoreBackend::Memory => Store::Memory(MemoryStore::default()),
        StoreBackend::Redis => Store::Redis(
            RedisStore::new(
                settings.store.redis_url.expose(),
                &settings.store.key_prefix,
                settings.store_timeout(),
            )
            .map_err(|e| ConfigError::new("store.redis_url", e.0))?,
        ),
        StoreBackend::RedisCluster => Store::Redis(
            RedisStore::cluster(
                &settings
                    .store
                    .cluster_nodes
                    .iter()
                    .map(|node| node.expose().to_owned())
                    .collect::<Vec<_>>(),
                &settings.store.key_prefix,
                settings.store_timeout(),
            )
            .map_err(|e| ConfigError::new("store.cluster_nodes", e.0))?,
        ),
    };
    Ok(AppState::new(live, store))
}

impl Application {
    /// Builds the state from settings and binds the listener (tests; nothing reloads).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let configured_tenants_dir = settings.tenants_dir.clone();
        let loaded = Loaded {
            settings,
            watched: Default::default(),
            configured_tenants_dir,
        };
        Self::build_loaded(loaded, None).await
    }

    /// Builds the state from a loaded configuration and binds the listener. With `reload`
    /// (the options it was loaded with), SIGHUP and file changes reload it: both are in place
    /// before the server answers its first request.
    pub async fn build_loaded(
        loaded: Loaded,
        reload: Option<crate::settings::LoadOptions>,
    ) -> Result<Self, StartupError> {
        let server = &loaded.settings.server;
        let address = format!("{}:{}", server.host, server.port);
        let listener = TcpListener::bind(&address)?;
        let state = web::Data::new(build_state(loaded)?);
        // Production refuses an evicting Redis before it serves anything.
        let policy = crate::health::check_eviction_policy(&state).await?;
        crate::health::probe(&state).await;
        tokio::spawn(crate::health::watch(state.clone(), policy));
        if let Some(options) = reload {
            crate::reload::spawn(state.clone(), options);
        }
        let port = listener.local_addr()?.port();
        let server = Self::run(listener, state.clone())?;
        tracing::info!(port, "listening");
        Ok(Self {
            port,
            server,
            state,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests inspect the store through it).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until the server is stopped. Tests use this; signals are not handled here.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Serves until SIGTERM or SIGINT, then drains: /readyz turns 503 at once, the listener
    /// stays open `drain_delay_seconds` so load balancers notice, then closes, and in-flight
    /// requests get `shutdown_timeout_seconds` to finish before the process returns.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let state = self.state.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            state
                .draining
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let delay = state.live().settings.server.drain_delay_seconds;
            tracing::info!(drain_delay_seconds = delay, "shutdown signal: draining");
            tokio::time::sleep(Duration::from_secs(delay)).await;
            handle.stop(true).await;
        });
        self.server.await
    }

    fn run(listener: TcpListener, state: web::Data<AppState>) -> std::io::Result<Server> {
        // `[server]` and `[store]` need a restart: read once here.
        let live = state.live();
        let server_settings = live.settings.server.clone();
        let store_timeout_ms = live.settings.store.timeout_ms;
        let shutdown = server_settings.shutdown_timeout_seconds;
        let workers = server_settings.worker_count();
        let server = HttpServer::new(move || {
            // Runs on each worker thread as it starts: open this worker's store connection now
            // rather than inside the first request's 250 ms budget.
            let warm = state.clone();
            actix_web::rt::spawn(async move {
                let _ = warm.store.ping().await;
            });
            actix_web::rt::spawn(tuning::timer_floor(tuning::timer_floor_period(
                store_timeout_ms,
            )));
            tuning::set_slice(server_settings.yield_after_us);
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(web::FormConfig::default().limit(MAX_BODY_BYTES))
                .wrap(
                    DefaultHeaders::new()
                        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                        .add((header::CACHE_CONTROL, "no-store")),
                )
                .wrap_fn(|req, srv| {
                    let method = method_label(req.method());
                    let state = req.app_data::<web::Data<AppState>>().cloned();
                    let started = Instant::now();
                    tuning::at_request_start(started);
                    srv.call(req).map(move |res| {
                        if let (Ok(res), Some(state)) = (&res, state) {
                            // Route patterns, never paths: paths carry tokens.
                            let route = res
                                .request()
                                .app_data::<RouteLabel>()
                                .map_or("unmatched", |label| label.0);
                            let status = res.status().as_u16();
                            let elapsed = started.elapsed().as_secs_f64();
                            tracing::debug!(%method, %route, status, elapsed, "request");
                            state.metrics.request(
                                RouteLabels {
                                    route,
                                    method,
                                    status,
                                },
                                elapsed,
                            );
                        }
                        res
                    })
                })
                .configure(crate::routes::configure)
                .default_service(web::to(|| async {
                    Err::<actix_web::HttpResponse, _>(ApiError::NotFound)
                }))
        })
        .shutdown_timeout(shutdown)
        .disable_signals()
        .workers(workers)
        .listen(listener)?;
        Ok(server.run())
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
