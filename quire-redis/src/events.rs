//! Live events across instances: [`RedisBus`] appends each event, rendered once, to the
//! stream `<prefix>events` (bounded length); every instance reads the stream once and delivers
//! each event to its own subscribers through an [`InProcessBus`], numbered by its stream id.
//! Every instance therefore sees the same events in the same order under the same ids, and a
//! client resuming with `Last-Event-ID` on another instance gets what it missed from that
//! instance's backlog. A write's answer waits until its event is in the stream (see
//! [`Published`]), so killing an instance loses no acknowledged write's event. While Redis is
//! unreachable, appends are retried for [`RETRY_FOR`] (live updates pause, then catch up);
//! past that, or past [`OUTBOX`] waiting events, events are dropped and counted in
//! `redis_events_dropped_total`. A retried append may have been applied the first time (Redis
//! died after writing, before answering), so every entry carries a random nonce and readers
//! deliver each nonce once ([`Recent`]): subscribers never see an event twice.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use quire_events::{Carried, Event, EventBus, EventDraft, InProcessBus, Published, Subscription};
use tokio::sync::{mpsc, oneshot};

use crate::connection::Redis;
use crate::stream::{StreamId, xread_entries};

/// How long a blocking read waits before asking again.
const BLOCK: Duration = Duration::from_secs(1);

/// Events waiting to be appended, at most; past it new events are dropped (and counted)
/// rather than delaying writes.
const OUTBOX: usize = 4096;

/// Events appended in one round trip, at most.
const BATCH: usize = 256;

/// How long a batch that Redis refused is retried before its events are dropped.
const RETRY_FOR: Duration = Duration::from_secs(10);

/// An event waiting to be appended, its nonce, and whom to tell once it is.
type Pending = (Vec<u8>, u64, oneshot::Sender<()>);

/// Nonces remembered by a reader: far more events than can be appended during one retry
/// window ([`RETRY_FOR`]) at any rate quire writes.
const RECENT: usize = 65_536;

/// The nonces of the newest events read, so an event appended twice is delivered once.
struct Recent {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Recent {
    fn new() -> Self {
        Self {
            seen: HashSet::with_capacity(RECENT),
            order: VecDeque::with_capacity(RECENT),
        }
    }

    /// Whether `entry` is read for the first time (entries without a nonce always are).
    fn first_time(&mut self, entry: &crate::stream::Entry) -> bool {
        let Some(nonce) = entry
            .field("n")
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<u64>().ok())
        else {
            return true;
        };
        if !self.seen.insert(nonce) {
            metrics::counter!("redis_events_deduplicated_total").increment(1);
            return false;
        }
        if self.order.len() == RECENT
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(nonce);
        true
    }
}

/// An [`EventBus`] shared by every instance on one Redis.
pub struct RedisBus {
    redis: Arc<Redis>,
    stream: String,
    local: Arc<InProcessBus>,
    max_len: usize,
    /// To the one task that appends events, in the order they were published.
    outbox: mpsc::Sender<Pending>,
}

impl RedisBus {
    /// `local` delivers to this instance's subscribers; the stream keeps about `max_len`
    /// events (at least the resume backlog). Fills the resume backlog from the stream before
    /// it returns (so no client resumes on this instance before it knows the recent events),
    /// then starts the stream reader and the appender.
    pub async fn start(
        redis: Arc<Redis>,
        local: Arc<InProcessBus>,
        max_len: usize,
    ) -> Result<Arc<Self>, String> {
        let (outbox, pending) = mpsc::channel(OUTBOX);
        let bus = Arc::new(Self {
            stream: redis.key("events"),
            redis,
            local,
            max_len: max_len.max(1000),
            outbox,
        });
        let mut recent = Recent::new();
        let last = bus.load_backlog(&mut recent).await?;
        tokio::spawn(bus.clone().read(last, recent));
        tokio::spawn(bus.clone().append(pending));
        Ok(bus)
    }

    /// Keeps the newest `backlog` events of the stream for clients resuming here (they
    /// happened before this process joined, so they are not delivered); the newest id.
    async fn load_backlog(&self, recent: &mut Recent) -> Result<StreamId, String> {
        let mut tries = 0;
        let entries = loop {
            match self.recent().await {
                Some(entries) => break entries,
                None if tries < 25 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                None => return Err("cannot read the live event stream".to_owned()),
            }
        };
        let mut last = StreamId::default();
        for entry in entries.into_iter().rev() {
            last = entry.id;
            if !recent.first_time(&entry) {
                continue;
            }
            if let Some(carried) = carried(&entry) {
                self.local.remember_numbered(entry.id.as_u64(), carried);
            }
        }
        Ok(last)
    }

