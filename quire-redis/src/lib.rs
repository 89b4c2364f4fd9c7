//! Many quire instances behaving as one, over Redis (an existing engine; nothing home-made
//! about membership or consensus):
//!
//! - [`RedisCoherence`] keeps every instance's in-process caches exact: writes append their
//!   invalidations to a Redis Stream before they are acknowledged; a request passes a *read
//!   fence* (the stream's last id, one round trip shared by every request that arrived while
//!   none was in flight) and is served from the cache only once this instance has applied the
//!   stream up to that id; otherwise it reads the store. See `coherence.rs` for the argument.
//! - [`RedisBus`] carries live events: one stream gives every event one id, each instance
//!   reads the stream once and fans events out locally, so `Last-Event-ID` resumes on any
//!   instance.
//!
//! - [`RedisBuckets`] holds the rate-limit buckets, so N instances allow what one would.
//!
//! [`Redis`] is the shared connection (reconnecting by itself) with metrics for round trips
//! and errors. Knows nothing of HTTP, the store or what the caches hold.

mod coherence;
mod connection;
mod events;
mod limits;
mod stream;

pub use coherence::{Invalidate, RedisCoherence};
pub use connection::Redis;
pub use events::RedisBus;
pub use limits::{Bucket, BucketAnswer, RedisBuckets};
