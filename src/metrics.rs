//! Prometheus metrics. Labels are low-cardinality by construction: route patterns (never
//! paths, which carry tokens), configured tenant ids, and fixed outcome names.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::AddAssign;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of HTTP request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route pattern, e.g. `/i/{token}`.
    pub route: &'static str,
    /// Method.
    pub method: &'static str,
    /// Status code.
    pub status: u16,
}

/// Labels of the per-route latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RouteOnly {
    route: &'static str,
}

/// Labels of per-tenant outcome counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct TenantOutcome {
    tenant: String,
    outcome: &'static str,
}

/// Labels of per-tenant counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct TenantOnly {
    tenant: String,
}

/// Labels of store metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct StoreOp {
    op: &'static str,
}

/// Buckets of the latency histograms.
const BUCKETS: usize = 17;

/// Their upper bounds: 100 µs doubling to ~3.3 s, then +Inf (`f64::MAX`, which the encoder
/// writes as `+Inf`). Doubling is exact, so these equal prometheus-client's
/// `exponential_buckets(0.0001, 2.0, 16)`.
const BOUNDS: [f64; BUCKETS] = {
    let mut bounds = [f64::MAX; BUCKETS];
    let (mut i, mut bound) = (0, 0.0001);
    while i < BUCKETS - 1 {
        bounds[i] = bound;
        bound *= 2.0;
        i += 1;
    }
    bounds
};

/// Distinguishes metric sets in one process (tests run several apps), for the per-thread shards.
static NEXT_METRICS_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's shard of each metric set.
    static SHARDS: RefCell<Vec<(u64, Arc<Mutex<Shard>>)>> = const { RefCell::new(Vec::new()) };
}

/// One latency histogram: per-bucket (not cumulative) counts, count and sum.
#[derive(Clone, Copy, Default)]
struct Latency {
    buckets: [u64; BUCKETS],
    count: u64,
    sum: f64,
}

impl Latency {
    fn observe(&mut self, seconds: f64) {
        let bucket = BOUNDS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS - 1);
        self.buckets[bucket] += 1;
        self.count += 1;
        self.sum += seconds;
    }
}

impl AddAssign<&Latency> for Latency {
    fn add_assign(&mut self, other: &Latency) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

/// One thread's counts. Tenant-labelled counts are keyed outcome first, so recording looks a
/// tenant up by `&str` and allocates its label only the first time.
#[derive(Default)]
struct Shard {
    requests: HashMap<RouteLabels, u64>,
    request_seconds: HashMap<&'static str, Latency>,
    invites_created: HashMap<String, u64>,
    redemptions: HashMap<&'static str, HashMap<String, u64>>,
    store_seconds: HashMap<&'static str, Latency>,
    store_errors: HashMap<&'static str, u64>,
    emails: HashMap<&'static str, HashMap<String, u64>>,
}

/// Counts one for `tenant`, allocating its label only the first time.
fn count(tenants: &mut HashMap<String, u64>, tenant: &str) {
    match tenants.get_mut(tenant) {
        Some(n) => *n += 1,
        None => {
            tenants.insert(tenant.to_owned(), 1);
        }
    }
}

/// Every thread's shard of one metric set; a scrape sums them. Shards of threads that ended
/// stay, so no count ever goes back.
#[derive(Default)]
struct Shards {
    all: Mutex<Vec<Arc<Mutex<Shard>>>>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shards")
    }
}

/// The sum of all shards, in label order.
#[derive(Default)]
struct Totals {
    requests: BTreeMap<RouteLabels, u64>,
    request_seconds: BTreeMap<RouteOnly, Latency>,
    invites_created: BTreeMap<TenantOnly, u64>,
    redemptions: BTreeMap<TenantOutcome, u64>,
    store_seconds: BTreeMap<StoreOp, Latency>,
    store_errors: BTreeMap<StoreOp, u64>,
    emails: BTreeMap<TenantOutcome, u64>,
}

/// Adds one shard's series to the totals, under their exposition labels.
fn sum_into<K, L: Ord, V: Default + for<'v> AddAssign<&'v V>>(
    totals: &mut BTreeMap<L, V>,
    series: &HashMap<K, V>,
    label: impl Fn(&K) -> L,
) {
    for (key, value) in series {
        *totals.entry(label(key)).or_default() += value;
    }
}

fn sum_tenant_counts(
    totals: &mut BTreeMap<TenantOutcome, u64>,
    counts: &HashMap<&'static str, HashMap<String, u64>>,
) {
    for (outcome, tenants) in counts {
        sum_into(totals, tenants, |tenant| TenantOutcome {
            tenant: tenant.clone(),
            outcome,
        });
    }
}

