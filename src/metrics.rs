//! Prometheus metrics. Labels are low-cardinality by construction: route patterns (never
//! paths, which carry tokens), configured tenant ids, and fixed outcome names.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of HTTP request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route pattern, e.g. `/i/{token}`.
    pub route: &'static str,
    /// Method.
    pub method: &'static str,
    /// Status code.
    pub status: u16,
}

/// Labels of the per-route latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteOnly {
    /// Route pattern.
    pub route: &'static str,
}

/// Labels of per-tenant outcome counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantOutcome {
    /// Tenant id (`unknown` when the token did not say).
    pub tenant: String,
    /// Outcome: `granted`, `reentry`, or an error code.
    pub outcome: &'static str,
}

/// Labels of per-tenant counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantOnly {
    /// Tenant id.
    pub tenant: String,
}

/// Labels of store metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreOp {
    /// Operation: `redeem`, `status`, `revoke`, `ping`.
    pub op: &'static str,
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    /// Requests by route, method and status.
    pub requests: Family<RouteLabels, Counter>,
    /// Request latency by route.
    pub request_seconds: Family<RouteOnly, Histogram>,
    /// Invites created by tenant.
    pub invites_created: Family<TenantOnly, Counter>,
    /// Redemptions by tenant and outcome.
    pub redemptions: Family<TenantOutcome, Counter>,
    /// Store latency by operation.
    pub store_seconds: Family<StoreOp, Histogram>,
    /// Store failures (errors and timeouts) by operation.
    pub store_errors: Family<StoreOp, Counter>,
    /// Emails by tenant and outcome (`sent`, `failed`).
    pub emails: Family<TenantOutcome, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("invitetomedia");
        let requests = Family::<RouteLabels, Counter>::default();
        let request_seconds = Family::<RouteOnly, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let invites_created = Family::<TenantOnly, Counter>::default();
        let redemptions = Family::<TenantOutcome, Counter>::default();
        let store_seconds = Family::<StoreOp, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let store_errors = Family::<StoreOp, Counter>::default();
        let emails = Family::<TenantOutcome, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            request_seconds.clone(),
        );
        registry.register(
            "invites_created",
            "Invite links created",
            invites_created.clone(),
        );
        registry.register(
            "redemptions",
            "Redemption attempts by outcome",
            redemptions.clone(),
        );
        registry.register(
            "store_operation_duration_seconds",
            "Store operation latency",
            store_seconds.clone(),
        );
        registry.register(
            "store_errors",
            "Store operations that failed or timed out",
            store_errors.clone(),
        );
        registry.register("emails", "Invite emails by outcome", emails.clone());
        Self {
            registry,
            requests,
            request_seconds,
            invites_created,
            redemptions,
            store_seconds,
            store_errors,
            emails,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Counts a redemption outcome.
    pub fn redemption(&self, tenant: &str, outcome: &'static str) {
        self.redemptions
            .get_or_create(&TenantOutcome {
                tenant: tenant.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Records one store operation.
    pub fn store_op(&self, op: &'static str, seconds: f64, ok: bool) {
        self.store_seconds
            .get_or_create(&StoreOp { op })
            .observe(seconds);
        if !ok {
            self.store_errors.get_or_create(&StoreOp { op }).inc();
        }
    }
}

/// The route pattern of a path, without routing it again: the label of request metrics.
/// Paths carry tokens and ids, so they are never labels themselves.
pub fn route_label(path: &str) -> &'static str {
    const STATIC: [&str; 12] = [
        "/v1/invites",
        "/v1/invites/introspect",
        "/v1/invites/revoke",
        "/v1/redeem",
        "/v1/revocations",
        "/v1/settings",
        "/.well-known/jwks.json",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.yaml",
        "/demo/accept",
    ];
    if let Some(known) = STATIC.iter().find(|p| **p == path) {
        return known;
    }
    if path.starts_with("/i/") && !path[3..].contains('/') {
        "/i/{token}"
    } else if path.starts_with("/v1/invites/") && !path[12..].contains('/') {
        "/v1/invites/{id}"
    } else {
        "unmatched"
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
    fn route_labels_never_carry_tokens() {
        let cases = [
            ("/healthz", "/healthz"),
            ("/v1/invites", "/v1/invites"),
            ("/v1/invites/introspect", "/v1/invites/introspect"),
            ("/v1/invites/abcDEF123", "/v1/invites/{id}"),
            ("/i/eyJ.eyJ.sig", "/i/{token}"),
            ("/i/a/b", "unmatched"),
            ("/nowhere", "unmatched"),
        ];
        for (path, label) in cases {
            assert_eq!(route_label(path), label, "{path}");
        }
    }
}
