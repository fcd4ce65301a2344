//! Cooperative time slices for the HTTP workers.
//!
//! Each worker is one thread running its own event loop, and under load that loop always finds
//! another request ready, so the thread never blocks. The kernel then takes its core away only
//! on a timer tick (every 4 ms with the common `HZ=250`): every other runnable thread on that
//! core — the other workers (two per core by default), Redis, a client on the same machine —
//! waits that long, and every connection of a waiting worker waits with it. On the benchmark
//! machine that set the p99 of every phase at one or two ticks (README, Performance).
//!
//! [`at_request_start`] runs before each request. Once its thread has gone [`SLICE`] without a
//! context switch of any kind (it neither blocked nor was preempted), it yields its core with
//! `sched_yield`, which returns at once when nothing else is waiting. A worker that blocks or is
//! preempted within a slice never yields; one that is busy yields at most once per slice, at a
//! cost of one `getrusage` per slice.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long a worker runs without a context switch before it offers its core to whoever is
/// waiting. Measured with the benchmark (README, Performance): redemption p99 was 4.0–5.2 ms
/// with 250 µs or 500 µs, 5.1–7.1 ms with 150 µs, 4.8–5.6 ms with 1 ms, and 250 µs gave
/// `/healthz` the lower p99 of the two best.
pub const SLICE: Duration = Duration::from_micros(250);

/// Where this thread's current slice began, and its context-switch count then.
#[derive(Clone, Copy)]
struct Slice {
    started: Instant,
    switches: u64,
}

thread_local! {
    static CURRENT: Cell<Option<Slice>> = const { Cell::new(None) };
}

/// Called at the start of each request with the time already taken for it; yields the core
/// when this thread has run a whole [`SLICE`] without a context switch. Returns whether it
/// yielded.
pub fn at_request_start(now: Instant) -> bool {
    CURRENT.with(|current| {
        let previous = current.get();
        if let Some(slice) = previous
            && now.saturating_duration_since(slice.started) < SLICE
        {
            return false;
        }
        let Some(switches) = context_switches() else {
            return false;
        };
        let ran_unswitched = previous.is_some_and(|slice| slice.switches == switches);
        let next = if ran_unswitched {
            std::thread::yield_now();
            Slice {
                started: Instant::now(),
                switches: context_switches().unwrap_or(switches),
            }
        } else {
            Slice {
                started: now,
                switches,
            }
        };
        current.set(Some(next));
        ran_unswitched
    })
}

/// Voluntary plus involuntary context switches of the calling thread so far.
#[cfg(target_os = "linux")]
fn context_switches() -> Option<u64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_THREAD).ok()?;
    let total = usage.voluntary_context_switches() + usage.involuntary_context_switches();
    u64::try_from(total).ok()
}

/// Other systems have no per-thread count: never yield.
#[cfg(not(target_os = "linux"))]
fn context_switches() -> Option<u64> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_never_blocks_yields_once_per_slice_at_most() {
        let yields = std::thread::spawn(|| {
            // A yield that hands the core to another thread ends the slice without one, and a
            // kernel preemption resets it, so on a loaded machine not every slice yields; ten
            // yields within 5 s are certain all the same.
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut yields: Vec<Instant> = Vec::new();
            while yields.len() < 11 && Instant::now() < deadline {
                let now = Instant::now();
                if at_request_start(now) {
                    yields.push(now);
                }
            }
            yields
        })
        .join()
        .unwrap();
        assert_eq!(
            yields.len(),
            11,
            "yielded only {} times in 5 s",
            yields.len()
        );
        let gaps: Vec<Duration> = yields.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|gap| *gap >= SLICE), "{gaps:?}");
    }

    #[test]
    fn a_thread_that_blocks_within_each_slice_never_yields() {
        let yielded = std::thread::spawn(|| {
            let end = Instant::now() + Duration::from_millis(40);
            let mut yielded = 0;
            while Instant::now() < end {
                yielded += usize::from(at_request_start(Instant::now()));
                std::thread::sleep(SLICE / 4);
            }
            yielded
        })
        .join()
        .unwrap();
        assert_eq!(yielded, 0);
    }

    #[test]
    fn the_first_request_of_a_thread_never_yields() {
        let yielded = std::thread::spawn(|| at_request_start(Instant::now()))
            .join()
            .unwrap();
        assert!(!yielded);
    }
}
