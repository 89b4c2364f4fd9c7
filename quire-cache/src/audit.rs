//! Watching the caches in production, the way Meta's Polaris watches TAO's: a sampled
//! fraction of cache hits is read again from the store, off the request path, and compared
//! with what was served. A difference that outlives every write that could explain it is a
//! *mismatch*: counted in `cache_audits_total{cache, result="mismatch"}` and logged with the
//! cache's name and the key (never the value: the users cache holds password hashes).
//!
//! A difference alone proves nothing: a write may have committed between the hit and the
//! re-read, and its invalidation may still be on its way (applied locally just after the
//! commit, or announced to the other instances within their deadline). So a difference is
//! checked again after a grace period longer than any announcement may take and a fence (so
//! every invalidation announced by then has been applied here): if the served entry is gone
//! by then, a write explained it ("raced"); if it is still cached and the store still
//! disagrees, the cache would serve it to the next reader too, and that is the mismatch.
//! Audits never delay a request; at most a few run at once and hits beyond that are
//! "skipped".

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use tokio::sync::Semaphore;

use crate::{Coherence, Entry};

/// How a sampled hit is audited.
#[derive(Debug, Clone, Copy)]
pub struct AuditSettings {
    /// Fraction of cache hits audited (0 turns audits off).
    pub sample: f64,
    /// How long a difference must outlive the hit to be a mismatch: longer than a write takes
    /// to announce its invalidations (quire-redis gives up after 1 s) and than a read replica
    /// may lag.
    pub grace: Duration,
    /// Audits running at once, across every cache; sampled hits beyond it are skipped.
    pub max_in_flight: usize,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            sample: 0.001,
            grace: Duration::from_secs(3),
            max_in_flight: 8,
        }
    }
}

/// What the store holds for a key, read again for an audit.
#[derive(Debug)]
pub enum Stored<V> {
    Value(V),
    /// The key names nothing any more (a deleted article, say).
    Absent,
    /// The store could not answer; the audit is inconclusive.
    Unknown,
}

/// A future of what the store holds, owning everything it needs.
pub type StoredFuture<V> = Pin<Box<dyn Future<Output = Stored<V>> + Send>>;

/// Reads one key from the store for an audit.
pub type Reload<K, V> = Arc<dyn Fn(K) -> StoredFuture<V> + Send + Sync>;

/// The audits' shared budget and settings; one per instance, given to every audited cache.
pub struct Auditor {
    settings: AuditSettings,
    in_flight: Arc<Semaphore>,
    coherence: Arc<dyn Coherence>,
}

impl Auditor {
    /// Audits fencing with `coherence` (the same the caches use) before they conclude.
    pub fn new(settings: AuditSettings, coherence: Arc<dyn Coherence>) -> Arc<Self> {
        Arc::new(Self {
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            settings,
            coherence,
        })
    }
}

/// One cache's audit: the shared [`Auditor`] and how to read this cache's keys again.
pub(crate) struct CacheAudit<K, V> {
    pub auditor: Arc<Auditor>,
    pub reload: Reload<K, V>,
    /// `V`'s equality (taken where `V: PartialEq` is known).
    pub same: fn(&V, &V) -> bool,
}

/// How one audit ended (the `result` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Consistent,
    Mismatch,
    Raced,
    Failed,
    Skipped,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Consistent => "consistent",
            Self::Mismatch => "mismatch",
            Self::Raced => "raced",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

impl<K, V> CacheAudit<K, V>
where
    K: Hash + Eq + Clone + Debug + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Called on every hit: samples it and, if chosen, audits it in the background.
    pub fn sample(
        &self,
        name: &'static str,
        values: &Cache<K, Arc<Entry<V>>>,
        key: &K,
        served: &Arc<Entry<V>>,
    ) {
        let settings = self.auditor.settings;
        if settings.sample <= 0.0 || rand::random::<f64>() >= settings.sample {
            return;
        }
        let Ok(permit) = self.auditor.in_flight.clone().try_acquire_owned() else {
            count(name, Outcome::Skipped);
            return;
        };
        let check = Check {
            name,
            values: values.clone(),
            key: key.clone(),
            served: served.clone(),
            reload: self.reload.clone(),
            same: self.same,
            coherence: self.auditor.coherence.clone(),
            grace: settings.grace,
        };
        tokio::spawn(async move {
            let outcome = check.run().await;
            drop(permit);
            count(name, outcome);
        });
    }
}

fn count(name: &'static str, outcome: Outcome) {
    metrics::counter!("cache_audits_total", "cache" => name, "result" => outcome.label())
        .increment(1);
}

/// One audit in flight.
struct Check<K, V> {
    name: &'static str,
    values: Cache<K, Arc<Entry<V>>>,
    key: K,
    served: Arc<Entry<V>>,
    reload: Reload<K, V>,
    same: fn(&V, &V) -> bool,
    coherence: Arc<dyn Coherence>,
    grace: Duration,
}

impl<K, V> Check<K, V>
where
    K: Hash + Eq + Clone + Debug + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    async fn run(self) -> Outcome {
        for round in 0..2 {
            let agrees = match (self.reload)(self.key.clone()).await {
                Stored::Value(stored) => (self.same)(&stored, &self.served.value),
                Stored::Absent => false,
                Stored::Unknown => return Outcome::Failed,
            };
            if agrees {
                return Outcome::Consistent;
            }
            if round == 0 {
                // Let any write that explains the difference finish invalidating, everywhere.
                tokio::time::sleep(self.grace).await;
            }
            if !self.coherence.fence().await {
                return Outcome::Failed;
            }
            if !self.still_served().await {
                return Outcome::Raced;
            }
        }
        tracing::error!(
            cache = self.name,
            key = ?self.key,
            "cache audit: a cached value differs from the store and is still being served"
        );
        Outcome::Mismatch
    }

    /// Whether the entry the audited hit served is still the one this cache would serve.
    async fn still_served(&self) -> bool {
        self.values
            .get(&self.key)
            .await
            .is_some_and(|now| Arc::ptr_eq(&now, &self.served))
    }
}
