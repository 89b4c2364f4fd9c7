//! Live updates: which events a connection wants (its [`LiveFilter`]), built from query
//! parameters and changed by client messages; and the events the write path publishes.

use std::sync::Arc;

use quire_domain::UserId;
use quire_events::{
    ArticleSnapshot, AuthorSnapshot, CommentSnapshot, Event, EventKind, Subscription, Topics,
};
use quire_store::{ArticleRecord, CommentRecord, Profile};
use serde::Deserialize;

use crate::{App, AppError, AppResult, AuthFailure, Viewer};

/// Most subscriptions one connection may hold (bounds per-connection memory).
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// Subscriptions as a client names them (query parameters or a message's fields).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct LiveTopics {
    #[serde(default)]
    pub tag: Vec<String>,
    #[serde(default)]
    pub author: Vec<String>,
    #[serde(default)]
    pub article: Vec<String>,
    /// Articles by authors the signed-in user follows.
    #[serde(default)]
    pub feed: bool,
    /// Every event.
    #[serde(default)]
    pub all: bool,
}

impl LiveTopics {
    pub fn is_empty(&self) -> bool {
        self.tag.is_empty()
            && self.author.is_empty()
            && self.article.is_empty()
            && !self.feed
            && !self.all
    }
}

/// What one connection receives. Events match when any subscription matches.
///
/// Small on purpose: every idle live connection holds one. At most [`MAX_SUBSCRIPTIONS`]
/// topics, so a short list scanned per event costs less memory than hash sets (four empty
/// ones took 200 bytes) and no more time than hashing the event's topics.
#[derive(Debug, Default)]
pub struct LiveFilter {
    all: bool,
    /// Tags, lower-cased author usernames and article slugs, each once.
    topics: Vec<(TopicKind, Box<str>)>,
    /// Ids of the authors followed, sorted, when subscribed to the feed.
    feed: Option<Box<[UserId]>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopicKind {
    Tag,
    Author,
    Article,
}

impl LiveFilter {
    fn len(&self) -> usize {
        self.topics.len()
    }

    fn has(&self, kind: TopicKind, name: &str) -> bool {
        self.topics.iter().any(|(k, n)| *k == kind && **n == *name)
    }

