//! The events and their JSON wire form:
//! `{"id":7,"type":"article.created","slug":"...","at":"2026-...Z","article":{...}}`.

use bytes::Bytes;
use quire_domain::{Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "article.created")]
    ArticleCreated,
    #[serde(rename = "article.updated")]
    ArticleUpdated,
    #[serde(rename = "article.deleted")]
    ArticleDeleted,
    #[serde(rename = "comment.created")]
    CommentCreated,
    #[serde(rename = "comment.deleted")]
    CommentDeleted,
    /// An article's favorite count changed.
    #[serde(rename = "favorite.changed")]
    FavoriteChanged,
}

/// Who an event concerns, for subscription matching.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topics {
    /// The article's slug (for comments: the commented article's).
    pub article: String,
    /// The article's author (for comments too: the feed follows article authors).
    pub author: UserId,
    pub author_username: String,
    pub tags: Vec<String>,
}

/// A profile as public events show it (no viewer-dependent `following`).
#[derive(Debug, Clone, Serialize)]
pub struct AuthorSnapshot {
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
}

/// An article as public events show it (no viewer-dependent `favorited`; no body).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArticleSnapshot {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub tag_list: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub favorites_count: u64,
    pub author: AuthorSnapshot,
}

/// A comment as public events show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentSnapshot {
    pub id: i64,
    pub body: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub author: AuthorSnapshot,
}

/// One published event: its id (assigned by the bus, increasing), kind, topics and JSON.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: u64,
    pub kind: EventKind,
    pub topics: Topics,
    /// The complete JSON text sent to clients.
    pub json: Bytes,
}

#[derive(Serialize)]
struct Wire<'a> {
    id: u64,
    #[serde(rename = "type")]
    kind: EventKind,
    slug: &'a str,
    at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    article: Option<&'a ArticleSnapshot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a CommentSnapshot>,
    #[serde(rename = "commentId", skip_serializing_if = "Option::is_none")]
    comment_id: Option<i64>,
}

/// What the write path hands to the bus; the bus numbers it and renders it once.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub kind: EventKind,
    pub topics: Topics,
    pub article: Option<ArticleSnapshot>,
    pub comment: Option<CommentSnapshot>,
    pub comment_id: Option<i64>,
}

impl Event {
    pub(crate) fn render(id: u64, draft: EventDraft) -> Self {
        let wire = Wire {
            id,
            kind: draft.kind,
            slug: &draft.topics.article,
            at: Timestamp::now(),
            article: draft.article.as_ref(),
            comment: draft.comment.as_ref(),
            comment_id: draft.comment_id,
        };
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        Self {
            id,
            kind: draft.kind,
            topics: draft.topics,
            json: Bytes::from(json),
        }
    }

    /// The event rendered once, without its id, to be numbered by another process (see
    /// [`Carried`]).
    pub fn carry(draft: EventDraft) -> Carried {
        let kind = draft.kind;
        let rendered = Self::render(0, draft);
        let text = std::str::from_utf8(&rendered.json).unwrap_or("{\"id\":0}");
        Carried {
            kind,
            topics: rendered.topics,
            tail: text.strip_prefix("{\"id\":0").unwrap_or("}").to_owned(),
        }
    }

    /// A carried event with the id the shared stream gave it.
    pub fn numbered(id: u64, carried: Carried) -> Self {
        Self {
            id,
            kind: carried.kind,
            topics: carried.topics,
            json: Bytes::from(format!("{{\"id\":{id}{}", carried.tail)),
        }
    }

    /// The JSON bytes (always valid UTF-8), shared by every holder.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The JSON text (always valid UTF-8).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.json).unwrap_or_default()
    }
}

impl Event {
    /// An article event.
    pub fn article(kind: EventKind, topics: Topics, article: ArticleSnapshot) -> EventDraft {
        EventDraft {
            kind,
            topics,
            article: Some(article),
            comment: None,
            comment_id: None,
        }
    }

    /// An event about an article that has no snapshot any more (deleted).
    pub fn bare(kind: EventKind, topics: Topics) -> EventDraft {
        EventDraft {
            kind,
            topics,
            article: None,
            comment: None,
            comment_id: None,
        }
    }

    /// A comment created on the article in `topics`.
    pub fn comment_created(topics: Topics, comment: CommentSnapshot) -> EventDraft {
        EventDraft {
            kind: EventKind::CommentCreated,
            comment_id: Some(comment.id),
            topics,
            article: None,
            comment: Some(comment),
        }
    }

    /// A comment deleted from the article in `topics`.
    pub fn comment_deleted(topics: Topics, id: i64) -> EventDraft {
        EventDraft {
            kind: EventKind::CommentDeleted,
            topics,
            article: None,
            comment: None,
            comment_id: Some(id),
        }
    }
}

/// An event as it travels between instances: rendered once by the instance that published
/// it, without its id (the `id` field comes first in the wire form, so it is spliced in front
/// of `tail` by [`Event::numbered`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Carried {
    pub kind: EventKind,
    pub topics: Topics,
    /// The JSON text after `{"id":N`.
    pub tail: String,
}
