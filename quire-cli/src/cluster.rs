//! Joining the other instances: with `--redis`, the live event bus, the caches' coherence and
//! the rate-limit buckets go through Redis (quire-redis); without it, this instance stands
//! alone (in-process bus, [`Standalone`] coherence, in-process buckets).

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use quire_app::{App, EventBus, InProcessBus};
use quire_cache::{Coherence, Standalone};
use quire_http::rate_limit::{Rate, SharedAnswer, SharedBuckets};
use quire_redis::{Bucket, Invalidate, Redis, RedisBuckets, RedisBus, RedisCoherence};

use crate::Settings;

/// The event bus and cache coherence of this instance.
pub struct Cluster {
    pub events: Arc<dyn EventBus>,
    pub coherence: Arc<dyn Coherence>,
    /// Rate-limit buckets shared by every instance (none: in-process only).
    pub buckets: Option<Arc<dyn SharedBuckets>>,
    redis: Option<Arc<RedisCoherence>>,
}

impl Cluster {
    /// Connects to Redis when configured (a wrong URL or an unreachable server stops the
    /// start); `local` delivers events to this instance's subscribers.
    pub async fn join(settings: &Settings, local: Arc<InProcessBus>) -> anyhow::Result<Self> {
        let Some(url) = &settings.redis else {
            return Ok(Self {
                events: local,
                coherence: Arc::new(Standalone),
                buckets: None,
                redis: None,
            });
        };
        let redis = Arc::new(
            Redis::connect(url, &settings.redis_prefix)
                .await
                .map_err(anyhow::Error::msg)
                .context("cannot use --redis")?,
        );
        tracing::info!(redis = %redis.name, prefix = %settings.redis_prefix, "joined the instances sharing Redis");
        let coherence = RedisCoherence::new(redis.clone(), settings.redis_apply_delay);
        let events = RedisBus::start(redis.clone(), local, settings.live_backlog)
            .await
            .map_err(anyhow::Error::msg)
            .context("cannot use --redis")?;
        Ok(Self {
            buckets: Some(Arc::new(SharedRateLimits(RedisBuckets::new(redis.clone())))),
            events,
            coherence: coherence.clone(),
            redis: Some(coherence),
        })
    }

    /// Starts following the other instances' invalidations into `app`'s caches.
    pub fn start(&self, app: &Arc<App>) {
        if let Some(coherence) = &self.redis {
            coherence.start(Arc::new(AppCaches(app.clone())));
        }
    }
}

/// `App`'s caches as the target of announced invalidations.
struct AppCaches(Arc<App>);

#[async_trait]
impl Invalidate for AppCaches {
    async fn apply(&self, invalidation: &[u8]) {
        self.0.apply_announced(invalidation).await;
    }

    fn forget_everything(&self) {
        self.0.forget_everything();
    }
}

/// The Redis buckets as the HTTP layer's shared rate limits.
struct SharedRateLimits(RedisBuckets);

#[async_trait]
impl SharedBuckets for SharedRateLimits {
    async fn check(&self, buckets: &[(String, Rate)]) -> Result<Vec<SharedAnswer>, String> {
        let buckets: Vec<Bucket> = buckets
            .iter()
            .map(|(key, rate)| Bucket {
                key: key.clone(),
                interval: rate.period / rate.count.max(1),
                burst: rate.burst,
            })
            .collect();
        Ok(self
            .0
            .check(&buckets)
            .await?
            .into_iter()
            .map(|a| SharedAnswer {
                allowed: a.allowed,
                remaining: a.remaining,
                wait: a.wait,
            })
            .collect())
    }

    async fn count(
        &self,
        keys: &[String],
        add: bool,
        window: std::time::Duration,
    ) -> Result<Vec<(u64, std::time::Duration)>, String> {
        self.0.count(keys, add, window).await
    }
}
