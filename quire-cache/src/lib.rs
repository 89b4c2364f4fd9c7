//! quire's read cache: [`ExactCache`], a moka cache that is exact under invalidation.
//!
//! A plain cache races with writes: a reader that missed loads the old row just before a
//! write commits, the writer invalidates, then the reader inserts the old row, and everyone
//! (the writer included) reads it stale until it expires. Here every entry remembers the
//! cache epoch at which its load *started*; every invalidation stamps its key (or the whole
//! cache) with a newer epoch; an entry older than its stamp is never served. Concurrent misses
//! for one key load once (moka's `try_get_with`).
//!
//! Invalidation is by key or by floor (everything loaded before now). Across instances, the
//! application announces its invalidations and each request passes a fence ([`Coherence`],
//! implemented over Redis by quire-redis) before any cache serves it. Knows nothing of what
//! it caches.
//!
//! A miss's load runs in a `cache.load` span (DEBUG level) naming the cache, so traces show
//! which store calls a cache made.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use moka::future::Cache;
use tracing::Instrument;

mod audit;
mod coherence;

pub use audit::{AuditSettings, Auditor, Reload, Stored, StoredFuture};
pub use coherence::{Coherence, RequestScoped, Standalone, Unannounced, admitted, request_scope};

/// How long an invalidation stamp outlives its key: far longer than any load takes.
const STAMP_TTL: Duration = Duration::from_secs(600);

pub(crate) struct Entry<V> {
    value: V,
    /// The epoch when the load that produced `value` began.
    loaded_at: u64,
}

/// A cache of `K -> V` that never returns a value loaded before the key's last invalidation.
pub struct ExactCache<K, V> {
    name: &'static str,
    values: Cache<K, Arc<Entry<V>>>,
    stamps: Cache<K, u64>,
    epoch: AtomicU64,
    floor: AtomicU64,
    /// The newest stamp any key got: an entry loaded at or after it needs no stamp lookup.
    newest_stamp: AtomicU64,
    hits: OnceLock<metrics::Counter>,
    misses: OnceLock<metrics::Counter>,
    /// When off, every read loads and nothing is kept (see [`Self::enabled`]).
    enabled: bool,
    /// Asked once per request whether cached values may be served (see [`Coherence`]).
    coherence: Arc<dyn Coherence>,
    /// Re-reads a sample of hits from the store (see [`Auditor`]); `None`: not audited.
    audit: Option<audit::CacheAudit<K, V>>,
}