    /// Appends published events in publishing order, as many per round trip as are waiting,
    /// retrying a refused batch (in order) for [`RETRY_FOR`]. Ends when the bus is dropped.
    async fn append(self: Arc<Self>, mut pending: mpsc::Receiver<Pending>) {
        let weak = Arc::downgrade(&self);
        drop(self);
        let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
        while pending.recv_many(&mut batch, BATCH).await > 0 {
            let Some(bus) = weak.upgrade() else { return };
            let mut pipeline = redis::pipe();
            for (encoded, nonce, _) in &batch {
                pipeline
                    .cmd("XADD")
                    .arg(&bus.stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(bus.max_len)
                    .arg("*")
                    .arg("e")
                    .arg(encoded)
                    .arg("n")
                    .arg(nonce)
                    .ignore();
            }
            let give_up = tokio::time::Instant::now() + RETRY_FOR;
            let mut backoff = Duration::from_millis(20);
            while bus.redis.pipeline(&pipeline, "xadd").await.is_err() {
                if tokio::time::Instant::now() + backoff > give_up {
                    metrics::counter!("redis_events_dropped_total").increment(batch.len() as u64);
                    break;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            // Appended or given up: either way the writers stop waiting.
            for (_, _, appended) in batch.drain(..) {
                let _ = appended.send(());
            }
        }
    }

    /// Reads the stream after `last` (where this process joined it), delivering each event
    /// locally.
    async fn read(self: Arc<Self>, mut last: StreamId, mut recent: Recent) {
        loop {
            let mut connection = match self.redis.dedicated(BLOCK).await {
                Ok(connection) => connection,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            loop {
                let read = self
                    .redis
                    .read_stream(&mut connection, &self.stream, last, 1024, BLOCK)
                    .await;
                let Ok(entries) = read else {
                    tracing::warn!(
                        "lost the live event stream; live updates pause until it is back"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                };
                for entry in entries {
                    last = entry.id;
                    if !recent.first_time(&entry) {
                        continue;
                    }
                    if let Some(carried) = carried(&entry) {
                        self.local.deliver_numbered(entry.id.as_u64(), carried);
                    }
                }
            }
        }
    }

    /// The newest entries of the stream, newest first, as many as the resume backlog holds
    /// (`None`: Redis did not answer).
    async fn recent(&self) -> Option<Vec<crate::stream::Entry>> {
        let reply: redis::Value = self
            .redis
            .query(
                redis::cmd("XREVRANGE")
                    .arg(&self.stream)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(self.local.backlog_len().max(1)),
                "xrevrange",
            )
            .await
            .ok()?;
        let wrapped = redis::Value::Array(vec![redis::Value::Array(vec![
            redis::Value::BulkString(self.stream.clone().into_bytes()),
            reply,
        ])]);
        Some(xread_entries(&wrapped))
    }
}

/// The event an entry carries (`None` for an entry this binary cannot read).
fn carried(entry: &crate::stream::Entry) -> Option<Carried> {
    serde_json::from_slice(entry.field("e")?).ok()
}

impl EventBus for RedisBus {
    fn publish(&self, draft: EventDraft) -> Published {
        let carried = Event::carry(draft);
        let Ok(encoded) = serde_json::to_vec(&carried) else {
            return Published::settled();
        };
        // One task appends, in publishing order; the writer awaits `Published`, never a lock.
        let (published, appended) = Published::pending();
        let nonce = rand::random::<u64>();
        if self.outbox.try_send((encoded, nonce, appended)).is_err() {
            metrics::counter!("redis_events_dropped_total").increment(1);
        }
        published
    }

    fn subscribe(&self) -> Subscription {
        self.local.subscribe()
    }

    fn since(&self, id: u64) -> Vec<Arc<Event>> {
        self.local.since(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Entry;

    fn entry(seq: u64, nonce: Option<&str>) -> Entry {
        let mut fields = vec![(b"e".to_vec(), b"{}".to_vec())];
        if let Some(nonce) = nonce {
            fields.push((b"n".to_vec(), nonce.as_bytes().to_vec()));
        }
        Entry {
            id: StreamId::parse(&format!("1-{seq}")).unwrap(),
            fields,
        }
    }

    #[test]
    fn an_event_appended_twice_is_read_once() {
        let mut recent = Recent::new();
        assert!(recent.first_time(&entry(1, Some("42"))));
        assert!(recent.first_time(&entry(2, Some("43"))));
        // The retried append of nonce 42, under a new stream id.
        assert!(!recent.first_time(&entry(3, Some("42"))));
        // Entries without a nonce (an older binary's) are always delivered.
        assert!(recent.first_time(&entry(4, None)));
        assert!(recent.first_time(&entry(5, None)));
    }

    #[test]
    fn only_the_newest_nonces_are_remembered() {
        let mut recent = Recent::new();
        for n in 0..=RECENT as u64 {
            assert!(recent.first_time(&entry(n, Some(&n.to_string()))));
        }
        // Nonce 0 was forgotten when the window moved past it.
        assert!(recent.first_time(&entry(0, Some("0"))));
        assert_eq!(recent.order.len(), RECENT);
    }
}
