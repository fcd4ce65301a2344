//! Runtime tuning: what the service does only because a measurement showed it pays, kept
//! apart from the product's rules so a reader can tell the two apart. Each piece says what it
//! bought; the measurements are in docs/PERFORMANCE.md.
//!
//! - **Cooperative time slices** ([`at_request_start`], `server.yield_after_us`): under load
//!   a worker's event loop always finds another request ready, so the thread never blocks and
//!   the kernel takes its core away only on a timer tick (every 4 ms with the common
//!   `HZ=250`), while every other runnable thread on that core waits with all its
//!   connections. A worker that has run `yield_after_us` without any context switch offers
//!   its core (`sched_yield`, which returns at once when nothing waits). Bought: `/healthz`
//!   p99 under load from 6.3–8.2 ms to 1.5–2.9 ms with the client on the same cores.
//! - **Timer floor** ([`timer_floor`]): one timer per worker always due within 100 ms, so
//!   arming a store deadline never moves the runtime's wake-up (an eventfd write per store
//!   call otherwise). Bought: landing page +8–10%.
//! - **Per-thread pools**: random bytes drawn from the generator 1 KiB at a time per thread
//!   ([`random_bytes`]; each call of the generator reseeds: 3–4% of create and landing), and
//!   per-thread store connections and metrics shards (in `store::redis` and `metrics`, beside
//!   the code they serve).

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

/// Default of `server.yield_after_us`, chosen from paired benchmarks (docs/PERFORMANCE.md).
pub const DEFAULT_YIELD_AFTER_US: u64 = 250;

/// What the slice decision needs of the thread it runs on: the clock, the thread's count of
/// context switches, and a way to give up the core. The service uses the real thread; tests
/// inject their own, so no test depends on how the kernel schedules threads.
pub trait Thread {
    /// Now.
    fn now(&self) -> Instant;
    /// Voluntary plus involuntary context switches of this thread so far, if the system
    /// counts them per thread.
    fn context_switches(&self) -> Option<u64>;
    /// Offers the core to other runnable threads.
    fn yield_now(&self);
}

/// Where a thread's current slice began, and its context-switch count then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    started: Instant,
    switches: u64,
}

/// The slice decision for one request: yields when the previous slice lasted at least
/// `length` without a context switch. Returns the next slice and whether it yielded. Within a
/// slice it touches nothing but the clock reading it was given; at a slice's end it reads the
/// switch count once (twice after a yield, which starts a new slice).
pub fn decide(
    previous: Option<Slice>,
    now: Instant,
    length: Duration,
    thread: &impl Thread,
) -> (Option<Slice>, bool) {
    if let Some(slice) = previous
        && now.saturating_duration_since(slice.started) < length
    {
        return (previous, false);
    }
    let Some(switches) = thread.context_switches() else {
        return (previous, false);
    };
    if previous.is_some_and(|slice| slice.switches == switches) {
        thread.yield_now();
        let next = Slice {
            started: thread.now(),
            switches: thread.context_switches().unwrap_or(switches),
        };
        return (Some(next), true);
    }
    (
        Some(Slice {
            started: now,
            switches,
        }),
        false,
    )
}

/// The thread the service runs on.
struct RealThread;

impl Thread for RealThread {
    fn now(&self) -> Instant {
        Instant::now()
    }

    #[cfg(target_os = "linux")]
    fn context_switches(&self) -> Option<u64> {
        use nix::sys::resource::{UsageWho, getrusage};
        let usage = getrusage(UsageWho::RUSAGE_THREAD).ok()?;
        let total = usage.voluntary_context_switches() + usage.involuntary_context_switches();
        u64::try_from(total).ok()
    }

    /// Other systems have no per-thread count: never yield.
    #[cfg(not(target_os = "linux"))]
    fn context_switches(&self) -> Option<u64> {
        None
    }

    fn yield_now(&self) {
        std::thread::yield_now();
    }
}

thread_local! {
    /// This worker's slice length; zero (the default, and `yield_after_us = 0`) never yields.
    static SLICE_LENGTH: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    /// This worker's current slice.
    static CURRENT: Cell<Option<Slice>> = const { Cell::new(None) };
}

/// Sets the calling worker's slice length (`server.yield_after_us`; 0 turns yielding off).
/// Called on each worker thread as it starts.
pub fn set_slice(yield_after_us: u64) {
    SLICE_LENGTH.with(|length| length.set(Duration::from_micros(yield_after_us)));
}

