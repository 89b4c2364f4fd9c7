//! The SQLite backend: quire's embedded default. One file, WAL mode, one writer thread with
//! group commit, a pool of reader threads (see [`pool`]); the SQL is in [`queries`].

pub(crate) mod migrate;
mod pool;
mod queries;

use std::path::Path;

use async_trait::async_trait;
use quire_domain::{ArticleId, CommentBody, CommentId, Email, Page, Slug, Tag, UserId, Username};

pub use migrate::MIGRATIONS;
use pool::Pool;
pub use pool::SqliteOptions;

use crate::{
    ArticleChanges, ArticleFilter, ArticleList, ArticleRecord, CommentRecord, Count, MediaRecord,
    NewArticle, NewUser, Profile, SearchHits, Store, StoreResult, UserChanges, UserRecord,
};

/// A [`Store`] in one SQLite file.
pub struct SqliteStore {
    pool: Pool,
}

impl SqliteStore {
    /// Opens the file at `path`, creating and migrating it as needed.
    pub async fn open(path: &Path, options: SqliteOptions) -> StoreResult<Self> {
        let path = path.to_owned();
        let pool = tokio::task::spawn_blocking(move || Pool::start(&path, options))
            .await
            .map_err(|e| crate::StoreError::Database(format!("open task failed: {e}")))??;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.pool
            .read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<UserRecord> {
        self.pool
            .write(move |conn| queries::create_user(conn, &user))
            .await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.pool
            .read(move |conn| queries::user_by_id(conn, id))
            .await
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserRecord>> {
        let email = email.as_str().to_owned();
        self.pool
            .read(move |conn| queries::user_by_email(conn, &email))
            .await
    }

    async fn update_user(
        &self,
        id: UserId,
        changes: UserChanges,
    ) -> StoreResult<Option<UserRecord>> {
        self.pool
            .write(move |conn| queries::update_user(conn, id, &changes))
            .await
    }

    async fn profile(
        &self,
        username: &Username,
        viewer: Option<UserId>,
    ) -> StoreResult<Option<Profile>> {
        let username = username.as_str().to_owned();
        self.pool
            .read(move |conn| queries::profile(conn, &username, viewer))
            .await
    }

    async fn follow(&self, follower: UserId, username: &Username) -> StoreResult<Option<Profile>> {
        let username = username.as_str().to_owned();
        self.pool
            .write(move |conn| queries::set_following(conn, follower, &username, true))
            .await
    }

    async fn unfollow(
        &self,
        follower: UserId,
        username: &Username,
    ) -> StoreResult<Option<Profile>> {
        let username = username.as_str().to_owned();
        self.pool
            .write(move |conn| queries::set_following(conn, follower, &username, false))
            .await
    }

    async fn count(&self, what: Count) -> StoreResult<u64> {
        self.pool.read(move |conn| queries::count(conn, what)).await
    }

    async fn favorited_ids(&self, user: UserId) -> StoreResult<Vec<ArticleId>> {
        self.pool
            .read(move |conn| queries::favorited_ids(conn, user))
            .await
    }

    async fn following_ids(&self, follower: UserId) -> StoreResult<Vec<UserId>> {
        self.pool
            .read(move |conn| queries::following_ids(conn, follower))
            .await
    }

    async fn article_ids(
        &self,
        filter: ArticleFilter,
        page: Page,
    ) -> StoreResult<(Vec<ArticleId>, u64)> {
        self.pool
            .read(move |conn| queries::article_ids(conn, &filter, page))
            .await
    }

    async fn articles_by_ids(&self, ids: Vec<ArticleId>) -> StoreResult<Vec<ArticleRecord>> {
        self.pool
            .read(move |conn| queries::articles_by_ids(conn, &ids))
            .await
    }

    async fn article_id(&self, slug: &Slug) -> StoreResult<Option<ArticleId>> {
        let slug = slug.as_str().to_owned();
        self.pool
            .read(move |conn| queries::slug_to_id(conn, &slug))
            .await
    }

    async fn feed_ids(&self, viewer: UserId, limit: u32) -> StoreResult<(Vec<ArticleId>, u64)> {
        self.pool
            .read(move |conn| queries::feed_ids(conn, viewer, limit))
            .await
    }

    async fn feed(&self, viewer: UserId, page: Page) -> StoreResult<ArticleList> {
        self.pool
            .read(move |conn| queries::feed(conn, viewer, page))
            .await
    }

    async fn search(&self, words: Vec<String>, page: Page) -> StoreResult<SearchHits> {
        self.pool
            .read(move |conn| queries::search(conn, &words, page))
            .await
    }

    async fn article(
        &self,
        slug: &Slug,
        viewer: Option<UserId>,
    ) -> StoreResult<Option<ArticleRecord>> {
        let slug = slug.as_str().to_owned();
        self.pool
            .read(move |conn| queries::article(conn, &slug, viewer))
            .await
    }

    async fn create_article(&self, article: NewArticle) -> StoreResult<ArticleRecord> {
        self.pool
            .write(move |conn| queries::create_article(conn, &article))
            .await
    }

    async fn update_article(
        &self,
        id: ArticleId,
        changes: ArticleChanges,
        viewer: UserId,
    ) -> StoreResult<Option<ArticleRecord>> {
        self.pool
            .write(move |conn| queries::update_article(conn, id, &changes, viewer))
            .await
    }

    async fn delete_article(&self, id: ArticleId) -> StoreResult<bool> {
        self.pool
            .write(move |conn| queries::delete_article(conn, id))
            .await
    }

    async fn favorite(&self, user: UserId, slug: &Slug) -> StoreResult<Option<ArticleRecord>> {
        let slug = slug.as_str().to_owned();
        self.pool
            .write(move |conn| queries::set_favorite(conn, user, &slug, true))
            .await
    }

    async fn unfavorite(&self, user: UserId, slug: &Slug) -> StoreResult<Option<ArticleRecord>> {
        let slug = slug.as_str().to_owned();
        self.pool
            .write(move |conn| queries::set_favorite(conn, user, &slug, false))
            .await
    }

    async fn comments(
        &self,
        slug: &Slug,
        viewer: Option<UserId>,
    ) -> StoreResult<Option<Vec<CommentRecord>>> {
        let slug = slug.as_str().to_owned();
        self.pool
            .read(move |conn| queries::comments(conn, &slug, viewer))
            .await
    }

    async fn comment(
        &self,
        slug: &Slug,
        id: CommentId,
        viewer: Option<UserId>,
    ) -> StoreResult<Option<CommentRecord>> {
        let slug = slug.as_str().to_owned();
        self.pool
            .read(move |conn| queries::comment(conn, &slug, id, viewer))
            .await
    }

    async fn add_comment(
        &self,
        author: UserId,
        slug: &Slug,
        body: CommentBody,
    ) -> StoreResult<Option<CommentRecord>> {
        let slug = slug.as_str().to_owned();
        self.pool
            .write(move |conn| queries::add_comment(conn, author, &slug, body.as_str()))
            .await
    }

    async fn delete_comment(&self, id: CommentId) -> StoreResult<bool> {
        self.pool
            .write(move |conn| queries::delete_comment(conn, id))
            .await
    }

    async fn tags(&self) -> StoreResult<Vec<Tag>> {
        self.pool.read(queries::tags).await
    }

    async fn create_media(&self, media: MediaRecord) -> StoreResult<MediaRecord> {
        self.pool
            .write(move |conn| queries::create_media(conn, &media).map(|()| media))
            .await
    }

    async fn media(&self, id: &str) -> StoreResult<Option<MediaRecord>> {
        let id = id.to_owned();
        self.pool.read(move |conn| queries::media(conn, &id)).await
    }

    async fn delete_media(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.pool
            .write(move |conn| queries::delete_media(conn, &id))
            .await
    }

    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let sha256 = sha256.to_owned();
        self.pool
            .read(move |conn| queries::blob_in_use(conn, &sha256))
            .await
    }

    async fn admin_changes_after(&self, after: Option<i64>) -> StoreResult<Vec<(i64, String)>> {
        self.pool
            .read(move |conn| queries::admin_changes_after(conn, after))
            .await
    }
}
