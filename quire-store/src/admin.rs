//! What `quire user` does to accounts, on a connection of its own, against the database a
//! quire may be serving from: list, find, create, set a password, disable or enable, delete
//! (with the user's articles and comments, or handing them to another user).
//!
//! Every change is one transaction that also records the cache invalidations it implies in
//! `admin_changes`; running instances poll that table (`Store::admin_changes_after`) and forget
//! what the change touched, so a disabled user's tokens stop working within the poll period
//! and no instance serves a deleted user's cached articles.

use async_trait::async_trait;

use crate::copy::postgres::PostgresSide;
use crate::copy::sqlite::SqliteSide;
use crate::{DatabaseUrl, StoreResult};

/// One account, as `quire user list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub disabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub articles: u64,
    pub comments: u64,
}

/// What deleting a user removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub articles: u64,
    pub comments: u64,
    pub media: u64,
}

/// Account administration on one database (see the module documentation).
#[async_trait]
pub trait Admin: Send {
    /// Every account, by id.
    async fn accounts(&mut self) -> StoreResult<Vec<Account>>;
    /// The account with this username or email.
    async fn account(&mut self, name: &str) -> StoreResult<Option<Account>>;
    /// Creates an account; `Conflict` if the username or email is taken.
    async fn create(
        &mut self,
        username: &str,
        email: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<i64>;
    async fn set_password(
        &mut self,
        id: i64,
        password_hash: &str,
        now: i64,
        changes: &str,
    ) -> StoreResult<()>;
    /// Disables (`Some(when)`) or enables (`None`) an account.
    async fn set_disabled(
        &mut self,
        id: i64,
        disabled_at: Option<i64>,
        now: i64,
        changes: &str,
    ) -> StoreResult<()>;
    /// Deletes an account with its follows and favorites; its articles, comments and media
    /// go to `heir` if given, else with it.
    async fn delete(
        &mut self,
        id: i64,
        heir: Option<i64>,
        now: i64,
        changes: &str,
    ) -> StoreResult<Removed>;
    /// Dates an article (an import's `date`): both its creation and last update.
    async fn date_article(&mut self, id: i64, at: i64) -> StoreResult<()>;
    /// Records cache invalidations for changes made through the store (an import).
    async fn record(&mut self, now: i64, changes: &str) -> StoreResult<()>;
}

/// Connects to `url` for account administration (migrating it to this binary's schema).
pub async fn open(url: &DatabaseUrl) -> StoreResult<Box<dyn Admin>> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            crate::existing_sqlite(path)?;
            Ok(Box::new(SqliteSide::open(path).await?))
        }
        DatabaseUrl::Postgres(url) => Ok(Box::new(PostgresSide::open(url).await?)),
    }
}

/// The statements, written once with `$n` placeholders (SQLite accepts them too).
pub(crate) mod sql {
    pub const ACCOUNTS: &str =
        "SELECT u.id, u.username, u.email, u.disabled_at IS NOT NULL, u.created_at,
            (SELECT count(*) FROM articles a WHERE a.author_id = u.id),
            (SELECT count(*) FROM comments c WHERE c.author_id = u.id)
         FROM users u";
    pub const CREATE: &str =
        "INSERT INTO users (username, email, password_hash, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $4) RETURNING id";
    pub const SET_PASSWORD: &str =
        "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1";
    pub const SET_DISABLED: &str =
        "UPDATE users SET disabled_at = $2, updated_at = $3 WHERE id = $1";
    pub const RECORD: &str = "INSERT INTO admin_changes (changes, created_at) VALUES ($1, $2)";
    pub const COUNT_ARTICLES: &str = "SELECT count(*) FROM articles WHERE author_id = $1";
    pub const COUNT_COMMENTS: &str = "SELECT count(*) FROM comments WHERE author_id = $1";
    pub const COUNT_MEDIA: &str = "SELECT count(*) FROM media WHERE uploader_id = $1";
    pub const REASSIGN: [&str; 3] = [
        "UPDATE articles SET author_id = $2 WHERE author_id = $1",
        "UPDATE comments SET author_id = $2 WHERE author_id = $1",
        "UPDATE media SET uploader_id = $2 WHERE uploader_id = $1",
    ];
    /// Favorites go with the user (by cascade): their articles' counts first.
    pub const UNCOUNT_FAVORITES: &str = "UPDATE articles SET favorites_count = favorites_count - 1
         WHERE id IN (SELECT article_id FROM favorites WHERE user_id = $1)";
    pub const DELETE: &str = "DELETE FROM users WHERE id = $1";
    pub const DATE_ARTICLE: &str =
        "UPDATE articles SET created_at = $2, updated_at = $2 WHERE id = $1";
}
