//! The PostgreSQL backend, for running many quire instances on one shared database.
//! [`pool`] holds connections and their settings, [`queries`] all SQL, [`migrate`] the
//! schema. Every method has the SQLite store's behaviour; where SQLite relies on its single
//! writer, this backend relies on transactions and row locks (see `queries.rs`).
//!
//! Writes commit before they return (with `synchronous_commit=on`), so an `Ok` is durable.
//! A caller that goes away mid-write drops its transaction, which rolls back: never half a
//! write. This module must not know HTTP or authorization rules.
//!
//! Each [`Store`] method is one `postgres.<method>` span (DEBUG level: free unless logs at
//! that level or trace export want it), from taking a connection to the last row.

pub(crate) mod migrate;
mod pool;
mod queries;
mod replicas;

use async_trait::async_trait;
use quire_domain::{ArticleId, CommentBody, CommentId, Email, Page, Slug, Tag, UserId, Username};

pub use migrate::MIGRATIONS;
use pool::PgPool;
pub(crate) use pool::connection_config;
pub use pool::{PgOptions, redact};
pub use replicas::ReplicaOptions;
use replicas::Replicas;
use std::sync::Arc;

use crate::{
    ArticleChanges, ArticleFilter, ArticleList, ArticleRecord, CommentRecord, Count, MediaRecord,
    NewArticle, NewUser, Profile, SearchHits, Store, StoreError, StoreResult, UserChanges,
    UserRecord,
};

/// A [`Store`] in a PostgreSQL database, optionally reading from streaming replicas of it.
pub struct PgStore {
    pool: PgPool,
    replicas: Option<(Arc<Replicas>, tokio::task::AbortHandle)>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some((_, monitor)) = &self.replicas {
            monitor.abort();
        }
    }
}

impl PgStore {
    /// Connects to the database at `url` (failing at once, with a clear message, when it is
    /// unreachable or missing), checks durability settings and migrates it.
    pub async fn open(url: &str, options: PgOptions) -> StoreResult<Self> {
        Self::open_with_replicas(url, &[], options, ReplicaOptions::default()).await
    }

    /// [`PgStore::open`], with reads sent to the replicas at `replica_urls` when they have
    /// replayed every write this instance acknowledged (see `replicas.rs`). A replica down
    /// at start is not an error: it is skipped until it answers.
    pub async fn open_with_replicas(
        url: &str,
        replica_urls: &[String],
        options: PgOptions,
        replica_options: ReplicaOptions,
    ) -> StoreResult<Self> {
        let config = connection_config(url, &options)?;
        let pool = PgPool::new(config, &options, true)?;
        let mut client = pool.get_for_start().await.map_err(|e| match e {
            StoreError::Unavailable(why) | StoreError::Database(why) => {
                StoreError::Config(format!("cannot connect: {why}"))
            }
            StoreError::Overloaded => StoreError::Config("cannot connect: timed out".into()),
            other => other,
        })?;
        let synchronous: String = client
            .query_one("SHOW synchronous_commit", &[])
            .await?
            .get(0);
        if synchronous != "on" {
            return Err(StoreError::Config(format!(
                "synchronous_commit is {synchronous:?} on the connection, expected \"on\""
            )));
        }
        let version = migrate::migrate(&mut client).await?;
        tracing::debug!(url = %redact(url), version, "postgres store open");
        drop(client);
        let replicas = if replica_urls.is_empty() {
            None
        } else {
            let replicas = Replicas::new(replica_urls, &options)?;
            let monitor = replicas.spawn_monitor(&pool, replica_options);
            Some((replicas, monitor))
        };
        Ok(Self { pool, replicas })
    }

    /// A connection for a read: a replica that has replayed this instance's writes, if one
    /// is usable now, else the primary.
    async fn reader(&self) -> StoreResult<deadpool_postgres::Object> {
        if let Some((replicas, _)) = &self.replicas {
            if let Some(client) = replicas.reader().await {
                metrics::counter!("store_reads_total", "target" => "replica").increment(1);
                return Ok(client);
            }
            metrics::counter!("store_reads_total", "target" => "primary").increment(1);
        }
        self.pool.get().await
    }

    /// After a write on `client` committed: raise the replicas' fence past it.
    async fn wrote(&self, client: &deadpool_postgres::Object) {
        if let Some((replicas, _)) = &self.replicas {
            replicas.wrote(client).await;
        }
    }
}

/// The secret `name` every instance on the (already migrated) database at `url` shares:
/// `candidate` if none was stored yet, else the stored one. Two instances starting at once
/// agree, because the first insert wins and both read the winner back. One short-lived
/// connection, independent of any store's pool.
pub async fn shared_secret(
    url: &str,
    options: &PgOptions,
    name: &str,
    candidate: &str,
) -> StoreResult<String> {
    let config = connection_config(url, options)?;
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| StoreError::Config(format!("cannot connect: {}", pool::describe(&e))))?;
    let driver = tokio::spawn(connection);
    let secret = queries::shared_secret_on(&client, name, candidate).await;
    drop(client);
    let _ = driver.await;
    secret
}

