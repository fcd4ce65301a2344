//! Logging through `tracing-subscriber`: human-readable in development, JSON lines in
//! production. `RUST_LOG` filters (default `info`).
//!
//! Lines are formatted on the thread that logs and written to stdout by a thread of their own,
//! which writes whatever has queued up in one go: a worker never waits on stdout's lock or a
//! write to a slow pipe. The queue is not lossy: when it is full (16k lines), loggers wait for
//! room rather than drop lines. (Its slots are allocated up front: the library's default of 128k
//! lines cost 5.6 MiB of resident memory.)

use std::io::BufWriter;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines that may wait for the writer before loggers wait for room.
const QUEUED_LINES: usize = 16 * 1024;

/// Installs the global subscriber. Returns the guard that writes out queued lines when
/// dropped (keep it until the process ends), or `None` when a subscriber was installed
/// already: later calls do nothing, so tests may call it from every test.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(json: bool) -> Option<WorkerGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stdout()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer);
    let installed = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    installed.ok().map(|()| guard)
}