/// Called at the start of each request with the time already taken for it; yields the core
/// when this worker has run a whole slice without a context switch. Returns whether it did.
pub fn at_request_start(now: Instant) -> bool {
    let length = SLICE_LENGTH.with(Cell::get);
    if length.is_zero() {
        return false;
    }
    CURRENT.with(|current| {
        let (next, yielded) = decide(current.get(), now, length, &RealThread);
        current.set(next);
        yielded
    })
}

/// The period of [`timer_floor`]: well inside the store timeout, at most 100 ms.
pub fn timer_floor_period(store_timeout_ms: u64) -> Duration {
    Duration::from_millis((store_timeout_ms / 2).clamp(1, 100))
}

/// Keeps a timer of this worker's runtime due within `period`, for as long as the worker runs.
///
/// Every store call is bounded by a timer (`store.timeout_ms`), and tokio wakes its own I/O
/// driver (an eventfd write, a system call) whenever a timer is armed that is due sooner than
/// the driver's planned wake-up. With nothing due sooner than the store timeout that happened
/// on most store calls; with this timer always due sooner, arming a store deadline never moves
/// the wake-up, for the price of one wake-up per period.
pub async fn timer_floor(period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
    }
}

/// Bytes of this thread's random pool: the generator's output drawn 1 KiB at a time, each
/// byte handed out once and wiped as it is taken.
struct RandomPool {
    bytes: [u8; 1024],
    next: usize,
}

thread_local! {
    static RANDOM_POOL: RefCell<RandomPool> = const {
        RefCell::new(RandomPool { bytes: [0; 1024], next: 1024 })
    };
}