impl Shards {
    fn totals(&self) -> Totals {
        let mut t = Totals::default();
        let all = self
            .all
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for shard in all {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            sum_into(&mut t.requests, &shard.requests, RouteLabels::clone);
            sum_into(&mut t.request_seconds, &shard.request_seconds, |route| {
                RouteOnly { route }
            });
            sum_into(&mut t.invites_created, &shard.invites_created, |tenant| {
                TenantOnly {
                    tenant: tenant.clone(),
                }
            });
            sum_tenant_counts(&mut t.redemptions, &shard.redemptions);
            sum_into(&mut t.store_seconds, &shard.store_seconds, |op| StoreOp {
                op,
            });
            sum_into(&mut t.store_errors, &shard.store_errors, |op| StoreOp {
                op,
            });
            sum_tenant_counts(&mut t.emails, &shard.emails);
        }
        t
    }
}

/// Writes one family; nothing when it has no series yet.
fn encode_family<L: EncodeLabelSet, V>(
    encoder: &mut DescriptorEncoder,
    (name, help, kind): (&str, &str, MetricType),
    series: &BTreeMap<L, V>,
    write: impl Fn(MetricEncoder<'_>, &V) -> std::fmt::Result,
) -> std::fmt::Result {
    if series.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in series {
        write(family.encode_family(labels)?, value)?;
    }
    Ok(())
}

fn encode_count(mut metric: MetricEncoder<'_>, n: &u64) -> std::fmt::Result {
    metric.encode_counter::<NoLabelSet, _, u64>(n, None)
}

impl Collector for Shards {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        use MetricType::{Counter, Histogram};
        let t = self.totals();
        let e = &mut encoder;
        let latency = |mut metric: MetricEncoder<'_>, l: &Latency| {
            let buckets: Vec<(f64, u64)> = BOUNDS.iter().copied().zip(l.buckets).collect();
            metric.encode_histogram::<NoLabelSet>(l.sum, l.count, &buckets, None)
        };
        let requests = (
            "http_requests",
            "HTTP requests by route, method and status",
            Counter,
        );
        encode_family(e, requests, &t.requests, encode_count)?;
        let request_seconds = (
            "http_request_duration_seconds",
            "HTTP request latency by route",
            Histogram,
        );
        encode_family(e, request_seconds, &t.request_seconds, latency)?;
        let created = ("invites_created", "Invite links created", Counter);
        encode_family(e, created, &t.invites_created, encode_count)?;
        let redemptions = ("redemptions", "Redemption attempts by outcome", Counter);
        encode_family(e, redemptions, &t.redemptions, encode_count)?;
        let store_seconds = (
            "store_operation_duration_seconds",
            "Store operation latency",
            Histogram,
        );
        encode_family(e, store_seconds, &t.store_seconds, latency)?;
        let store_errors = (
            "store_errors",
            "Store operations that failed or timed out",
            Counter,
        );
        encode_family(e, store_errors, &t.store_errors, encode_count)?;
        let emails = ("emails", "Invite emails by outcome", Counter);
        encode_family(e, emails, &t.emails, encode_count)
    }
}

/// Every metric the service exports, recorded per thread: a request touches only its own
/// thread's shard (a lock no other thread takes but a scrape), never a lock or counter shared
/// by every worker; prometheus-client's families took a shared lock per update and its
/// histograms a shared write lock per observation (README, Performance).
pub struct Metrics {
    id: u64,
    registry: Registry,
    shards: Arc<Shards>,
    /// `invitetomedia_store_up`: 1 when this replica's last store check got an answer.
    pub store_up: Gauge,
    /// `invitetomedia_store_eviction_policy_verified`: 1 once Redis's `maxmemory-policy` was
    /// read as `noeviction` (the memory store: always 1).
    pub eviction_policy_verified: Gauge,
    /// `invitetomedia_config_reloads_total{outcome}`: reloads that applied (`ok`, a reload
    /// that found nothing changed included) or were refused (`error`).
    pub config_reloads: Family<ReloadOutcome, Counter>,
    /// `invitetomedia_config_generation`: 1 at start, +1 per reload that changed something.
    pub config_generation: Gauge,
    /// `invitetomedia_config_last_reload_success_timestamp_seconds`.
    pub config_last_success: Gauge<f64, AtomicU64>,
}

/// Labels of the reload counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadOutcome {
    /// `ok` or `error`.
    pub outcome: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let shards = Arc::new(Shards::default());
        let mut registry = Registry::with_prefix("invitetomedia");
        registry.register_collector(Box::new(Arc::clone(&shards)));
        let store_up = Gauge::default();
        registry.register(
            "store_up",
            "Whether the store answered this replica's last check (every 5 s)",
            store_up.clone(),
        );
        let eviction_policy_verified = Gauge::default();
        registry.register(
            "store_eviction_policy_verified",
            "Whether Redis's maxmemory-policy was read as noeviction",
            eviction_policy_verified.clone(),
        );
        let config_reloads = Family::<ReloadOutcome, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads by outcome",
            config_reloads.clone(),
        );
        for outcome in ["ok", "error"] {
            // Both series exist from the start, so an alert on errors sees 0 before the first.
            let _ = config_reloads.get_or_create(&ReloadOutcome { outcome });
        }
        let config_generation = Gauge::default();
        registry.register(
            "config_generation",
            "Configurations applied since start (1 at start)",
            config_generation.clone(),
        );
        let config_last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "When a configuration was last loaded successfully (Unix seconds)",
            config_last_success.clone(),
        );
        Self {
            id: NEXT_METRICS_ID.fetch_add(1, Ordering::Relaxed),
            registry,
            shards,
            store_up,
            eviction_policy_verified,
            config_reloads,
            config_generation,
            config_last_success,
        }
    }
}

