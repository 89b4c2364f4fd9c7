//! quire's persistence: the [`Store`] trait every backend implements, the records it returns,
//! the SQLite backend that quire runs on by default and the PostgreSQL backend for scale-out.
//!
//! Callers (quire-app) see only the trait; [`open`] picks the backend from the URL. SQL lives here and nowhere else. Nothing here knows about HTTP or the application's
//! authorization rules: the store answers questions and applies changes it is given.

pub mod admin;
pub mod check;
pub mod copy;
mod error;
pub mod postgres;
mod records;
pub mod snapshot;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use quire_domain::{ArticleId, CommentBody, CommentId, Email, Page, Slug, Tag, UserId, Username};

pub use error::StoreError;
pub use records::{
    ArticleChanges, ArticleFilter, ArticleList, ArticleRecord, CommentRecord, Count, MARK_END,
    MARK_START, MediaRecord, NewArticle, NewUser, Profile, SearchHit, SearchHits, UserChanges,
    UserRecord,
};

/// Result of every store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything quire persists. Every method is a single atomic operation; a write that returns
/// `Ok` is durable (it survives `kill -9` and power loss as far as the disk keeps its promises).
///
/// `viewer` arguments are the signed-in user, used only to fill `favorited` and `following`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the store can serve queries (readiness probes).
    async fn ping(&self) -> StoreResult<()>;

    /// Creates a user. Fails with [`StoreError::Conflict`] naming each taken field.
    async fn create_user(&self, user: NewUser) -> StoreResult<UserRecord>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserRecord>>;
    /// Applies `changes`; `None` if the user no longer exists. Conflicts as for `create_user`.
    async fn update_user(
        &self,
        id: UserId,
        changes: UserChanges,
    ) -> StoreResult<Option<UserRecord>>;

    async fn profile(
        &self,
        username: &Username,
        viewer: Option<UserId>,
    ) -> StoreResult<Option<Profile>>;
    /// Makes `follower` follow `username` (idempotent); `None` if no such user.
    async fn follow(&self, follower: UserId, username: &Username) -> StoreResult<Option<Profile>>;
    async fn unfollow(&self, follower: UserId, username: &Username)
    -> StoreResult<Option<Profile>>;

    /// One of the dashboard's numbers.
    async fn count(&self, what: Count) -> StoreResult<u64>;

    /// Ids of the articles `user` favorited.
    async fn favorited_ids(&self, user: UserId) -> StoreResult<Vec<ArticleId>>;

    /// Ids of the users `follower` follows.
    async fn following_ids(&self, follower: UserId) -> StoreResult<Vec<UserId>>;

    /// One page of article ids matching `filter`, newest first, and the count of all matches.
    async fn article_ids(
        &self,
        filter: ArticleFilter,
        page: Page,
    ) -> StoreResult<(Vec<ArticleId>, u64)>;
    /// Whole articles (with bodies) by id, without viewer flags; missing ids are skipped.
    async fn articles_by_ids(&self, ids: Vec<ArticleId>) -> StoreResult<Vec<ArticleRecord>>;
    async fn article_id(&self, slug: &Slug) -> StoreResult<Option<ArticleId>>;
    /// The newest `limit` ids of `viewer`'s feed and the count of the whole feed.
    async fn feed_ids(&self, viewer: UserId, limit: u32) -> StoreResult<(Vec<ArticleId>, u64)>;
    /// Articles by authors `viewer` follows, newest first, without bodies.
    async fn feed(&self, viewer: UserId, page: Page) -> StoreResult<ArticleList>;
    /// Articles whose title, description or body hold every one of `words` (stemmed), best
    /// match first, with a snippet each; the index is exact after every committed write.
    async fn search(&self, words: Vec<String>, page: Page) -> StoreResult<SearchHits>;
    async fn article(
        &self,
        slug: &Slug,
        viewer: Option<UserId>,
    ) -> StoreResult<Option<ArticleRecord>>;
    /// Creates an article under a slug made unique from its title.
    async fn create_article(&self, article: NewArticle) -> StoreResult<ArticleRecord>;
    /// Applies `changes`; a new title gives a new slug. `None` if the article is gone.
    async fn update_article(
        &self,
        id: ArticleId,
        changes: ArticleChanges,
        viewer: UserId,
    ) -> StoreResult<Option<ArticleRecord>>;
    /// Deletes an article with its tags, favorites and comments; `false` if it was gone.
    async fn delete_article(&self, id: ArticleId) -> StoreResult<bool>;
    /// Marks the article favorited by `user` (idempotent); `None` if no such article.
    async fn favorite(&self, user: UserId, slug: &Slug) -> StoreResult<Option<ArticleRecord>>;
    async fn unfavorite(&self, user: UserId, slug: &Slug) -> StoreResult<Option<ArticleRecord>>;

    /// An article's comments, newest first; `None` if no such article.
    async fn comments(
        &self,
        slug: &Slug,
        viewer: Option<UserId>,
    ) -> StoreResult<Option<Vec<CommentRecord>>>;
    /// One comment of the article named by `slug`.
    async fn comment(
        &self,
        slug: &Slug,
        id: CommentId,
        viewer: Option<UserId>,
    ) -> StoreResult<Option<CommentRecord>>;
    /// Adds a comment; `None` if no such article.
    async fn add_comment(
        &self,
        author: UserId,
        slug: &Slug,
        body: CommentBody,
    ) -> StoreResult<Option<CommentRecord>>;
    async fn delete_comment(&self, id: CommentId) -> StoreResult<bool>;

    /// Every tag in use, sorted.
    async fn tags(&self) -> StoreResult<Vec<Tag>>;

    /// Records an uploaded file (its bytes are already in the blob store).
    async fn create_media(&self, media: MediaRecord) -> StoreResult<MediaRecord>;
    async fn media(&self, id: &str) -> StoreResult<Option<MediaRecord>>;
    /// Deletes a media row; `false` if it was gone.
    async fn delete_media(&self, id: &str) -> StoreResult<bool>;
    /// Whether any media row still names this blob.
    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool>;

    /// Cache invalidations recorded by changes made outside the server (`quire user`) after
    /// sequence number `after`, oldest first, at most 100: (sequence number, encoded changes).
    /// With `after` `None`, only the newest sequence number (where watching starts).
    async fn admin_changes_after(&self, after: Option<i64>) -> StoreResult<Vec<(i64, String)>>;
}

