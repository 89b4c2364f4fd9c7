//! What the connection tasks record while the load runs: live counters for the progress
//! line, and the measured window's counters and latency histogram for the summary.
//!
//! One histogram per connection would cost ~100 KiB each (a gigabyte at 10,000 connections),
//! so connections share a few mutex-guarded shards; a lock held for one `record` is
//! uncontended in practice.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::summary::Errors;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Connect,
    Io,
    Timeout,
    Status4xx,
    Status5xx,
    StatusOther,
    Body,
}

/// Response and error counts, updated from every connection task.
#[derive(Debug, Default)]
pub struct Counters {
    responses: AtomicU64,
    errors: [AtomicU64; 7],
}

impl Counters {
    pub fn responses(&self) -> u64 {
        self.responses.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> Errors {
        let get = |kind: ErrorKind| self.errors[kind as usize].load(Ordering::Relaxed);
        Errors {
            connect: get(ErrorKind::Connect),
            io: get(ErrorKind::Io),
            timeout: get(ErrorKind::Timeout),
            status_4xx: get(ErrorKind::Status4xx),
            status_5xx: get(ErrorKind::Status5xx),
            status_other: get(ErrorKind::StatusOther),
            body: get(ErrorKind::Body),
        }
    }

    fn add_response(&self) {
        self.responses.fetch_add(1, Ordering::Relaxed);
    }

    fn add_error(&self, kind: ErrorKind) {
        self.errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Largest latency the histogram tracks exactly: one minute, in microseconds.
const MAX_LATENCY_US: u64 = 60_000_000;
const SHARDS: usize = 16;

/// Everything recorded during a run.
#[derive(Debug)]
pub struct Stats {
    /// Since the start, warm-up included: for the progress line.
    pub live: Counters,
    /// In the measured window only: for the summary.
    pub measured: Counters,
    histograms: Vec<Mutex<Histogram<u64>>>,
    /// Ids of acknowledged writes, when recorded (`--record-ids`).
    ids: Mutex<Vec<u64>>,
}

impl Stats {
    pub fn new() -> Self {
        let histograms = (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect();
        Self {
            live: Counters::default(),
            measured: Counters::default(),
            histograms,
            ids: Mutex::new(Vec::new()),
        }
    }

    /// A response after `latency`, from connection `connection`; `failure` says why it does
    /// not count as a success (see [`super::expect::Expect::judge`]).
    pub fn response(
        &self,
        connection: usize,
        failure: Option<ErrorKind>,
        latency: Duration,
        in_window: bool,
    ) {
        self.live.add_response();
        if let Some(kind) = failure {
            self.live.add_error(kind);
        }
        if !in_window {
            return;
        }
        self.measured.add_response();
        if let Some(kind) = failure {
            self.measured.add_error(kind);
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let shard = &self.histograms[connection % SHARDS];
        // A poisoned shard only means another task panicked mid-record; the counts stand.
        let mut histogram = shard.lock().unwrap_or_else(|e| e.into_inner());
        histogram.saturating_record(micros.max(1));
    }

    /// An acknowledged write's id.
    pub fn record_id(&self, id: u64) {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).push(id);
    }

    /// Every id recorded so far.
    pub fn take_ids(&self) -> Vec<u64> {
        std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A request that got no response.
    pub fn error(&self, kind: ErrorKind, in_window: bool) {
        self.live.add_error(kind);
        if in_window {
            self.measured.add_error(kind);
        }
    }

    /// The measured window's latencies, all shards merged.
    pub fn histogram(&self) -> Histogram<u64> {
        let mut merged = new_histogram();
        for shard in &self.histograms {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            // Same bounds on both sides, so adding cannot fail.
            merged.add(&*shard).expect("histograms share their bounds");
        }
        merged
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_window_reaches_the_summary() {
        let stats = Stats::new();
        stats.response(0, None, Duration::from_micros(100), false);
        stats.response(1, None, Duration::from_micros(200), true);
        stats.response(
            17,
            Some(ErrorKind::Status5xx),
            Duration::from_micros(300),
            true,
        );
        stats.response(
            2,
            Some(ErrorKind::Status4xx),
            Duration::from_micros(50),
            false,
        );
        stats.error(ErrorKind::Timeout, true);
        stats.error(ErrorKind::Connect, false);

        assert_eq!(stats.live.responses(), 4);
        assert_eq!(stats.live.errors().total(), 4);
        assert_eq!(stats.measured.responses(), 2);
        let errors = stats.measured.errors();
        assert_eq!(
            (errors.status_5xx, errors.timeout, errors.total()),
            (1, 1, 2)
        );

        let histogram = stats.histogram();
        assert_eq!(histogram.len(), 2);
        assert_eq!(histogram.min(), 200);
        assert!(histogram.max().abs_diff(300) <= 1);
    }

    #[test]
    fn absurd_latencies_saturate_instead_of_failing() {
        let stats = Stats::new();
        stats.response(0, None, Duration::from_secs(3600), true);
        stats.response(0, None, Duration::ZERO, true);
        assert_eq!(stats.histogram().len(), 2);
    }
}
