//! The bus: [`EventBus`] (the seam for other backends) and [`InProcessBus`], a broadcast
//! channel plus a short backlog of recent events for clients that resume (`Last-Event-ID`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, oneshot};

use crate::{Event, EventDraft};

/// What a subscription yields next.
#[derive(Debug)]
pub enum Next {
    Event(Arc<Event>),
    /// The subscriber fell this many events behind and they are gone: a slow consumer.
    Lagged(u64),
    /// The bus is gone (shutdown).
    Closed,
}

/// A live feed of every event published after it was taken.
pub struct Subscription {
    receiver: broadcast::Receiver<Arc<Event>>,
}

impl Subscription {
    pub async fn next(&mut self) -> Next {
        match self.receiver.recv().await {
            Ok(event) => Next::Event(event),
            Err(broadcast::error::RecvError::Lagged(n)) => Next::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Next::Closed,
        }
    }
}

/// What [`EventBus::publish`] returns: settles once the event no longer depends on this
/// process living (at once in-process; once it is in the shared stream for quire-redis), or
/// once the bus gave up on it. A write awaits it before it answers, so no acknowledged
/// write's event dies with the instance that made it.
#[derive(Debug)]
#[must_use = "a write awaits its event's publication before it answers"]
pub struct Published(Option<oneshot::Receiver<()>>);

impl Published {
    /// Already settled.
    pub fn settled() -> Self {
        Self(None)
    }

    /// Settles when `sender` sends or is dropped, and the channel to give the bus.
    pub fn pending() -> (Self, oneshot::Sender<()>) {
        let (sender, receiver) = oneshot::channel();
        (Self(Some(receiver)), sender)
    }

    /// Whether there is nothing to wait for (the in-process bus).
    pub fn is_settled(&self) -> bool {
        self.0.is_none()
    }

    /// Waits until the event is safe (or the bus gave up on it).
    pub async fn wait(self) {
        if let Some(receiver) = self.0 {
            let _ = receiver.await;
        }
    }
}

/// Carries events from the write path to every live connection.
pub trait EventBus: Send + Sync + 'static {
    /// Numbers, renders and delivers an event. Never blocks on subscribers.
    fn publish(&self, draft: EventDraft) -> Published;
    /// Events published from now on.
    fn subscribe(&self) -> Subscription;
    /// Recent events with ids above `id`, oldest first, as far as the backlog reaches.
    fn since(&self, id: u64) -> Vec<Arc<Event>>;
}

/// The in-process bus: one broadcast channel whose ring buffer is shared by all subscribers
/// (a subscriber that falls `capacity` events behind lags instead of growing memory).
pub struct InProcessBus {
    sender: broadcast::Sender<Arc<Event>>,
    state: Mutex<State>,
    backlog_len: usize,
}

struct State {
    next_id: u64,
    backlog: VecDeque<Arc<Event>>,
}

impl InProcessBus {
    /// `capacity`: events a subscriber may fall behind; `backlog`: events kept for resuming.
    pub fn new(capacity: usize, backlog: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self {
            sender,
            state: Mutex::new(State {
                next_id: 1,
                backlog: VecDeque::with_capacity(backlog),
            }),
            backlog_len: backlog,
        }
    }
}

impl InProcessBus {
    /// Delivers an event numbered elsewhere (by a stream shared with other instances). Ids
    /// must increase; an id not above the last one delivered is dropped (a duplicate).
    pub fn deliver_numbered(&self, id: u64, carried: crate::Carried) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if id < state.next_id {
            return;
        }
        state.next_id = id + 1;
        let event = Arc::new(Event::numbered(id, carried));
        self.deliver(&mut state, event);
    }

    /// Keeps an event numbered elsewhere for clients resuming, without delivering it to
    /// subscribers (it happened before this process joined). Ids must increase, as for
    /// [`Self::deliver_numbered`].
    pub fn remember_numbered(&self, id: u64, carried: crate::Carried) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if id < state.next_id || self.backlog_len == 0 {
            return;
        }
        state.next_id = id + 1;
        self.keep(&mut state, Arc::new(Event::numbered(id, carried)));
    }

    /// Events kept for resuming clients, at most.
    pub fn backlog_len(&self) -> usize {
        self.backlog_len
    }

    /// Adds `event` to the resume backlog, dropping the oldest past its length.
    fn keep(&self, state: &mut State, event: Arc<Event>) {
        if self.backlog_len > 0 {
            if state.backlog.len() == self.backlog_len {
                state.backlog.pop_front();
            }
            state.backlog.push_back(event);
        }
    }

    fn deliver(&self, state: &mut State, event: Arc<Event>) {
        self.keep(state, event.clone());
        // No subscribers is not an error.
        let _ = self.sender.send(event);
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, draft: EventDraft) -> Published {
        // One lock orders ids, the backlog and delivery identically.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let event = Arc::new(Event::render(state.next_id, draft));
        state.next_id += 1;
        self.deliver(&mut state, event);
        Published::settled()
    }

    fn subscribe(&self) -> Subscription {
        Subscription {
            receiver: self.sender.subscribe(),
        }
    }

    fn since(&self, id: u64) -> Vec<Arc<Event>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .backlog
            .iter()
            .filter(|e| e.id > id)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventKind, Topics};

    fn draft(slug: &str) -> EventDraft {
        Event::bare(
            EventKind::ArticleDeleted,
            Topics {
                article: slug.into(),
                ..Topics::default()
            },
        )
    }

    #[tokio::test]
    async fn subscribers_share_one_rendering() {
        let bus = InProcessBus::new(16, 4);
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        let _ = bus.publish(draft("x"));
        let (Next::Event(ea), Next::Event(eb)) = (a.next().await, b.next().await) else {
            panic!("no event")
        };
        assert!(Arc::ptr_eq(&ea, &eb));
        assert_eq!(ea.id, 1);
        let json: serde_json::Value = serde_json::from_str(ea.text()).unwrap();
        assert_eq!(json["type"], "article.deleted");
        assert_eq!(json["slug"], "x");
        assert_eq!(json["id"], 1);
    }

    #[tokio::test]
    async fn slow_subscribers_lag_instead_of_growing() {
        let bus = InProcessBus::new(4, 0);
        let mut slow = bus.subscribe();
        for i in 0..10 {
            let _ = bus.publish(draft(&format!("a{i}")));
        }
        assert!(matches!(slow.next().await, Next::Lagged(6)));
    }

    #[tokio::test]
    async fn carried_events_keep_their_rendering_under_the_stream_id() {
        let bus = InProcessBus::new(16, 4);
        let mut subscriber = bus.subscribe();
        let carried = Event::carry(draft("x"));
        bus.deliver_numbered(1_000, carried.clone());
        bus.deliver_numbered(1_000, carried);
        let Next::Event(event) = subscriber.next().await else {
            panic!("no event")
        };
        let json: serde_json::Value = serde_json::from_str(event.text()).unwrap();
        assert_eq!(json["id"], 1_000);
        assert_eq!(json["type"], "article.deleted");
        assert_eq!(json["slug"], "x");
        assert_eq!(bus.since(0).len(), 1, "the duplicate was dropped");
    }

    #[test]
    fn backlog_keeps_the_latest() {
        let bus = InProcessBus::new(16, 3);
        for i in 0..5 {
            let _ = bus.publish(draft(&format!("a{i}")));
        }
        let ids: Vec<u64> = bus.since(0).iter().map(|e| e.id).collect();
        assert_eq!(ids, [3, 4, 5]);
        let ids: Vec<u64> = bus.since(4).iter().map(|e| e.id).collect();
        assert_eq!(ids, [5]);
    }
}
