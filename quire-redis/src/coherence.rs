//! Exact caches across instances: an invalidation stream and a read fence (Raft's ReadIndex,
//! with Redis as the index).
//!
//! **Writes.** After a write commits, its instance applies the invalidations locally and
//! appends them to the stream `<prefix>inv` (`XADD`, bounded length) *before* answering. If
//! Redis cannot take them within [`ANNOUNCE_DEADLINE`], the write is answered 503 (it
//! committed, but another instance might still serve what it replaced), and the next
//! announcement first appends "forget everything".
//!
//! **Reads.** A request may be served from the cache only after a fence: the instance asks
//! Redis for the stream's last id (one script, one round trip), then waits until its own
//! consumer has applied the stream up to that id. Requests that arrive while a fence is in
//! flight wait for the *next* one (an in-flight fence may predate their arrival), so one round
//! trip serves every request that arrived during the previous one. A fence that fails, or a
//! consumer that does not catch up within [`CATCH_UP`], sends the request to the store.
//!
//! **Why no acknowledged write is read stale.** Let W be acknowledged on instance A at time t,
//! so its entry is in the stream at id w before t. A read R on instance B that starts after t
//! takes a fence after t, which returns an id ≥ w (the stream is append-only; see restarts
//! below). B serves R from its cache only after its consumer applied every entry up to that id,
//! W's included; and the cache never serves a value whose load began before the invalidation
//! was applied (quire-cache's epochs). So R sees W or something newer.
//!
//! **Restarts and gaps.** Redis may lose the stream (a restart without persistence). Each
//! stream lives with a *generation*, a random token stored beside it and created by whichever
//! script first finds it missing. A fence returns the generation with the id; B serves from
//! its cache only if its consumer follows that same generation. A consumer that loses its
//! connection, or starts, forgets every cached value and resynchronises (generation and last
//! id) before fences succeed again. So a write acknowledged before Redis lost the stream can
//! only be followed by fences of a new generation, which B honours only after forgetting
//! everything it had cached.
//!
//! Left open: an instance stalled for longer than the stream's length (`MAXLEN`, 100,000
//! entries) of writes could skip trimmed entries; its fences would still time out while it
//! catches up, but values cached before the stall and invalidated by trimmed entries would
//! survive. A stall that long trips the catch-up timeout first by orders of magnitude.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use quire_cache::{Coherence, Unannounced};
use tokio::sync::{Notify, oneshot, watch};

use crate::connection::Redis;
use crate::stream::StreamId;

/// Longest a write waits for Redis to take its invalidations before it is answered 503.
const ANNOUNCE_DEADLINE: Duration = Duration::from_secs(1);
/// Longest a fence waits for Redis's answer.
const FENCE_WAIT: Duration = Duration::from_millis(250);
/// Longest a fence waits for this instance's consumer to reach the fence's id.
const CATCH_UP: Duration = Duration::from_millis(500);
/// How long a consumer's blocking read waits for new entries before asking again.
const BLOCK: Duration = Duration::from_secs(1);
/// Entries kept in the stream (approximately).
const MAX_LEN: usize = 100_000;

/// `KEYS[1]` stream, `KEYS[2]` generation; `ARGV[1]` a generation to use if none exists.
/// Returns the generation and the stream's last id (`0-0` when empty).
const FENCE_SCRIPT: &str = r"
local g = redis.call('GET', KEYS[2])
if not g then g = ARGV[1]; redis.call('SET', KEYS[2], g) end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last == 0 then return {g, '0-0'} end
return {g, last[1][1]}
";

/// As [`FENCE_SCRIPT`], then appends field `ARGV[3]` = `ARGV[4]` with `MAXLEN ~ ARGV[2]`.
/// Returns the generation and the new entry's id.
const ANNOUNCE_SCRIPT: &str = r"
local g = redis.call('GET', KEYS[2])
if not g then g = ARGV[1]; redis.call('SET', KEYS[2], g) end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', ARGV[3], ARGV[4])
return {g, id}
";

/// What the application does with invalidations read from the stream.
#[async_trait]
pub trait Invalidate: Send + Sync + 'static {
    /// Applies invalidations another instance announced (the bytes it gave `announce`).
    async fn apply(&self, invalidation: &[u8]);
    /// Forgets every cached value (this instance may have missed invalidations).
    fn forget_everything(&self);
}

/// What a fence learns from Redis: the stream's generation and last id (`None`: no answer).
type FenceAnswer = Option<(String, StreamId)>;

/// How far this instance's consumer has applied the stream.
#[derive(Debug, Clone, Default)]
struct Applied {
    /// The stream generation followed; `None` while not synchronised (fences fail).
    generation: Option<String>,
    id: StreamId,
}

/// [`Coherence`] over a Redis Stream (see the module doc).
pub struct RedisCoherence {
    redis: Arc<Redis>,
    stream: String,
    generation_key: String,
    fence_script: redis::Script,
    announce_script: redis::Script,
    applied: watch::Sender<Applied>,
    /// Requests waiting for the next fence round trip.
    waiting: Mutex<Vec<oneshot::Sender<FenceAnswer>>>,
    wake: Notify,
    /// A committed write could not be announced: announce "forget everything" first.
    missed: AtomicBool,
    /// Fault injection for drills: how long to wait before applying each batch read from
    /// the stream (a slow instance). Zero in production.
    apply_delay: Duration,
}

