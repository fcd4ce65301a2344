//! The optional per-client rate limit of the participant endpoints, applied per replica (so the
//! effective limit multiplies by the replica count).
//!
//! # Who the client is
//!
//! The client's address is the TCP peer, unless the peer is a configured trusted proxy: then it
//! is the right-most address of `X-Forwarded-For` that is not itself a trusted proxy, every line
//! of that header read in order as one list (RFC 9110 §5.3). A hop that is not an IP address
//! ends the walk at the last trusted hop. Trusting the header from anyone would let every
//! request name a new client and bypass the limit.
//!
//! An IPv4 address is one client; an IPv6 address counts as its /64, since a host is routinely
//! given a whole /64 and could otherwise take a fresh address for every request. IPv4-mapped
//! IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack socket reports) are their IPv4 address.
//!
//! # The limit: GCRA in a count-min table
//!
//! Each client has a "theoretical arrival time" (TAT, the generic cell rate algorithm) that each
//! admitted request moves `interval = 1 / requests_per_second` later. A request at `now` is
//! admitted when `TAT - now <= tolerance = (burst - 1) * interval`: `burst` requests at once,
//! then `requests_per_second` — a token bucket held in one number.
//!
//! TATs live in a table allocated once: two rows of [`ROW_SLOTS`] atomic counters, nanoseconds
//! since the limiter was built. A client has one slot in each row, picked by a hash keyed at
//! random per process, and its effective TAT is the smaller of the two (a count-min sketch
//! with conservative update):
//! - admitted: `new = max(effective, now) + interval`; each slot becomes `max(slot, new)`;
//! - refused: nothing is written; `Retry-After` is `ceil((effective - tolerance - now) / 1 s)`,
//!   at least 1.
//!
//! Slots only ever grow and other clients can only raise a shared slot, so a collision can
//! make a client look busier but never lets anyone past their own rate. To slow a client down,
//! others must keep BOTH of its slots busy, and without the key nobody can tell which slots
//! those are. Nothing is ever cleaned up: a slot is idle again once `now` passes its TAT. A
//! request costs one hash and a few atomic operations, and the memory is the table, however
//! many clients there are.
//!
//! Concurrent requests take no lock. A request first raises its larger slot to `new`, then
//! commits with a compare-exchange of its smaller slot from the value it read to `new`; a
//! commit therefore acts on the client's effective TAT as it is at that moment, and a request
//! that lost a race reads again. (A lost race may leave the larger slot raised: stricter, never
//! more lenient.)

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::settings::{RateLimitSettings, parse_cidr};

/// Slots in each of the table's two rows (2 × 2^16 × 8 bytes = 1 MiB per replica). Only
/// admitted requests fill slots, so to make a fraction `f` of each row busy, and refuse a
/// stranger's first request with probability about `f²`, an attacker must be admitted about
/// `f × ROW_SLOTS × requests_per_second` times a second from as many distinct clients (IPv4
/// addresses or IPv6 /64s). A power of two, so an index is a mask of hash bits.
pub const ROW_SLOTS: usize = 1 << 16;

/// Selects a slot of one row from hash bits.
const ROW_MASK: u64 = ROW_SLOTS as u64 - 1;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Whom a limit applies to: an IPv4 address, or the /64 network of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 client, IPv4-mapped IPv6 addresses included.
    V4(Ipv4Addr),
    /// The first 64 bits of an IPv6 client's address: one host may hold them all.
    V6Net(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => Self::V6Net((v6.to_bits() >> 64) as u64),
        }
    }
}

/// Per-client GCRA in a fixed-size table (see the module doc). `S` keys the slot hash: random
/// per process in service, fixed in unit tests so they are deterministic.
pub struct RateLimiter<S = RandomState> {
    /// Nanoseconds between admitted requests at the sustained rate.
    interval: u64,
    /// How far, in nanoseconds, a client's TAT may run ahead of now: `(burst - 1) * interval`.
    tolerance: u64,
    /// Proxies whose `X-Forwarded-For` is believed.
    trusted: Vec<ipnet::IpNet>,
    /// Zero of the slots' clock; keeps TATs in a `u64` of nanoseconds.
    origin: Instant,
    /// The TATs: row 0, then row 1. Allocated once and never resized.
    table: Box<[AtomicU64]>,
    /// The keyed hash that picks a client's slots; never printed.
    hasher: S,
}