impl Metrics {
    /// Records a successful load of the configuration now.
    pub fn config_reloaded_now(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.config_last_success.set(now);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Runs `record` on this thread's shard, made on the thread's first use.
    fn record(&self, record: impl FnOnce(&mut Shard)) {
        SHARDS.with(|mine| {
            let mut mine = mine.borrow_mut();
            let shard = match mine.iter().position(|(id, _)| *id == self.id) {
                Some(i) => &mine[i].1,
                None => {
                    let shard = Arc::new(Mutex::new(Shard::default()));
                    self.shards
                        .all
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(Arc::clone(&shard));
                    mine.push((self.id, shard));
                    &mine[mine.len() - 1].1
                }
            };
            record(&mut shard.lock().unwrap_or_else(PoisonError::into_inner));
        });
    }

    /// Counts an answered request and its latency.
    pub fn request(&self, labels: RouteLabels, seconds: f64) {
        self.record(|shard| {
            shard
                .request_seconds
                .entry(labels.route)
                .or_default()
                .observe(seconds);
            *shard.requests.entry(labels).or_default() += 1;
        });
    }

    /// Counts a created invite.
    pub fn invite_created(&self, tenant: &str) {
        self.record(|shard| count(&mut shard.invites_created, tenant));
    }

    /// Counts a redemption outcome.
    pub fn redemption(&self, tenant: &str, outcome: &'static str) {
        self.record(|shard| count(shard.redemptions.entry(outcome).or_default(), tenant));
    }

    /// Counts an invite email's outcome (`sent`, `failed`).
    pub fn email(&self, tenant: &str, outcome: &'static str) {
        self.record(|shard| count(shard.emails.entry(outcome).or_default(), tenant));
    }

    /// Records one store operation.
    pub fn store_op(&self, op: &'static str, seconds: f64, ok: bool) {
        self.record(|shard| {
            shard.store_seconds.entry(op).or_default().observe(seconds);
            if !ok {
                *shard.store_errors.entry(op).or_default() += 1;
            }
        });
    }
}

/// The method as a label.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_every_thread_are_summed() {
        let metrics = Metrics::default();
        let healthz = RouteLabels {
            route: "/healthz",
            method: "GET",
            status: 200,
        };
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        metrics.request(healthz.clone(), 0.00015);
                        metrics.redemption("demo", "granted");
                    }
                    metrics.store_op("redeem", 5.0, false);
                    metrics.invite_created("demo");
                });
            }
        });
        // A scrape between two records of one thread sees the first.
        metrics.email("demo", "sent");
        let text = metrics.render();
        metrics.email("demo", "sent");
        let again = metrics.render();
        for needle in [
            "invitetomedia_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 4000",
            // 150 µs falls in the 200 µs bucket; buckets are cumulative.
            "invitetomedia_http_request_duration_seconds_bucket{le=\"0.0001\",route=\"/healthz\"} 0",
            "invitetomedia_http_request_duration_seconds_bucket{le=\"0.0002\",route=\"/healthz\"} 4000",
            "invitetomedia_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/healthz\"} 4000",
            "invitetomedia_http_request_duration_seconds_count{route=\"/healthz\"} 4000",
            "invitetomedia_redemptions_total{tenant=\"demo\",outcome=\"granted\"} 4000",
            "invitetomedia_invites_created_total{tenant=\"demo\"} 4",
            // 5 s is past the last bound (~3.3 s): only +Inf holds it.
            "invitetomedia_store_operation_duration_seconds_bucket{le=\"3.2768\",op=\"redeem\"} 0",
            "invitetomedia_store_operation_duration_seconds_bucket{le=\"+Inf\",op=\"redeem\"} 4",
            "invitetomedia_store_operation_duration_seconds_sum{op=\"redeem\"} 20.0",
            "invitetomedia_store_errors_total{op=\"redeem\"} 4",
            "invitetomedia_emails_total{tenant=\"demo\",outcome=\"sent\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert!(again.contains("invitetomedia_emails_total{tenant=\"demo\",outcome=\"sent\"} 2"));
    }

    #[test]
    fn metric_sets_do_not_share_counts() {
        let (a, b) = (Metrics::default(), Metrics::default());
        a.redemption("demo", "granted");
        assert!(a.render().contains("redemptions_total"));
        assert!(!b.render().contains("redemptions_total"));
    }
}