impl<K, V> ExactCache<K, V>
where
    K: Hash + Eq + Clone + Debug + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache named `name` (for metrics) of at most `capacity` weight units, weighing each
    /// value with `weigh`, whose entries live at most `ttl`.
    pub fn new(
        name: &'static str,
        capacity: u64,
        ttl: Duration,
        weigh: impl Fn(&V) -> u32 + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            values: Cache::builder()
                .max_capacity(capacity)
                .weigher(move |_k, e: &Arc<Entry<V>>| weigh(&e.value).max(1))
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
            stamps: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(STAMP_TTL)
                .build(),
            epoch: AtomicU64::new(1),
            floor: AtomicU64::new(0),
            newest_stamp: AtomicU64::new(0),
            hits: OnceLock::new(),
            misses: OnceLock::new(),
            enabled: true,
            coherence: Arc::new(Standalone),
            audit: None,
        }
    }

    /// This cache's hits audited by `auditor`, which reads a key again with `reload`.
    pub fn audited(mut self, auditor: &Arc<Auditor>, reload: Reload<K, V>) -> Self
    where
        V: PartialEq,
    {
        self.audit = Some(audit::CacheAudit {
            auditor: auditor.clone(),
            reload,
            same: <V as PartialEq>::eq,
        });
        self
    }

    /// Counts a hit on `entry` and offers it to the audit.
    fn served(&self, key: &K, entry: &Arc<Entry<V>>) -> V {
        self.hit();
        if let Some(audit) = &self.audit {
            audit.sample(self.name, &self.values, key, entry);
        }
        entry.value.clone()
    }

    /// This cache kept exact across instances by `coherence`: a read it does not admit
    /// loads from the store and keeps nothing.
    pub fn coherent(mut self, coherence: Arc<dyn Coherence>) -> Self {
        self.coherence = coherence;
        self
    }

    /// Whether the current request may be served from this cache.
    async fn usable(&self) -> bool {
        self.enabled && admitted(&*self.coherence).await
    }

    /// This cache switched on or off. Off, it keeps nothing: every read is a miss that loads
    /// (for deployments where another process may write without telling this one, and to
    /// measure the store's own cost).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    async fn fresh(&self, key: &K, entry: &Entry<V>) -> bool {
        if entry.loaded_at < self.floor.load(Ordering::SeqCst) {
            return false;
        }
        // No key was stamped since this load began (the common case while nothing is being
        // written): its own stamp, if any, is older, so the lookup can be skipped.
        if entry.loaded_at >= self.newest_stamp.load(Ordering::SeqCst) {
            return true;
        }
        let stamp = self.stamps.get(key).await.unwrap_or(0);
        entry.loaded_at >= stamp
    }

    /// Counts a hit. Handles are made on first use, not in `new`: a cache may be built
    /// before the metrics recorder is installed, and a handle made then would count nowhere.
    fn hit(&self) {
        self.hits
            .get_or_init(|| metrics::counter!("cache_hits_total", "cache" => self.name))
            .increment(1);
    }

    fn miss(&self) {
        self.misses
            .get_or_init(|| metrics::counter!("cache_misses_total", "cache" => self.name))
            .increment(1);
    }

    /// The cached value, or `load()`'s (cached unless an invalidation raced with it).
    pub async fn get_or_load<E, F, Fut>(&self, key: &K, load: F) -> Result<V, E>
    where
        E: Clone + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if !self.usable().await {
            self.miss();
            return load().instrument(self.load_span()).await;
        }
        if let Some(entry) = self.values.get(key).await {
            if self.fresh(key, &entry).await {
                return Ok(self.served(key, &entry));
            }
            self.values.invalidate(key).await;
        }
        self.miss();
        self.load(key, load).instrument(self.load_span()).await
    }

    /// The span of a miss's load.
    fn load_span(&self) -> tracing::Span {
        tracing::debug_span!("cache.load", cache = self.name)
    }

    /// A miss: loads `key` once however many ask for it at once, and caches the value unless
    /// an invalidation raced with the load.
    async fn load<E, F, Fut>(&self, key: &K, load: F) -> Result<V, E>
    where
        E: Clone + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let started = self.epoch.load(Ordering::SeqCst);
        let entry = self
            .values
            .try_get_with(key.clone(), async {
                let value = load().await?;
                Ok::<_, E>(Arc::new(Entry {
                    value,
                    loaded_at: started,
                }))
            })
            .await
            .map_err(|e: Arc<E>| E::clone(&e))?;
        if self.fresh(key, &entry).await {
            return Ok(entry.value.clone());
        }
        // A write landed while this was loading: drop what we cached and read again, uncached.
        self.values.invalidate(key).await;
        load().await
    }

    /// The cached value of `key`, if fresh (for batch loading: see [`Self::insert`]).
    pub async fn get(&self, key: &K) -> Option<V> {
        if !self.usable().await {
            return None;
        }
        let entry = self.values.get(key).await?;
        if self.fresh(key, &entry).await {
            Some(self.served(key, &entry))
        } else {
            None
        }
    }

    /// The epoch to pass to [`Self::insert`]: read it *before* loading.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Caches a value loaded from a read that began at `started` (see [`Self::epoch`]). If an
    /// invalidation happened since, the value is never served.
    pub async fn insert(&self, key: K, value: V, started: u64) {
        self.miss();
        if !self.usable().await {
            return;
        }
        self.values
            .insert(
                key,
                Arc::new(Entry {
                    value,
                    loaded_at: started,
                }),
            )
            .await;
    }

    /// Forgets `key`; loads that began before this call will not be served.
    pub async fn invalidate(&self, key: &K) {
        let stamp = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.newest_stamp.fetch_max(stamp, Ordering::SeqCst);
        self.stamps.insert(key.clone(), stamp).await;
        self.values.invalidate(key).await;
    }

    /// Forgets everything; loads that began before this call will not be served.
    pub fn invalidate_all(&self) {
        let stamp = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.floor.fetch_max(stamp, Ordering::SeqCst);
        self.values.invalidate_all();
    }

    /// Forgets every entry whose value matches `predicate` (and, to stay exact for loads in
    /// flight, everything loaded before now is no longer served either).
    pub fn invalidate_where(&self, predicate: impl Fn(&V) -> bool + Send + Sync + 'static) {
        let stamp = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.floor.fetch_max(stamp, Ordering::SeqCst);
        let _ = self
            .values
            .invalidate_entries_if(move |_k, e| predicate(&e.value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn cache() -> ExactCache<u32, String> {
        ExactCache::new("test", 100, Duration::from_secs(60), |_| 1)
    }

    #[tokio::test]
    async fn caches_until_invalidated() {
        let cache = cache();
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>("v1".to_owned())
        };
        assert_eq!(cache.get_or_load(&1, load).await.unwrap(), "v1");
        assert_eq!(cache.get_or_load(&1, load).await.unwrap(), "v1");
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        cache.invalidate(&1).await;
        cache.get_or_load(&1, load).await.unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        cache.invalidate_all();
        cache.get_or_load(&1, load).await.unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_disabled_cache_loads_every_time_and_keeps_nothing() {
        let cache = cache().enabled(false);
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>("v".to_owned())
        };
        cache.get_or_load(&1, load).await.unwrap();
        cache.get_or_load(&1, load).await.unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        cache.insert(2, "w".to_owned(), cache.epoch()).await;
        assert_eq!(cache.get(&2).await, None);
    }

    #[tokio::test]
    async fn invalidating_one_key_keeps_serving_the_others() {
        let cache = cache();
        let loads = AtomicUsize::new(0);
        let load = |v: &'static str| {
            let loads = &loads;
            move || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(v.to_owned())
            }
        };
        cache.get_or_load(&1, load("one")).await.unwrap();
        cache.get_or_load(&2, load("two")).await.unwrap();
        cache.invalidate(&1).await;
        // Key 2 was loaded before the newest stamp: its own (absent) stamp is looked up.
        assert_eq!(cache.get_or_load(&2, load("2!")).await.unwrap(), "two");
        assert_eq!(cache.get_or_load(&1, load("1!")).await.unwrap(), "1!");
        assert_eq!(cache.get(&1).await.as_deref(), Some("1!"));
        assert_eq!(loads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_load_that_races_an_invalidation_is_not_served_later() {
        let cache = Arc::new(cache());
        let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let gates = std::sync::Mutex::new(Some((entered_tx, release_rx)));
        let slow = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_load(&7, || {
                        let gate = gates.lock().unwrap().take();
                        async move {
                            if let Some((entered, release)) = gate {
                                // Reads the old row, then stalls until the write is done.
                                entered.send(()).unwrap();
                                release.await.unwrap();
                                return Ok::<_, ()>("old".to_owned());
                            }
                            Ok("new".to_owned())
                        }
                    })
                    .await
            })
        };
        entered_rx.await.unwrap();
        // The write commits and invalidates while the slow load is in flight.
        cache.invalidate(&7).await;
        release_tx.send(()).unwrap();
        assert_eq!(
            slow.await.unwrap().unwrap(),
            "new",
            "the racing reader reloads"
        );
        let after = cache
            .get_or_load(&7, || async { Ok::<_, ()>("new".to_owned()) })
            .await;
        assert_eq!(after.unwrap(), "new");
    }

    #[tokio::test]
    async fn concurrent_misses_load_once() {
        let cache = Arc::new(cache());
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (cache, loads) = (cache.clone(), loads.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load(&3, || {
                            let loads = loads.clone();
                            async move {
                                loads.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                Ok::<_, ()>("v".to_owned())
                            }
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), "v");
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }
}