impl<S> std::fmt::Debug for RateLimiter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("interval_ns", &self.interval)
            .field("tolerance_ns", &self.tolerance)
            .field("trusted", &self.trusted)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter from validated settings, its slot hash keyed at random (std seeds
    /// `RandomState` from the operating system).
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self::with_hasher(settings, RandomState::new())
    }
}

impl<S: BuildHasher> RateLimiter<S> {
    fn with_hasher(settings: &RateLimitSettings, hasher: S) -> Self {
        // Settings bound the rate to (0, 100_000], so the interval is at least 10 µs. The
        // float-to-integer cast saturates; arithmetic on times saturates rather than wraps.
        let interval =
            ((NANOS_PER_SECOND as f64 / settings.requests_per_second).round() as u64).max(1);
        Self {
            interval,
            tolerance: interval.saturating_mul(u64::from(settings.burst.saturating_sub(1))),
            trusted: settings
                .trusted_proxies
                .iter()
                .filter_map(|c| parse_cidr(c))
                .collect(),
            origin: Instant::now(),
            table: (0..2 * ROW_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher,
        }
    }

    /// The client's address for a request from `peer` carrying `forwarded_for`: the values of
    /// every `X-Forwarded-For` line, in the order received.
    pub fn client<'a, I>(&self, peer: IpAddr, forwarded_for: I) -> IpAddr
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: DoubleEndedIterator,
    {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut client = peer;
        // Right to left: the last line holds the hops nearest to us.
        for line in forwarded_for.into_iter().rev() {
            for hop in line.rsplit(|&b| b == b',') {
                match parse_hop(hop) {
                    Some(ip) if self.is_trusted(ip) => client = ip,
                    Some(ip) => return ip,
                    None => return client,
                }
            }
        }
        client
    }

    /// Admits one request of `client` at `now`, or says in how many seconds one would be.
    pub fn check(&self, client: ClientKey, now: Instant) -> Result<(), u32> {
        let now = self.nanos(now);
        let [first, second] = self.slots(client).map(|i| &self.table[i]);
        loop {
            // SeqCst: a commit must be seen after the raise of the other slot that precedes it,
            // whichever slot another request reads first.
            let (a, b) = (first.load(Ordering::SeqCst), second.load(Ordering::SeqCst));
            let (least, other, tat) = if a <= b {
                (first, second, a)
            } else {
                (second, first, b)
            };
            if tat.saturating_sub(now) > self.tolerance {
                // `tat > now + tolerance` here, so this cannot underflow.
                return Err(retry_after(tat - now - self.tolerance));
            }
            let next = tat.max(now).saturating_add(self.interval);
            other.fetch_max(next, Ordering::SeqCst);
            if least
                .compare_exchange(tat, next, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return Ok(());
            }
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client's slot in each row, from disjoint bits of one keyed 64-bit hash: for anyone
    /// without the key they are as independent as two separately keyed hashes, for one hash's
    /// cost. One slot per row means a client always has two distinct slots.
    fn slots(&self, client: ClientKey) -> [usize; 2] {
        let hash = self.hasher.hash_one(client);
        [
            (hash & ROW_MASK) as usize,
            ROW_SLOTS + ((hash >> 32) & ROW_MASK) as usize,
        ]
    }

    /// `at` on the slots' clock.
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// One hop of `X-Forwarded-For`, canonical (an IPv4-mapped address as IPv4).
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop.trim_ascii()).ok()?;
    text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// `Retry-After` for a wait of `nanos`: whole seconds, rounded up, at least 1.
fn retry_after(nanos: u64) -> u32 {
    u32::try_from(nanos.div_ceil(NANOS_PER_SECOND))
        .unwrap_or(u32::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasherDefault, DefaultHasher};
    use std::time::Duration;

    use super::*;

    /// A hash with fixed keys: every test run picks the same slots.
    type FixedKeys = BuildHasherDefault<DefaultHasher>;

    const INTERVAL: Duration = Duration::from_millis(500);

    /// 2 requests per second, a burst of 3: the interval is 0.5 s and the tolerance 1 s.
    fn limiter(trusted: &[&str]) -> RateLimiter<FixedKeys> {
        RateLimiter::with_hasher(
            &RateLimitSettings {
                requests_per_second: 2.0,
                burst: 3,
                trusted_proxies: trusted.iter().map(|s| s.to_string()).collect(),
            },
            FixedKeys::default(),
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn key(text: &str) -> ClientKey {
        ip(text).into()
    }

    /// The client of a request from `peer` with these `X-Forwarded-For` lines.
    fn client_of(l: &RateLimiter<FixedKeys>, peer: &str, lines: &[&str]) -> String {
        l.client(ip(peer), lines.iter().map(|line| line.as_bytes()))
            .to_string()
    }

    #[test]
    fn burst_then_rate() {
        let l = limiter(&[]);
        let client = key("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(client, t0), Ok(()));
        }
        assert_eq!(l.check(client, t0), Err(1));
        assert_eq!(
            l.check(key("192.0.2.2"), t0),
            Ok(()),
            "other clients are not affected"
        );
        assert_eq!(
            l.check(client, t0 + INTERVAL),
            Ok(()),
            "one request more after 1/rate"
        );
        assert_eq!(l.check(client, t0 + INTERVAL), Err(1));
        assert_eq!(
            l.check(client, t0 + Duration::from_secs(10)),
            Ok(()),
            "idle clients need no cleanup"
        );
    }

    #[test]
    fn retry_after_is_the_wait_rounded_up() {
        let l = RateLimiter::with_hasher(
            &RateLimitSettings {
                requests_per_second: 0.25,
                burst: 1,
                trusted_proxies: Vec::new(),
            },
            FixedKeys::default(),
        );
        let client = key("192.0.2.1");
        let t0 = Instant::now();
        assert_eq!(l.check(client, t0), Ok(()));
        assert_eq!(l.check(client, t0), Err(4));
        assert_eq!(l.check(client, t0 + Duration::from_millis(100)), Err(4));
        assert_eq!(l.check(client, t0 + Duration::from_millis(3_100)), Err(1));
        assert_eq!(l.check(client, t0 + Duration::from_secs(4)), Ok(()));
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let l = limiter(&["10.0.0.0/8"]);
        let cases: [(&str, &[&str], &str); 7] = [
            ("198.51.100.7", &["203.0.113.9"], "198.51.100.7"),
            ("10.1.2.3", &[], "10.1.2.3"),
            ("10.1.2.3", &["203.0.113.9"], "203.0.113.9"),
            (
                "10.1.2.3",
                &["6.6.6.6, 203.0.113.9, 10.0.0.5"],
                "203.0.113.9",
            ),
            ("10.1.2.3", &["garbage, 10.0.0.5"], "10.0.0.5"),
            // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6.
            ("::ffff:10.1.2.3", &["203.0.113.9"], "203.0.113.9"),
            ("10.1.2.3", &["::ffff:203.0.113.9"], "203.0.113.9"),
        ];
        for (peer, lines, expected) in cases {
            assert_eq!(client_of(&l, peer, lines), expected, "{peer} {lines:?}");
        }
    }

    #[test]
    fn every_forwarded_for_line_is_read_as_one_list() {
        let l = limiter(&["10.0.0.0/8"]);
        let cases: [(&[&str], &str); 4] = [
            (&["6.6.6.6", "203.0.113.9", "10.0.0.5"], "203.0.113.9"),
            (&["203.0.113.9, 10.0.0.7", "10.0.0.5"], "203.0.113.9"),
            (&["203.0.113.9", "10.0.0.7, 10.0.0.5"], "203.0.113.9"),
            (&["203.0.113.9", "garbage", "10.0.0.5"], "10.0.0.5"),
        ];
        for (lines, expected) in cases {
            assert_eq!(client_of(&l, "10.1.2.3", lines), expected, "{lines:?}");
        }
        let unreadable: [&[u8]; 2] = [b"203.0.113.9", b"\xff"];
        assert_eq!(
            l.client(ip("10.1.2.3"), unreadable).to_string(),
            "10.1.2.3",
            "a line that is not text is not an address"
        );
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));

        let l = limiter(&[]);
        let t0 = Instant::now();
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:aaaa::3"] {
            assert_eq!(l.check(key(host), t0), Ok(()));
        }
        assert_eq!(
            l.check(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), t0),
            Err(1),
            "another address of the same /64"
        );
        assert_eq!(l.check(key("2001:db8:1:3::1"), t0), Ok(()), "another /64");
    }

    /// The first IPv4 client (other than `victim`) whose slot in `row` is the victim's and
    /// whose slot in the other row is not.
    fn neighbour(l: &RateLimiter<FixedKeys>, victim: ClientKey, row: usize) -> ClientKey {
        let target = l.slots(victim);
        (1..=u32::MAX)
            .map(|n| ClientKey::V4(Ipv4Addr::from(n)))
            .find(|&candidate| {
                let slots = l.slots(candidate);
                slots[row] == target[row] && slots[1 - row] != target[1 - row]
            })
            .unwrap()
    }

    #[test]
    fn collisions_only_make_a_client_look_busier() {
        let l = limiter(&[]);
        let victim = key("192.0.2.1");
        let (x, y) = (neighbour(&l, victim, 0), neighbour(&l, victim, 1));
        let t0 = Instant::now();

        // A neighbour in one slot, over its own limit, changes nothing for the victim.
        for _ in 0..3 {
            assert_eq!(l.check(x, t0), Ok(()));
        }
        assert_eq!(l.check(x, t0), Err(1));
        for _ in 0..3 {
            assert_eq!(l.check(victim, t0), Ok(()));
        }
        assert_eq!(
            l.check(victim, t0),
            Err(1),
            "and the victim keeps its own limit"
        );

        // Neighbours in both slots make the victim look as busy as they are, no busier, and
        // the victim still gets no more than its own rate.
        let t1 = t0 + Duration::from_secs(10);
        for other in [x, y] {
            for _ in 0..3 {
                assert_eq!(l.check(other, t1), Ok(()));
            }
        }
        assert_eq!(l.check(victim, t1), Err(1));
        assert_eq!(l.check(victim, t1 + INTERVAL), Ok(()));
        assert_eq!(l.check(victim, t1 + INTERVAL), Err(1));
    }

    #[test]
    fn memory_is_the_fixed_table_whatever_the_clients() {
        let l = limiter(&[]);
        let size = std::mem::size_of_val(&*l.table);
        assert_eq!(size, 2 * ROW_SLOTS * std::mem::size_of::<AtomicU64>());
        let t0 = Instant::now();
        let clients = 100_000u32;
        let served = (0..clients)
            .filter(|n| {
                l.check(ClientKey::V4(Ipv4Addr::from(0x0a00_0000 + n)), t0)
                    .is_ok()
            })
            .count();
        assert_eq!(
            std::mem::size_of_val(&*l.table),
            size,
            "the table never grows"
        );
        // A random hash serves about 99.99% of these first requests (a client is refused only
        // when both of its slots already hold three others' requests).
        assert!(
            served >= 99_000,
            "{served} of {clients} first requests served"
        );
        // An admission raises a slot at most one interval past the highest TAT, so after
        // `clients` intervals every slot is idle again, with no cleanup.
        let later = t0 + INTERVAL * clients;
        for client in [ClientKey::V4(Ipv4Addr::from(0x0a00_0000)), key("192.0.2.1")] {
            for _ in 0..3 {
                assert_eq!(l.check(client, later), Ok(()));
            }
        }
    }
}
