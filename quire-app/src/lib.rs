//! quire's application layer: the [`App`] handle and the use cases, one module per resource.
//!
//! A use case takes raw client input, parses it into domain values, checks who may do what,
//! and calls the store. It knows nothing of HTTP (no status codes, no axum types), SQL or
//! Redis: [`AppError`] says what went wrong and the HTTP layer decides how to say it.

mod admin_changes;
mod articles;
mod cache;
mod cache_audit;
mod comments;
mod error;
mod input;
mod live;
mod media;
mod passwords;
mod profiles;
mod search;
mod tokens;
mod users;

use std::sync::Arc;

pub use cache::{CacheSettings, UserStats, encoded_change_of_everything, encoded_user_change};
pub use error::{AppError, AppResult, AuthFailure};
pub use input::{
    ArticleQuery, LoginInput, NewArticleInput, NewCommentInput, NewUserInput, UpdateArticleInput,
    UpdateUserInput,
};
pub use live::{LiveFilter, LiveTopics, MAX_SUBSCRIPTIONS};
pub use media::{ALLOWED_MEDIA_TYPES, MediaDownload, MediaUpload};
pub use passwords::{PasswordHasher, PasswordHashing};
pub use profiles::Dashboard;
pub use quire_events::{Event, EventBus, InProcessBus, Next, Subscription};
pub use quire_store::{
    ArticleRecord, CommentRecord, MediaRecord, Profile, Store, StoreError, UserRecord,
};
pub use search::{MARK_END, MARK_START, SearchPage, SearchResult, search_words};
pub use tokens::TokenKeys;

/// One cached version of an article, shared by every reader of it, with a [`Memo`] for what
/// the presentation layer derives from exactly this version (its JSON). An edit replaces the
/// whole value, memo included, so nothing derived from an old version outlives it.
#[derive(Debug)]
pub struct SharedArticle {
    /// Its `favorited` and `author.following` are false: see [`SeenArticle`] for a reader's.
    pub record: ArticleRecord,
    pub memo: Memo,
}

/// Two versions are the same when their records are (the memo derives from the record).
impl PartialEq for SharedArticle {
    fn eq(&self, other: &Self) -> bool {
        self.record == other.record
    }
}

impl SharedArticle {
    pub fn new(record: ArticleRecord) -> Self {
        Self {
            record,
            memo: Memo::default(),
        }
    }
}

/// A slot for one value derived from the value that owns it, computed at most once and
/// dropped with its owner. The app never reads it; the HTTP layer keeps renderings in it.
#[derive(Default)]
pub struct Memo(std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>);

impl Memo {
    /// The memoized `T`, computed by `init` on first use; `None` if the slot already holds
    /// another type (one caller owns each slot, so only a programming error gets there).
    pub fn get_or_init<T: std::any::Any + Send + Sync>(
        &self,
        init: impl FnOnce() -> T,
    ) -> Option<&T> {
        self.0.get_or_init(|| Box::new(init())).downcast_ref()
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Memo(set)"
        } else {
            "Memo(empty)"
        })
    }
}

/// An article as one reader sees it: the shared cached version, not copied, and this
/// reader's flags.
#[derive(Debug, Clone)]
pub struct SeenArticle {
    pub shared: Arc<SharedArticle>,
    /// Whether the reader favorited it.
    pub favorited: bool,
    /// Whether the reader follows its author.
    pub following: bool,
}

impl SeenArticle {
    /// The article's viewer-independent fields.
    pub fn record(&self) -> &ArticleRecord {
        &self.shared.record
    }

    /// A copy of the record carrying this reader's flags.
    pub fn to_record(&self) -> ArticleRecord {
        let mut record = self.shared.record.clone();
        record.favorited = self.favorited;
        record.author.following = self.following;
        record
    }
}

impl From<ArticleRecord> for SeenArticle {
    /// A record read for one reader, its flags already theirs.
    fn from(record: ArticleRecord) -> Self {
        Self {
            favorited: record.favorited,
            following: record.author.following,
            shared: Arc::new(SharedArticle::new(record)),
        }
    }
}

/// One page of articles as a reader sees them, and how many match in all.
#[derive(Debug, Clone, Default)]
pub struct ArticlePage {
    pub articles: Vec<SeenArticle>,
    pub total: u64,
}

/// A signed-in user: their record and the token they presented (echoed back by `GET /user`).
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: UserRecord,
    pub token: String,
}

impl Viewer {
    pub fn id(&self) -> quire_domain::UserId {
        self.user.id
    }
}

/// A user with a token, as register, login and `/user` answer.
#[derive(Debug, Clone)]
pub struct SignedInUser {
    pub user: UserRecord,
    pub token: String,
}

/// What an [`App`] is built from.
pub struct AppParts {
    pub store: Arc<dyn Store>,
    pub tokens: TokenKeys,
    pub passwords: PasswordHasher,
    pub blobs: Arc<dyn quire_media::BlobStore>,
    pub events: Arc<dyn quire_events::EventBus>,
    pub max_media_bytes: u64,
    pub cache: CacheSettings,
    /// Keeps the caches exact across instances ([`quire_cache::Standalone`] for one).
    pub coherence: Arc<dyn quire_cache::Coherence>,
}

/// Handles to everything the use cases need. Cheap to share: wrap it in an `Arc` once.
pub struct App {
    /// Where everything is persisted.
    pub store: Arc<dyn Store>,
    /// Signs and verifies session tokens.
    pub tokens: TokenKeys,
    /// Hashes and checks passwords on the blocking pool, a bounded number at a time.
    pub passwords: PasswordHasher,
    /// Where media bytes live.
    pub blobs: Arc<dyn quire_media::BlobStore>,
    /// Carries live events from writes to connections.
    pub events: Arc<dyn quire_events::EventBus>,
    /// Largest media upload accepted, in bytes.
    pub max_media_bytes: u64,
    /// Serializes "a blob gained a row" against "a blob lost its last row" so a blob is never
    /// removed while a new upload of the same bytes is being recorded.
    blob_lifecycle: tokio::sync::Mutex<()>,
    /// Viewer-independent data, invalidated by writes.
    cache: cache::ReadCache,
    /// Carries invalidations to the other instances and fences reads.
    coherence: Arc<dyn quire_cache::Coherence>,
}

impl App {
    /// Whether the other instances can be reached (always, for one instance alone).
    pub async fn peers_ready(&self) -> bool {
        self.coherence.ready().await
    }

    pub fn new(parts: AppParts) -> Self {
        let cache = cache::ReadCache::new(parts.cache, &parts.coherence, &parts.store);
        Self {
            store: parts.store,
            tokens: parts.tokens,
            passwords: parts.passwords,
            blobs: parts.blobs,
            events: parts.events,
            max_media_bytes: parts.max_media_bytes,
            blob_lifecycle: tokio::sync::Mutex::new(()),
            cache,
            coherence: parts.coherence,
        }
    }
}