impl RedisCoherence {
    /// `apply_delay`: zero, except in drills that make this instance a slow follower.
    pub fn new(redis: Arc<Redis>, apply_delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            stream: redis.key("inv"),
            generation_key: redis.key("inv:generation"),
            redis,
            fence_script: redis::Script::new(FENCE_SCRIPT),
            announce_script: redis::Script::new(ANNOUNCE_SCRIPT),
            applied: watch::Sender::new(Applied::default()),
            waiting: Mutex::new(Vec::new()),
            wake: Notify::new(),
            missed: AtomicBool::new(false),
            apply_delay,
        })
    }

    /// Starts the consumer and the fence tasks; they run until the process ends.
    pub fn start(self: &Arc<Self>, target: Arc<dyn Invalidate>) {
        tokio::spawn(self.clone().consume(target));
        tokio::spawn(self.clone().fences());
    }

    /// Whether this instance follows the stream now (readiness).
    pub fn synchronised(&self) -> bool {
        self.applied.borrow().generation.is_some()
    }

    fn candidate_generation() -> String {
        format!("{:016x}", rand::random::<u64>())
    }

    async fn generation_and_last(&self) -> FenceAnswer {
        let (generation, last): (String, String) = self
            .redis
            .script(
                &self.fence_script,
                &[&self.stream, &self.generation_key],
                &[Self::candidate_generation().as_bytes()],
                "fence",
            )
            .await
            .ok()?;
        Some((generation, StreamId::parse(&last)?))
    }

    /// Answers batches of waiting fences, one round trip per batch.
    async fn fences(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            let batch = std::mem::take(&mut *self.waiting.lock().unwrap());
            if batch.is_empty() {
                continue;
            }
            let answer = self.generation_and_last().await;
            for waiter in batch {
                let _ = waiter.send(answer.clone());
            }
        }
    }

    /// Follows the stream: resynchronise (forget everything, start from the last id), then
    /// apply entries as they come; on any error, stop answering fences and start over.
    async fn consume(self: Arc<Self>, target: Arc<dyn Invalidate>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            self.applied.send_modify(|a| a.generation = None);
            let mut connection = match self.redis.dedicated(BLOCK).await {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!(error = %error, "Redis unreachable; caches bypassed until it is back");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            let Some((generation, mut last)) = self.generation_and_last().await else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            };
            target.forget_everything();
            self.applied.send_replace(Applied {
                generation: Some(generation.clone()),
                id: last,
            });
            tracing::info!(redis = %self.redis.name, %generation, "following the invalidation stream");
            backoff = Duration::from_millis(50);
            if self.missed.load(Ordering::Acquire) {
                let _ = self.announce(Vec::new()).await;
            }
            loop {
                let read = self
                    .redis
                    .read_stream(&mut connection, &self.stream, last, 512, BLOCK)
                    .await;
                let Ok(entries) = read else {
                    tracing::warn!(
                        "lost the invalidation stream; caches bypassed until it is back"
                    );
                    break;
                };
                if !entries.is_empty() && !self.apply_delay.is_zero() {
                    tokio::time::sleep(self.apply_delay).await;
                }
                for entry in entries {
                    if entry.field("f").is_some() {
                        target.forget_everything();
                    } else if let Some(invalidation) = entry.field("i") {
                        target.apply(invalidation).await;
                    }
                    last = entry.id;
                    metrics::counter!("cache_invalidations_received_total").increment(1);
                }
                self.applied.send_modify(|a| a.id = last);
            }
        }
    }
}

#[async_trait]
impl Coherence for RedisCoherence {
    async fn fence(&self) -> bool {
        if !self.synchronised() {
            metrics::counter!("cache_fences_total", "result" => "unsynchronised").increment(1);
            return false;
        }
        let (sender, receiver) = oneshot::channel();
        self.waiting.lock().unwrap().push(sender);
        self.wake.notify_one();
        let Ok(Ok(Some((generation, last)))) = tokio::time::timeout(FENCE_WAIT, receiver).await
        else {
            metrics::counter!("cache_fences_total", "result" => "failed").increment(1);
            return false;
        };
        let mut applied = self.applied.subscribe();
        let caught_up = tokio::time::timeout(
            CATCH_UP,
            applied.wait_for(|a| a.generation.as_deref() == Some(&generation) && a.id >= last),
        )
        .await;
        let ok = matches!(caught_up, Ok(Ok(_)));
        metrics::counter!("cache_fences_total", "result" => if ok { "passed" } else { "behind" })
            .increment(1);
        ok
    }

    async fn ready(&self) -> bool {
        self.synchronised() && self.redis.ping().await
    }

    async fn announce(&self, invalidation: Vec<u8>) -> Result<(), Unannounced> {
        let deadline = tokio::time::Instant::now() + ANNOUNCE_DEADLINE;
        let max_len = MAX_LEN.to_string();
        loop {
            let mut result = Ok(());
            if self.missed.load(Ordering::Acquire) {
                result = self.append(&max_len, "f", b"1").await;
                if result.is_ok() {
                    self.missed.store(false, Ordering::Release);
                }
            }
            if result.is_ok() && !invalidation.is_empty() {
                result = self.append(&max_len, "i", &invalidation).await;
            }
            match result {
                Ok(()) => return Ok(()),
                Err(error) if tokio::time::Instant::now() >= deadline => {
                    self.missed.store(true, Ordering::Release);
                    return Err(Unannounced(error.to_string()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

impl RedisCoherence {
    async fn append(&self, max_len: &str, field: &str, value: &[u8]) -> redis::RedisResult<()> {
        let _: (String, String) = self
            .redis
            .script(
                &self.announce_script,
                &[&self.stream, &self.generation_key],
                &[
                    Self::candidate_generation().as_bytes(),
                    max_len.as_bytes(),
                    field.as_bytes(),
                    value,
                ],
                "announce",
            )
            .await?;
        Ok(())
    }
}