#[async_trait]
impl Store for PgStore {
    #[tracing::instrument(name = "postgres.ping", level = "debug", skip_all)]
    async fn ping(&self) -> StoreResult<()> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    #[tracing::instrument(name = "postgres.create_user", level = "debug", skip_all)]
    async fn create_user(&self, user: NewUser) -> StoreResult<UserRecord> {
        let client = self.pool.get().await?;
        let written = queries::create_user(&client, &user).await;
        self.wrote(&client).await;
        written
    }

    #[tracing::instrument(name = "postgres.user_by_id", level = "debug", skip_all)]
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let client = self.reader().await?;
        queries::user_by_id(&client, id).await
    }

    #[tracing::instrument(name = "postgres.user_by_email", level = "debug", skip_all)]
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserRecord>> {
        let client = self.reader().await?;
        queries::user_by_email(&client, email.as_str()).await
    }

    #[tracing::instrument(name = "postgres.update_user", level = "debug", skip_all)]
    async fn update_user(
        &self,
        id: UserId,
        changes: UserChanges,
    ) -> StoreResult<Option<UserRecord>> {
        let client = self.pool.get().await?;
        let written = queries::update_user(&client, id, &changes).await;
        self.wrote(&client).await;
        written
    }

    #[tracing::instrument(name = "postgres.profile", level = "debug", skip_all)]
    async fn profile(
        &self,
        username: &Username,
        viewer: Option<UserId>,
    ) -> StoreResult<Option<Profile>> {
        let client = self.reader().await?;
        queries::profile(&client, username.as_str(), viewer).await
    }

    #[tracing::instrument(name = "postgres.follow", level = "debug", skip_all)]
    async fn follow(&self, follower: UserId, username: &Username) -> StoreResult<Option<Profile>> {
        let client = self.pool.get().await?;
        let written = queries::set_following(&client, follower, username.as_str(), true).await;
        self.wrote(&client).await;
        written
    }

    #[tracing::instrument(name = "postgres.unfollow", level = "debug", skip_all)]
    async fn unfollow(
        &self,
        follower: UserId,
        username: &Username,
    ) -> StoreResult<Option<Profile>> {
        let client = self.pool.get().await?;
        let written = queries::set_following(&client, follower, username.as_str(), false).await;
        self.wrote(&client).await;
        written
    }

    #[tracing::instrument(name = "postgres.count", level = "debug", skip_all)]
    async fn count(&self, what: Count) -> StoreResult<u64> {
        let client = self.reader().await?;
        queries::count(&client, what).await
    }

    #[tracing::instrument(name = "postgres.favorited_ids", level = "debug", skip_all)]
    async fn favorited_ids(&self, user: UserId) -> StoreResult<Vec<ArticleId>> {
        let client = self.reader().await?;
        queries::favorited_ids(&client, user).await
    }

    #[tracing::instrument(name = "postgres.following_ids", level = "debug", skip_all)]
    async fn following_ids(&self, follower: UserId) -> StoreResult<Vec<UserId>> {
        let client = self.reader().await?;
        queries::following_ids(&client, follower).await
    }

    #[tracing::instrument(name = "postgres.article_ids", level = "debug", skip_all)]
    async fn article_ids(
        &self,
        filter: ArticleFilter,
        page: Page,
    ) -> StoreResult<(Vec<ArticleId>, u64)> {
        let client = self.reader().await?;
        queries::article_ids(&client, &filter, page).await
    }

    #[tracing::instrument(name = "postgres.articles_by_ids", level = "debug", skip_all)]
    async fn articles_by_ids(&self, ids: Vec<ArticleId>) -> StoreResult<Vec<ArticleRecord>> {
        let client = self.reader().await?;
        queries::articles_by_ids(&client, &ids).await
    }

    #[tracing::instrument(name = "postgres.article_id", level = "debug", skip_all)]
    async fn article_id(&self, slug: &Slug) -> StoreResult<Option<ArticleId>> {
        let client = self.reader().await?;
        queries::slug_to_id(&client, slug.as_str()).await
    }

    #[tracing::instrument(name = "postgres.feed_ids", level = "debug", skip_all)]
    async fn feed_ids(&self, viewer: UserId, limit: u32) -> StoreResult<(Vec<ArticleId>, u64)> {
        let client = self.reader().await?;
        queries::feed_ids(&client, viewer, limit).await
    }

    #[tracing::instrument(name = "postgres.feed", level = "debug", skip_all)]
    async fn feed(&self, viewer: UserId, page: Page) -> StoreResult<ArticleList> {
        let client = self.reader().await?;
        queries::feed(&client, viewer, page).await
    }

    #[tracing::instrument(name = "postgres.search", level = "debug", skip_all)]
    async fn search(&self, words: Vec<String>, page: Page) -> StoreResult<SearchHits> {
        let client = self.reader().await?;
        queries::search(&client, &words, page).await
    }

    #[tracing::instrument(name = "postgres.article", level = "debug", skip_all)]
    async fn article(
        &self,
        slug: &Slug,
        viewer: Option<UserId>,
    ) -> StoreResult<Option<ArticleRecord>> {
        let client = self.reader().await?;
        queries::article(&client, slug.as_str(), viewer).await
    }

    #[tracing::instrument(name = "postgres.create_article", level = "debug", skip_all)]
    async fn create_article(&self, article: NewArticle) -> StoreResult<ArticleRecord> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let created = queries::create_article(&tx, &article).await?;
        tx.commit().await?;
        self.wrote(&client).await;
        Ok(created)
    }

    #[tracing::instrument(name = "postgres.update_article", level = "debug", skip_all)]
    async fn update_article(
        &self,
        id: ArticleId,
        changes: ArticleChanges,
        viewer: UserId,
    ) -> StoreResult<Option<ArticleRecord>> {
        let mut client = self.pool.get().await?;
        let mut tx = client.transaction().await?;
        let updated = queries::update_article(&mut tx, id, &changes, viewer).await?;
        tx.commit().await?;
        self.wrote(&client).await;
        Ok(updated)
    }

    #[tracing::instrument(name = "postgres.delete_article", level = "debug", skip_all)]
    async fn delete_article(&self, id: ArticleId) -> StoreResult<bool> {
        let client = self.pool.get().await?;
        let written = queries::delete_article(&client, id).await;
        self.wrote(&client).await;
        written
    }

    #[tracing::instrument(name = "postgres.favorite", level = "debug", skip_all)]
    async fn favorite(&self, user: UserId, slug: &Slug) -> StoreResult<Option<ArticleRecord>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let article = queries::set_favorite(&tx, user, slug.as_str(), true).await?;
        tx.commit().await?;
        self.wrote(&client).await;
        Ok(article)
    }

    #[tracing::instrument(name = "postgres.unfavorite", level = "debug", skip_all)]
    async fn unfavorite(&self, user: UserId, slug: &Slug) -> StoreResult<Option<ArticleRecord>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let article = queries::set_favorite(&tx, user, slug.as_str(), false).await?;
        tx.commit().await?;
        self.wrote(&client).await;
        Ok(article)
    }

    #[tracing::instrument(name = "postgres.comments", level = "debug", skip_all)]
    async fn comments(
        &self,
        slug: &Slug,
        viewer: Option<UserId>,
    ) -> StoreResult<Option<Vec<CommentRecord>>> {
        let client = self.reader().await?;
        queries::comments(&client, slug.as_str(), viewer).await
    }

    #[tracing::instrument(name = "postgres.comment", level = "debug", skip_all)]
    async fn comment(
        &self,
        slug: &Slug,
        id: CommentId,
        viewer: Option<UserId>,
    ) -> StoreResult<Option<CommentRecord>> {
        let client = self.reader().await?;
        queries::comment(&client, slug.as_str(), id, viewer).await
    }

    #[tracing::instrument(name = "postgres.add_comment", level = "debug", skip_all)]
    async fn add_comment(
        &self,
        author: UserId,
        slug: &Slug,
        body: CommentBody,
    ) -> StoreResult<Option<CommentRecord>> {
        let client = self.pool.get().await?;
        let written = queries::add_comment(&client, author, slug.as_str(), body.as_str()).await;
        self.wrote(&client).await;
        written
    }

    #[tracing::instrument(name = "postgres.delete_comment", level = "debug", skip_all)]
    async fn delete_comment(&self, id: CommentId) -> StoreResult<bool> {
        let client = self.pool.get().await?;
        let written = queries::delete_comment(&client, id).await;
        self.wrote(&client).await;
        written
    }

    #[tracing::instrument(name = "postgres.tags", level = "debug", skip_all)]
    async fn tags(&self) -> StoreResult<Vec<Tag>> {
        let client = self.reader().await?;
        queries::tags(&client).await
    }

    #[tracing::instrument(name = "postgres.create_media", level = "debug", skip_all)]
    async fn create_media(&self, media: MediaRecord) -> StoreResult<MediaRecord> {
        let client = self.pool.get().await?;
        queries::create_media(&client, &media).await?;
        self.wrote(&client).await;
        Ok(media)
    }

    #[tracing::instrument(name = "postgres.media", level = "debug", skip_all)]
    async fn media(&self, id: &str) -> StoreResult<Option<MediaRecord>> {
        let client = self.reader().await?;
        queries::media(&client, id).await
    }

    #[tracing::instrument(name = "postgres.delete_media", level = "debug", skip_all)]
    async fn delete_media(&self, id: &str) -> StoreResult<bool> {
        let client = self.pool.get().await?;
        let written = queries::delete_media(&client, id).await;
        self.wrote(&client).await;
        written
    }

    #[tracing::instrument(name = "postgres.blob_in_use", level = "debug", skip_all)]
    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let client = self.pool.get().await?;
        queries::blob_in_use(&client, sha256).await
    }

    async fn admin_changes_after(&self, after: Option<i64>) -> StoreResult<Vec<(i64, String)>> {
        // The primary: a replica may not have replayed the change yet.
        let client = self.pool.get().await?;
        queries::admin_changes_after(&client, after).await
    }
}