/// Cryptographically random bytes for ids, nonces and device ids. Each call of the
/// generator costs as much as drawing a kilobyte (it reseeds and reads the CPU's entropy
/// instruction), so these come from a per-thread pool of its output. Key material uses
/// `tokens::keyring::secret_bytes`.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    const { assert!(N <= 1024) };
    RANDOM_POOL.with(|pool| {
        let pool = &mut *pool.borrow_mut();
        if pool.bytes.len() - pool.next < N {
            aws_lc_rs::rand::fill(&mut pool.bytes).expect("the system random source is available");
            pool.next = 0;
        }
        let taken = &mut pool.bytes[pool.next..pool.next + N];
        let mut out = [0u8; N];
        out.copy_from_slice(taken);
        taken.fill(0);
        pool.next += N;
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread whose clock, switch count and yields the test controls.
    struct FakeThread {
        now: Cell<Instant>,
        switches: Cell<Option<u64>>,
        yields: Cell<u32>,
        /// Time a yield takes, and whether another thread ran meanwhile (a switch).
        yield_takes: Duration,
        yield_switches: bool,
    }

    impl FakeThread {
        fn new() -> Self {
            Self {
                now: Cell::new(Instant::now()),
                switches: Cell::new(Some(0)),
                yields: Cell::new(0),
                yield_takes: Duration::ZERO,
                yield_switches: false,
            }
        }

        fn advance(&self, by: Duration) {
            self.now.set(self.now.get() + by);
        }

        fn switch(&self) {
            self.switches.set(self.switches.get().map(|n| n + 1));
        }
    }

    impl Thread for FakeThread {
        fn now(&self) -> Instant {
            self.now.get()
        }
        fn context_switches(&self) -> Option<u64> {
            self.switches.get()
        }
        fn yield_now(&self) {
            self.yields.set(self.yields.get() + 1);
            self.advance(self.yield_takes);
            if self.yield_switches {
                self.switch();
            }
        }
    }

    const SLICE: Duration = Duration::from_micros(250);

    /// Runs `requests` requests `gap` apart on `thread`, calling `between` after each; returns
    /// the times at which a request yielded.
    fn run(
        thread: &FakeThread,
        requests: usize,
        gap: Duration,
        between: impl Fn(&FakeThread),
    ) -> Vec<Instant> {
        let mut slice = None;
        let mut yields = Vec::new();
        for _ in 0..requests {
            let now = thread.now();
            let (next, yielded) = decide(slice, now, SLICE, thread);
            slice = next;
            if yielded {
                yields.push(now);
            }
            thread.advance(gap);
            between(thread);
        }
        yields
    }

    #[test]
    fn a_busy_thread_yields_once_per_slice() {
        let thread = FakeThread::new();
        // 1,000 requests 50 µs apart: 50 ms of running, never switched.
        let yields = run(&thread, 1000, Duration::from_micros(50), |_| {});
        // The first slice starts at the first request; each later one at the previous yield.
        assert_eq!(yields.len(), 199);
        assert_eq!(thread.yields.get(), 199);
        let gaps: Vec<Duration> = yields.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|gap| *gap == SLICE), "{gaps:?}");
    }

    #[test]
    fn a_thread_that_switches_within_each_slice_never_yields() {
        let thread = FakeThread::new();
        let requests = Cell::new(0u32);
        let yields = run(&thread, 1000, Duration::from_micros(50), |t| {
            // Blocks (or is preempted) once every 4 requests, 200 µs: every slice has a switch.
            requests.set(requests.get() + 1);
            if requests.get().is_multiple_of(4) {
                t.switch();
            }
        });
        assert_eq!(yields.len(), 0);
        assert_eq!(thread.yields.get(), 0);
    }

    #[test]
    fn a_switch_in_a_slice_spares_only_that_slice() {
        let thread = FakeThread::new();
        let mut slice = None;
        let start = thread.now();
        // First request starts a slice; one switch happens within it.
        (slice, _) = decide(slice, start, SLICE, &thread);
        thread.switch();
        thread.advance(SLICE);
        let (next, yielded) = decide(slice, thread.now(), SLICE, &thread);
        assert!(!yielded, "the slice had a switch");
        slice = next;
        thread.advance(SLICE);
        let (_, yielded) = decide(slice, thread.now(), SLICE, &thread);
        assert!(yielded, "the next slice had none");
    }

    #[test]
    fn the_first_request_of_a_thread_never_yields() {
        let thread = FakeThread::new();
        let (slice, yielded) = decide(None, thread.now(), SLICE, &thread);
        assert!(!yielded);
        assert_eq!(
            slice,
            Some(Slice {
                started: thread.now(),
                switches: 0
            })
        );
    }

    #[test]
    fn within_a_slice_nothing_is_read() {
        struct Untouchable(Instant);
        impl Thread for Untouchable {
            fn now(&self) -> Instant {
                unreachable!("no clock read within a slice")
            }
            fn context_switches(&self) -> Option<u64> {
                unreachable!("no getrusage within a slice")
            }
            fn yield_now(&self) {
                unreachable!()
            }
        }
        let start = Instant::now();
        let slice = Some(Slice {
            started: start,
            switches: 7,
        });
        let thread = Untouchable(start);
        let (next, yielded) = decide(slice, start + SLICE / 2, SLICE, &thread);
        assert_eq!((next, yielded), (slice, false));
        let _ = thread.0;
    }

    #[test]
    fn after_a_yield_the_next_slice_starts_when_the_yield_returns() {
        let thread = FakeThread {
            yield_takes: Duration::from_millis(4),
            yield_switches: true,
            ..FakeThread::new()
        };
        let start = thread.now();
        let (slice, _) = decide(None, start, SLICE, &thread);
        thread.advance(SLICE);
        let (slice, yielded) = decide(slice, thread.now(), SLICE, &thread);
        assert!(yielded);
        assert_eq!(
            slice,
            Some(Slice {
                started: start + SLICE + Duration::from_millis(4),
                switches: 1
            }),
            "the switch the yield made does not spare the next slice's check"
        );
        thread.advance(SLICE);
        let (_, yielded) = decide(slice, thread.now(), SLICE, &thread);
        assert!(yielded, "a whole slice without a switch since the yield");
    }

    #[test]
    fn without_a_switch_count_a_thread_never_yields() {
        let thread = FakeThread::new();
        thread.switches.set(None);
        let yields = run(&thread, 100, Duration::from_micros(100), |_| {});
        assert!(yields.is_empty());
        assert_eq!(thread.yields.get(), 0);
    }

    #[test]
    fn a_slice_length_of_zero_turns_yielding_off() {
        std::thread::spawn(|| {
            set_slice(0);
            let start = Instant::now();
            // With the real thread and clock: off means no decision at all, whatever the time.
            (0..100).all(|i| !at_request_start(start + SLICE * i))
        })
        .join()
        .map(|never| assert!(never))
        .unwrap();
    }

    #[test]
    fn pooled_random_bytes_are_never_handed_out_twice() {
        // 16 KiB in draws of 16 and 24 bytes: sixteen refills of the 1 KiB pool, at offsets
        // that do not divide it.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..640 {
            assert!(seen.insert(random_bytes::<16>().to_vec()));
            assert!(seen.insert(random_bytes::<24>().to_vec()));
        }
        assert_ne!(random_bytes::<1024>(), random_bytes::<1024>());
        // The pool wipes what it hands out.
        RANDOM_POOL.with(|pool| {
            let pool = pool.borrow();
            assert!(pool.bytes[..pool.next].iter().all(|&b| b == 0));
        });
    }
}
