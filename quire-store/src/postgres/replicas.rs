//! Read replicas: which connection may serve a read so that nobody reads older data than
//! this instance has already acknowledged.
//!
//! The rule is one number, the **fence**: the WAL position just past the newest write this
//! instance committed (read with `pg_current_wal_lsn()` on the writing connection, after
//! commit, before the write returns). A read goes to a replica only if the replica has
//! replayed at least up to the fence; otherwise it goes to the primary. Because the fence
//! rises before a write is acknowledged (and before the caches forget what it changed), every
//! read that starts after an acknowledged write sees it: the writer reads its own writes, and
//! a cache entry refilled after an invalidation is never loaded from a replica that has not
//! yet replayed the write behind the invalidation.
//!
//! A monitor polls every [`POLL`]: the primary's WAL position (kept for a while as a time
//! series) and each replica's replay position. A replica that does not answer, is not in
//! recovery, or whose replay is behind what the primary had written [`ReplicaOptions::max_lag`]
//! ago is skipped until it catches up. When a replica's last known position is behind the
//! fence, the read asks the replica itself (one short query on the connection it would use)
//! before falling back to the primary, so replicas stay useful under a steady write load.
//!
//! If the fence cannot be read after a commit (the connection broke just then), reads go to
//! the primary until the monitor has sampled the primary's position after that moment.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::Object;

use super::pool::{PgOptions, PgPool, connection_config, get_quickly, redact};
use crate::StoreResult;

/// How often the monitor samples the primary's and the replicas' WAL positions.
pub const POLL: Duration = Duration::from_millis(100);

/// The WAL position, as a byte offset, that `expression` gives.
fn lsn_query(expression: &str) -> String {
    format!("SELECT pg_wal_lsn_diff({expression}, '0/0')::int8")
}

/// Settings of the replica set.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaOptions {
    /// A replica whose replay is behind what the primary had written this long ago is skipped.
    pub max_lag: Duration,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        Self {
            max_lag: Duration::from_secs(1),
        }
    }
}

/// One replica and what the monitor last learned of it.
struct Replica {
    /// The URL with its password hidden, for logs and metric labels.
    name: String,
    pool: PgPool,
    /// WAL position it had replayed when last asked.
    replayed: AtomicU64,
    /// Answering and not lagging past the limit.
    usable: AtomicBool,
}

/// The replicas of one primary and the fence that decides which reads they may serve.
pub struct Replicas {
    replicas: Vec<Arc<Replica>>,
    fence: AtomicU64,
    /// Writes whose fence could not be read; reads avoid replicas while it is ahead of
    /// `cleared`.
    unknown_fences: AtomicU64,
    /// The value of `unknown_fences` the monitor last covered with a primary sample.
    cleared: AtomicU64,
    next: AtomicUsize,
}

