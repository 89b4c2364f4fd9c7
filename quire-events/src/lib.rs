//! Live events: what changed (an article or comment created, updated, deleted; a favorite
//! count), published by the write path and fanned out to every live connection.
//!
//! An [`Event`] is serialized to its JSON wire form once, when published; subscribers receive
//! the same `Arc<Event>` and decide by its [`Topics`] whether it concerns them, so fan-out never
//! copies or re-serializes per subscriber. The [`EventBus`] trait is the seam for other
//! backends (quire-redis carries [`Carried`] events between instances over a Redis Stream and
//! delivers them through an [`InProcessBus`]); [`InProcessBus`] alone is the default. Knows nothing of HTTP or the store.

mod bus;
mod event;

pub use bus::{EventBus, InProcessBus, Next, Published, Subscription};
pub use event::{
    ArticleSnapshot, AuthorSnapshot, Carried, CommentSnapshot, Event, EventDraft, EventKind, Topics,
};