    /// Whether this connection wants `event`.
    pub fn matches(&self, event: &Event) -> bool {
        let topics = &event.topics;
        let about_article = !matches!(
            event.kind,
            EventKind::CommentCreated | EventKind::CommentDeleted
        );
        if self.all || self.has(TopicKind::Article, &topics.article) {
            return true;
        }
        if !about_article {
            return false;
        }
        let mut author = None;
        self.topics.iter().any(|(kind, name)| match kind {
            TopicKind::Tag => topics.tags.iter().any(|t| **t == **name),
            TopicKind::Author => {
                **author.get_or_insert_with(|| topics.author_username.to_lowercase()) == **name
            }
            TopicKind::Article => false,
        }) || self
            .feed
            .as_ref()
            .is_some_and(|f| f.binary_search(&topics.author).is_ok())
    }
}

pub(crate) fn author_snapshot(profile: &Profile) -> AuthorSnapshot {
    AuthorSnapshot {
        username: profile.username.clone(),
        bio: profile.bio.clone(),
        image: profile.image.clone(),
    }
}

pub(crate) fn topics_of(article: &ArticleRecord) -> Topics {
    Topics {
        article: article.slug.clone(),
        author: article.author.id,
        author_username: article.author.username.clone(),
        tags: article.tags.clone(),
    }
}

pub(crate) fn article_snapshot(article: &ArticleRecord) -> ArticleSnapshot {
    ArticleSnapshot {
        slug: article.slug.clone(),
        title: article.title.clone(),
        description: article.description.clone(),
        tag_list: article.tags.clone(),
        created_at: article.created_at,
        updated_at: article.updated_at,
        favorites_count: article.favorites_count,
        author: author_snapshot(&article.author),
    }
}

pub(crate) fn comment_snapshot(comment: &CommentRecord) -> CommentSnapshot {
    CommentSnapshot {
        id: comment.id.0,
        body: comment.body.clone(),
        created_at: comment.created_at,
        updated_at: comment.updated_at,
        author: author_snapshot(&comment.author),
    }
}

/// Longest a write waits for its event to be safe before it answers anyway.
const PUBLISH_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl App {
    /// Publishes an article event (see [`Self::publish`]).
    pub(crate) async fn publish_article(&self, kind: EventKind, article: &ArticleRecord) {
        self.publish(Event::article(
            kind,
            topics_of(article),
            article_snapshot(article),
        ))
        .await;
    }

    /// Publishes an event and waits, at most [`PUBLISH_WAIT`], until it no longer depends on
    /// this process (in Redis, with many instances), so a write is acknowledged only once its
    /// event will reach every subscriber even if this instance dies. Past the wait the write
    /// answers anyway: it committed, and the bus still retries the event.
    pub(crate) async fn publish(&self, draft: quire_events::EventDraft) {
        let published = self.events.publish(draft);
        if published.is_settled() {
            return;
        }
        if tokio::time::timeout(PUBLISH_WAIT, published.wait())
            .await
            .is_err()
        {
            metrics::counter!("live_publish_waits_expired_total").increment(1);
        }
    }

    /// Events from now on; filter them with a [`LiveFilter`].
    pub fn live_subscribe(&self) -> Subscription {
        self.events.subscribe()
    }

    /// Recent events after `id`, for clients resuming a stream.
    pub fn live_since(&self, id: u64) -> Vec<Arc<Event>> {
        self.events.since(id)
    }

    /// Adds `topics` to `filter`. The feed needs a signed-in viewer.
    pub async fn live_subscribe_to(
        &self,
        filter: &mut LiveFilter,
        viewer: Option<&Viewer>,
        topics: LiveTopics,
    ) -> AppResult<()> {
        let feed = match (topics.feed, &filter.feed) {
            (true, None) => {
                let viewer = viewer.ok_or(AppError::Unauthorized(AuthFailure::Missing))?;
                let mut following = self.store.following_ids(viewer.id()).await?;
                following.sort_unstable();
                following.dedup();
                Some(following.into_boxed_slice())
            }
            _ => None,
        };
        let named = (topics.tag.into_iter().map(|t| (TopicKind::Tag, t)))
            .chain(
                topics
                    .author
                    .iter()
                    .map(|a| (TopicKind::Author, a.to_lowercase())),
            )
            .chain(topics.article.into_iter().map(|a| (TopicKind::Article, a)));
        let mut added: Vec<(TopicKind, Box<str>)> = Vec::new();
        for (kind, name) in named {
            let known = |list: &[(TopicKind, Box<str>)]| {
                list.iter().any(|(k, n)| *k == kind && **n == *name)
            };
            if !known(&filter.topics) && !known(&added) {
                added.push((kind, name.into_boxed_str()));
            }
        }
        // Checked before anything changes: a refused message leaves the filter as it was, so
        // the cap really bounds what a connection holds.
        if filter.len() + added.len() > MAX_SUBSCRIPTIONS {
            return Err(quire_domain::FieldError::new(
                "subscriptions",
                format!("can't exceed {MAX_SUBSCRIPTIONS}"),
            )
            .into());
        }
        if feed.is_some() {
            filter.feed = feed;
        }
        filter.all |= topics.all;
        if !added.is_empty() {
            filter.topics.extend(added);
            filter.topics.shrink_to_fit();
        }
        Ok(())
    }

    /// Removes `topics` from `filter`.
    pub fn live_unsubscribe_from(&self, filter: &mut LiveFilter, topics: LiveTopics) {
        if topics.all {
            filter.all = false;
        }
        if topics.feed {
            filter.feed = None;
        }
        let authors: Vec<String> = topics.author.iter().map(|a| a.to_lowercase()).collect();
        filter.topics.retain(|(kind, name)| {
            let names = match kind {
                TopicKind::Tag => &topics.tag,
                TopicKind::Author => &authors,
                TopicKind::Article => &topics.article,
            };
            !names.iter().any(|n| **n == **name)
        });
        filter.topics.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quire_events::{EventBus, InProcessBus};

    fn published(
        kind: EventKind,
        slug: &str,
        author: i64,
        username: &str,
        tags: &[&str],
    ) -> Arc<Event> {
        let bus = InProcessBus::new(4, 4);
        let topics = Topics {
            article: slug.into(),
            author: UserId(author),
            author_username: username.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        let _ = bus.publish(Event::bare(kind, topics));
        bus.since(0).pop().unwrap()
    }

    #[test]
    fn filters_match_their_topics() {
        let created = published(EventKind::ArticleCreated, "a", 1, "Jake", &["rust"]);
        let comment = published(EventKind::CommentCreated, "a", 1, "Jake", &["rust"]);
        let mut filter = LiveFilter::default();
        assert!(!filter.matches(&created));
        filter.topics.push((TopicKind::Tag, "rust".into()));
        assert!(filter.matches(&created));
        assert!(
            !filter.matches(&comment),
            "comments follow article subscriptions only"
        );
        let mut filter = LiveFilter::default();
        filter.topics.push((TopicKind::Author, "jake".into()));
        assert!(filter.matches(&created));
        let mut filter = LiveFilter::default();
        filter.topics.push((TopicKind::Article, "a".into()));
        assert!(filter.matches(&created) && filter.matches(&comment));
        let mut filter = LiveFilter {
            feed: Some([UserId(1)].into()),
            ..LiveFilter::default()
        };
        assert!(filter.matches(&created));
        filter.feed = Some([UserId(2)].into());
        assert!(!filter.matches(&created));
        let filter = LiveFilter {
            all: true,
            ..LiveFilter::default()
        };
        assert!(filter.matches(&comment));
    }
}
