//! The optional per-client rate limit of the participant endpoints: a token bucket per client
//! IP, per replica (so the effective limit multiplies by the replica count).
//!
//! The client is the TCP peer, unless the peer is a configured trusted proxy: then it is the
//! right-most address of `X-Forwarded-For` that is not itself a trusted proxy. Trusting the
//! header from anyone would let every request name a new client and bypass the limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::settings::{RateLimitSettings, parse_cidr};

/// Shards of the bucket table, so workers rarely wait on one another.
const SHARDS: usize = 16;
/// Buckets one shard keeps before idle (full) ones are dropped.
const SHARD_CAPACITY: usize = 8192;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by client IP.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    trusted: Vec<ipnet::IpNet>,
    shards: Vec<Mutex<HashMap<IpAddr, Bucket>>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter from validated settings.
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self {
            rate: settings.requests_per_second,
            burst: f64::from(settings.burst),
            trusted: settings
                .trusted_proxies
                .iter()
                .filter_map(|c| parse_cidr(c))
                .collect(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// The client of a request from `peer` carrying `forwarded_for`.
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in header.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if trusted(&ip) => client = ip,
                Ok(ip) => return ip,
                Err(_) => return client,
            }
        }
        client
    }

    /// Takes one token for `client`; when none is left, the seconds until one is.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u32> {
        let shard = &self.shards[shard_of(&client)];
        let mut buckets = shard.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SHARD_CAPACITY {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.rate)
            .min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / self.rate).ceil().max(1.0) as u32)
        }
    }
}

fn shard_of(ip: &IpAddr) -> usize {
    let last = match ip {
        IpAddr::V4(v4) => v4.octets()[3] as usize,
        IpAddr::V6(v6) => v6.octets()[15] as usize,
    };
    last % SHARDS
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(trusted: &[&str]) -> RateLimiter {
        RateLimiter::new(&RateLimitSettings {
            requests_per_second: 2.0,
            burst: 3,
            trusted_proxies: trusted.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn burst_then_rate() {
        let l = limiter(&[]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(ip, t0), Ok(()));
        }
        assert_eq!(l.check(ip, t0), Err(1));
        assert_eq!(
            l.check("192.0.2.2".parse().unwrap(), t0),
            Ok(()),
            "other clients are not affected"
        );
        assert_eq!(
            l.check(ip, t0 + Duration::from_millis(500)),
            Ok(()),
            "one token back after 1/rate"
        );
        assert!(l.check(ip, t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let l = limiter(&["10.0.0.0/8"]);
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        let cases = [
            (stranger, Some("203.0.113.9"), "198.51.100.7"),
            (proxy, None, "10.1.2.3"),
            (proxy, Some("203.0.113.9"), "203.0.113.9"),
            (proxy, Some("6.6.6.6, 203.0.113.9, 10.0.0.5"), "203.0.113.9"),
            (proxy, Some("garbage, 10.0.0.5"), "10.0.0.5"),
        ];
        for (peer, header, expected) in cases {
            assert_eq!(
                l.client(peer, header).to_string(),
                expected,
                "{peer} {header:?}"
            );
        }
    }
}