/// Which backend a database URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` (relative to the working directory) or `sqlite:///ABSOLUTE/PATH`.
    Sqlite(std::path::PathBuf),
    /// `postgres://...` or `postgresql://...`.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Config("sqlite URL has no file path".into()));
            }
            return Ok(Self::Sqlite(path.into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        Err(StoreError::Config(format!(
            "unsupported database URL {url:?}: use sqlite://PATH or postgres://..."
        )))
    }
}

impl std::fmt::Display for DatabaseUrl {
    /// The URL as logs and error messages may show it: a password is replaced by `***`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&postgres::redact(url)),
        }
    }
}

/// Refuses a SQLite file that does not exist (commands that must not create one).
pub(crate) fn existing_sqlite(path: &std::path::Path) -> StoreResult<()> {
    if path.exists() {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "no database at {}",
            path.display()
        )))
    }
}

/// Settings of each backend; only the one the URL names is used.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    pub sqlite: sqlite::SqliteOptions,
    pub postgres: postgres::PgOptions,
    /// PostgreSQL only: streaming replicas of the database that may serve reads.
    pub replicas: Vec<String>,
    pub replica: postgres::ReplicaOptions,
}

/// Opens (creating and migrating as needed) the store a URL names.
pub async fn open(url: &DatabaseUrl, options: StoreOptions) -> StoreResult<Arc<dyn Store>> {
    match url {
        DatabaseUrl::Sqlite(_) if !options.replicas.is_empty() => Err(StoreError::Config(
            "read replicas need a postgres:// database".into(),
        )),
        DatabaseUrl::Sqlite(path) => Ok(Arc::new(
            sqlite::SqliteStore::open(path, options.sqlite).await?,
        )),
        DatabaseUrl::Postgres(url) => Ok(Arc::new(
            postgres::PgStore::open_with_replicas(
                url,
                &options.replicas,
                options.postgres,
                options.replica,
            )
            .await?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://quire.db").unwrap(),
            DatabaseUrl::Sqlite("quire.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/quire.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/quire.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://localhost/test").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("quire.db").is_err());
    }
}
