//! What the drill's clients were told and what they saw, shared by writers, readers and
//! subscribers, and judged at the end: every failure the drill can report is counted here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

/// The drill's phases, in order; latencies are kept per phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Steady,
    KillNine,
    RedisRestart,
    RollingRestart,
    Drain,
}

impl Phase {
    const ALL: [Phase; 5] = [
        Phase::Steady,
        Phase::KillNine,
        Phase::RedisRestart,
        Phase::RollingRestart,
        Phase::Drain,
    ];
}

/// A write sent, whose event subscribers should see.
pub struct Sent {
    pub at: Instant,
    /// The instance that answered it (`None` through a load balancer, or not yet known).
    pub instance: Option<usize>,
    pub phase: Phase,
}

/// One event a subscriber received, for latency: its key, when, on which instance.
pub struct Received {
    pub key: String,
    pub at: Instant,
    pub instance: Option<usize>,
}

#[derive(Default)]
pub struct Ledger {
    phase: AtomicU8,
    /// Writes sent (acknowledged or not), by event key.
    pub sent: Mutex<HashMap<String, Sent>>,
    /// Event keys of acknowledged writes: every subscriber must see each exactly once.
    pub expected: Mutex<Vec<String>>,
    /// Acknowledged comments and created articles, looked for in the database at the end.
    pub acked_comments: Mutex<Vec<String>>,
    pub acked_articles: Mutex<Vec<String>>,
    /// Reads that did not show an acknowledged write, described.
    pub stale: Mutex<Vec<String>>,
    /// Failures not explained by a killed instance, described (the first 50).
    pub errors: Mutex<Vec<String>>,
    pub error_count: AtomicU64,
    pub writes_acked: AtomicU64,
    /// Writers signed up so far.
    pub signed_up: std::sync::atomic::AtomicUsize,
    pub read_backs: AtomicU64,
    pub background_reads: AtomicU64,
    /// Requests lost because their instance was killed (`kill -9`) while they were in flight.
    pub killed_in_flight: AtomicU64,
    /// Requests that never reached an instance (connection refused) and were sent to the
    /// next one, as a load balancer does.
    pub connect_retries: AtomicU64,
    /// Write latencies (microseconds), all phases.
    pub write_us: Mutex<Vec<u64>>,
}

impl Ledger {
    pub fn phase(&self) -> Phase {
        Phase::ALL[usize::from(self.phase.load(Ordering::SeqCst))]
    }

    pub fn enter(&self, phase: Phase) {
        let index = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0);
        self.phase
            .store(u8::try_from(index).unwrap_or(0), Ordering::SeqCst);
        eprintln!("cluster drill: phase {phase:?}");
    }

    pub fn error(&self, what: String) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors.lock().expect("errors lock");
        if errors.len() < 50 {
            eprintln!("cluster drill: error: {what}");
            errors.push(what);
        }
    }

    pub fn stale(&self, what: String) {
        eprintln!("cluster drill: STALE: {what}");
        self.stale.lock().expect("stale lock").push(what);
    }

    /// A write about to be sent: remember when, for its event's latency.
    pub fn sending(&self, key: &str) {
        let sent = Sent {
            at: Instant::now(),
            instance: None,
            phase: self.phase(),
        };
        self.sent
            .lock()
            .expect("sent lock")
            .insert(key.to_owned(), sent);
    }

    /// The write of `key` was acknowledged by `instance`.
    pub fn acknowledged(&self, key: &str, instance: Option<usize>) {
        self.writes_acked.fetch_add(1, Ordering::Relaxed);
        if let Some(sent) = self.sent.lock().expect("sent lock").get_mut(key) {
            sent.instance = instance;
            let micros = sent.at.elapsed().as_micros();
            self.write_us
                .lock()
                .expect("write lock")
                .push(u64::try_from(micros).unwrap_or(u64::MAX));
        }
        self.expected
            .lock()
            .expect("expected lock")
            .push(key.to_owned());
    }
}
