//! Logging setup: `tracing` to stdout (stderr for sub-commands, whose stdout is their result), pretty on a terminal and JSON otherwise (or as
//! `--log-format` says), filtered by `RUST_LOG` (default `info`).
//!
//! Lines are formatted where they are logged but written by a dedicated thread
//! (tracing-appender), in batches through a buffer: no async worker waits on stdout (a slow
//! journald or a full pipe), and a busy server makes one write per batch instead of one per
//! request. Should the writer fall behind by [`BUFFERED_LINES`], new lines are dropped
//! rather than stalling requests, and counted in `log_lines_dropped_total`.

use std::io::{BufWriter, IsTerminal};
use std::sync::OnceLock;
use std::time::Duration;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::LogFormat;

/// Lines that may wait for the writer thread before new ones are dropped.
pub const BUFFERED_LINES: usize = 65_536;

/// Lines dropped because the writer fell behind (set once logging is installed).
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Keeps the writer thread running; dropping it writes out what is still queued.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _writer: Option<WorkerGuard>,
}

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
/// `to_stderr`: sub-commands log to standard error, keeping standard output for their result.
pub fn init(format: Option<LogFormat>, to_stderr: bool) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let format = format.unwrap_or(if terminal {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("quire-log")
        .finish(BufWriter::with_capacity(
            64 * 1024,
            if to_stderr {
                Box::new(std::io::stderr()) as Box<dyn std::io::Write + Send>
            } else {
                Box::new(std::io::stdout())
            },
        ));
    let dropped = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    if installed.is_err() {
        return LogGuard { _writer: None };
    }
    let _ = DROPPED.set(dropped);
    LogGuard {
        _writer: Some(guard),
    }
}

/// Publishes the dropped-line count as a metric every few seconds, for as long as the
/// runtime runs.
pub fn spawn_dropped_lines_reporter() {
    let Some(dropped) = DROPPED.get().cloned() else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            metrics::counter!("log_lines_dropped_total").absolute(dropped.dropped_lines() as u64);
        }
    });
}