impl Replicas {
    /// Pools for each replica URL (connections are made on first use; a replica that is down
    /// at start is skipped until it answers).
    pub fn new(urls: &[String], options: &PgOptions) -> StoreResult<Arc<Self>> {
        let replicas = urls
            .iter()
            .map(|url| {
                let config = connection_config(url, options)?;
                Ok(Arc::new(Replica {
                    name: redact(url),
                    pool: PgPool::new(config, options, false)?,
                    replayed: AtomicU64::new(0),
                    usable: AtomicBool::new(false),
                }))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Arc::new(Self {
            replicas,
            fence: AtomicU64::new(0),
            unknown_fences: AtomicU64::new(0),
            cleared: AtomicU64::new(0),
            next: AtomicUsize::new(0),
        }))
    }

    /// Raises the fence after a committed write, reading the WAL position on the connection
    /// that wrote. Never fails the (already committed) write.
    pub async fn wrote(&self, client: &Object) {
        match client
            .query_one(&lsn_query("pg_current_wal_lsn()"), &[])
            .await
        {
            Ok(row) => {
                let lsn: i64 = row.get(0);
                self.fence.fetch_max(lsn as u64, Ordering::AcqRel);
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the WAL position after a write; reads use the primary until the next sample");
                self.unknown_fences.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// A connection to a replica that has replayed up to the fence, if one is usable now.
    pub async fn reader(&self) -> Option<Object> {
        if self.unknown_fences.load(Ordering::Acquire) != self.cleared.load(Ordering::Acquire) {
            return None;
        }
        let fence = self.fence.load(Ordering::Acquire);
        let count = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for offset in 0..count {
            let replica = &self.replicas[(start + offset) % count];
            if !replica.usable.load(Ordering::Acquire) {
                continue;
            }
            let Ok(client) = replica.pool.get_quickly().await else {
                continue;
            };
            if replica.replayed.load(Ordering::Acquire) >= fence {
                return Some(client);
            }
            // Its last known position is behind: ask it, on the connection the read would use.
            match client
                .query_one(&lsn_query("pg_last_wal_replay_lsn()"), &[])
                .await
            {
                Ok(row) => {
                    let Some(replayed) = row.get::<_, Option<i64>>(0) else {
                        continue;
                    };
                    replica
                        .replayed
                        .fetch_max(replayed as u64, Ordering::AcqRel);
                    if replayed as u64 >= fence {
                        return Some(client);
                    }
                }
                Err(_) => continue,
            }
        }
        None
    }

    /// Polls the primary and every replica until the store is dropped.
    pub fn spawn_monitor(
        self: &Arc<Self>,
        primary: &PgPool,
        options: ReplicaOptions,
    ) -> tokio::task::AbortHandle {
        let replicas = Arc::downgrade(self);
        let primary = primary.shared();
        tokio::spawn(async move {
            let mut history = History::new(options.max_lag + POLL * 10);
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(replicas) = replicas.upgrade() else {
                    return;
                };
                let unknown = replicas.unknown_fences.load(Ordering::Acquire);
                if let Some(lsn) = sample_primary(&primary).await {
                    history.push(Instant::now(), lsn);
                    if unknown != replicas.cleared.load(Ordering::Acquire) {
                        // Every write whose fence was lost committed before this sample.
                        replicas.fence.fetch_max(lsn, Ordering::AcqRel);
                        replicas.cleared.fetch_max(unknown, Ordering::AcqRel);
                    }
                }
                for replica in &replicas.replicas {
                    check(replica, &history, options.max_lag).await;
                }
            }
        })
        .abort_handle()
    }
}

async fn sample_primary(primary: &deadpool_postgres::Pool) -> Option<u64> {
    let client = get_quickly(primary).await.ok()?;
    let row = client
        .query_one(&lsn_query("pg_current_wal_lsn()"), &[])
        .await
        .ok()?;
    Some(row.get::<_, i64>(0) as u64)
}

/// Asks one replica how far it has replayed and decides whether it may serve reads.
async fn check(replica: &Replica, history: &History, max_lag: Duration) {
    let replayed = match replica.pool.get_quickly().await {
        Ok(client) => match client
            .query_one(&lsn_query("pg_last_wal_replay_lsn()"), &[])
            .await
        {
            Ok(row) => row.get::<_, Option<i64>>(0).map(|lsn| lsn as u64),
            Err(_) => None,
        },
        Err(_) => None,
    };
    let (usable, lag) = match replayed {
        None => (false, None),
        Some(replayed) => {
            replica.replayed.fetch_max(replayed, Ordering::AcqRel);
            let lag = history.lag(replayed, Instant::now());
            (lag <= max_lag, Some(lag))
        }
    };
    let was = replica.usable.swap(usable, Ordering::AcqRel);
    if was != usable {
        match (usable, lag) {
            (true, _) => tracing::info!(replica = %replica.name, "replica serves reads"),
            (false, Some(lag)) => {
                tracing::warn!(replica = %replica.name, lag_ms = lag.as_millis() as u64, "replica lags; reads go elsewhere")
            }
            (false, None) => {
                tracing::warn!(replica = %replica.name, "replica does not answer (or is not a replica); reads go elsewhere")
            }
        }
    }
    metrics::gauge!("store_replica_usable", "replica" => replica.name.clone()).set(if usable {
        1.0
    } else {
        0.0
    });
    if let Some(lag) = lag {
        metrics::gauge!("store_replica_lag_seconds", "replica" => replica.name.clone())
            .set(lag.as_secs_f64());
    }
}

/// The primary's WAL position over the last while, to turn a replica's replay position into
/// a lag in time: how long ago the primary had written the first byte the replica lacks.
struct History {
    samples: VecDeque<(Instant, u64)>,
    keep: Duration,
}

impl History {
    fn new(keep: Duration) -> Self {
        Self {
            samples: VecDeque::new(),
            keep,
        }
    }

    fn push(&mut self, at: Instant, lsn: u64) {
        let samples = &mut self.samples;
        samples.push_back((at, lsn));
        while samples
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > self.keep)
        {
            samples.pop_front();
        }
    }

    /// Time since the oldest sample the replica had not replayed; zero if it has replayed
    /// everything sampled. Past the kept history the lag is at least the history's length.
    fn lag(&self, replayed: u64, now: Instant) -> Duration {
        match self.samples.iter().find(|(_, lsn)| *lsn > replayed) {
            None => Duration::ZERO,
            Some((at, _)) => now.duration_since(*at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_oldest_write_not_replayed() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(10));
        history.push(start, 100);
        history.push(start + Duration::from_secs(1), 200);
        history.push(start + Duration::from_secs(2), 300);
        let now = start + Duration::from_secs(3);
        assert_eq!(history.lag(300, now), Duration::ZERO);
        assert_eq!(history.lag(250, now), Duration::from_secs(1));
        assert_eq!(history.lag(150, now), Duration::from_secs(2));
        assert_eq!(history.lag(0, now), Duration::from_secs(3));
    }

    #[test]
    fn old_samples_are_forgotten() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(2));
        for s in 0..10 {
            history.push(start + Duration::from_secs(s), s * 100);
        }
        assert_eq!(history.samples.len(), 3);
    }
}
