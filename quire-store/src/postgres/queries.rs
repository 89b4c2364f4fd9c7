//! The SQL of the PostgreSQL store, as async functions over a connection or a transaction
//! (anything [`GenericClient`]). Statements are prepared once per connection and cached.
//! Semantics match `sqlite/queries.rs` exactly (same ordering, same counts, same conflicts);
//! where SQLite's single writer makes a race impossible, the comments say what orders it here.
//! This file must not manage connections or know HTTP.

use deadpool_postgres::GenericClient;
use quire_domain::{ArticleId, CommentId, Page, Slug, Tag, Timestamp, UserId};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::pool::unique_violation;
use crate::{
    ArticleChanges, ArticleFilter, ArticleList, ArticleRecord, CommentRecord, Count, MediaRecord,
    NewArticle, NewUser, Profile, SearchHit, SearchHits, StoreError, StoreResult, UserChanges,
    UserRecord,
};

type Params<'a> = [&'a (dyn ToSql + Sync)];

async fn all<C: GenericClient>(c: &C, sql: &str, params: &Params<'_>) -> StoreResult<Vec<Row>> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query(&statement, params).await?)
}

async fn opt<C: GenericClient>(c: &C, sql: &str, params: &Params<'_>) -> StoreResult<Option<Row>> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&statement, params).await?)
}

async fn one<C: GenericClient>(c: &C, sql: &str, params: &Params<'_>) -> StoreResult<Row> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query_one(&statement, params).await?)
}

async fn exec<C: GenericClient>(c: &C, sql: &str, params: &Params<'_>) -> StoreResult<u64> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.execute(&statement, params).await?)
}

/// A non-negative count column.
fn count_at(row: &Row, at: usize) -> u64 {
    row.get::<_, i64>(at).max(0) as u64
}

const USER_COLUMNS: &str =
    "id, username, email, password_hash, bio, image, disabled_at IS NOT NULL";

fn user_from_row(row: &Row) -> UserRecord {
    UserRecord {
        id: UserId(row.get(0)),
        username: row.get(1),
        email: row.get(2),
        password_hash: row.get(3),
        bio: row.get(4),
        image: row.get(5),
        disabled: row.get(6),
    }
}

pub async fn user_by_id<C: GenericClient>(c: &C, id: UserId) -> StoreResult<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    Ok(opt(c, &sql, &[&id.0]).await?.as_ref().map(user_from_row))
}

pub async fn user_by_email<C: GenericClient>(
    c: &C,
    email: &str,
) -> StoreResult<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
    Ok(opt(c, &sql, &[&email]).await?.as_ref().map(user_from_row))
}

/// Usernames compare ignoring ASCII case, like SQLite's NOCASE (see migration 0001).
async fn user_id_by_name<C: GenericClient>(c: &C, username: &str) -> StoreResult<Option<UserId>> {
    Ok(opt(
        c,
        "SELECT id FROM users WHERE username_key(username) = username_key($1)",
        &[&username],
    )
    .await?
    .map(|row| UserId(row.get(0))))
}

/// Names the unique fields (`username`, `email`) already held by a user other than `except`.
async fn taken_fields<C: GenericClient>(
    c: &C,
    username: Option<&str>,
    email: Option<&str>,
    except: Option<UserId>,
) -> StoreResult<Vec<&'static str>> {
    let mut taken = Vec::new();
    let other = |id: Option<UserId>| id.is_some_and(|id| Some(id) != except);
    if let Some(name) = username
        && other(user_id_by_name(c, name).await?)
    {
        taken.push("username");
    }
    if let Some(email) = email
        && other(user_by_email(c, email).await?.map(|u| u.id))
    {
        taken.push("email");
    }
    Ok(taken)
}

/// A user row's write failed: a unique violation (a concurrent writer took the name or email
/// between our check and our write) is the same conflict the check reports.
fn user_write_error(error: tokio_postgres::Error) -> StoreError {
    match unique_violation(&error) {
        Some("users_username_key") => StoreError::Conflict(vec!["username"]),
        Some("users_email_key") => StoreError::Conflict(vec!["email"]),
        _ => error.into(),
    }
}

pub async fn create_user<C: GenericClient>(c: &C, user: &NewUser) -> StoreResult<UserRecord> {
    let taken = taken_fields(
        c,
        Some(user.username.as_str()),
        Some(user.email.as_str()),
        None,
    )
    .await?;
    if !taken.is_empty() {
        return Err(StoreError::Conflict(taken));
    }
    let now = Timestamp::now().as_millis();
    let sql = format!(
        "INSERT INTO users (username, email, password_hash, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $4) RETURNING {USER_COLUMNS}"
    );
    let statement = c.prepare_cached(&sql).await?;
    let row = c
        .query_one(
            &statement,
            &[
                &user.username.as_str(),
                &user.email.as_str(),
                &user.password_hash,
                &now,
            ],
        )
        .await
        .map_err(user_write_error)?;
    Ok(user_from_row(&row))
}

pub async fn update_user<C: GenericClient>(
    c: &C,
    id: UserId,
    changes: &UserChanges,
) -> StoreResult<Option<UserRecord>> {
    let Some(current) = user_by_id(c, id).await? else {
        return Ok(None);
    };
    let taken = taken_fields(
        c,
        changes.username.as_ref().map(|u| u.as_str()),
        changes.email.as_ref().map(|e| e.as_str()),
        Some(id),
    )
    .await?;
    if !taken.is_empty() {
        return Err(StoreError::Conflict(taken));
    }
    let username = changes
        .username
        .as_ref()
        .map_or(current.username.as_str(), |u| u.as_str());
    let email = changes
        .email
        .as_ref()
        .map_or(current.email.as_str(), |e| e.as_str());
    let password_hash = changes
        .password_hash
        .as_deref()
        .unwrap_or(&current.password_hash);
    let bio = match &changes.bio {
        Some(bio) => bio.clone().map(|b| b.into_string()),
        None => current.bio.clone(),
    };
    let image = match &changes.image {
        Some(image) => image.clone().map(|i| i.into_string()),
        None => current.image.clone(),
    };
    let sql = format!(
        "UPDATE users SET username = $2, email = $3, password_hash = $4, bio = $5, image = $6,
         updated_at = $7 WHERE id = $1 RETURNING {USER_COLUMNS}"
    );
    let statement = c.prepare_cached(&sql).await?;
    let row = c
        .query_opt(
            &statement,
            &[
                &id.0,
                &username,
                &email,
                &password_hash,
                &bio,
                &image,
                &Timestamp::now().as_millis(),
            ],
        )
        .await
        .map_err(user_write_error)?;
    Ok(row.as_ref().map(user_from_row))
}

/// Columns of a profile as seen by the viewer `$1`, for a `users` row aliased `u`.
const PROFILE_COLUMNS: &str = "u.id, u.username, u.bio, u.image,
    EXISTS (SELECT 1 FROM follows fo WHERE fo.follower_id = $1 AND fo.followee_id = u.id)";

fn profile_from_row(row: &Row, at: usize) -> Profile {
    Profile {
        id: UserId(row.get(at)),
        username: row.get(at + 1),
        bio: row.get(at + 2),
        image: row.get(at + 3),
        following: row.get(at + 4),
    }
}

pub async fn profile<C: GenericClient>(
    c: &C,
    username: &str,
    viewer: Option<UserId>,
) -> StoreResult<Option<Profile>> {
    let sql = format!(
        "SELECT {PROFILE_COLUMNS} FROM users u WHERE username_key(u.username) = username_key($2)"
    );
    let viewer = viewer.map(|v| v.0);
    Ok(opt(c, &sql, &[&viewer, &username])
        .await?
        .map(|row| profile_from_row(&row, 0)))
}

pub async fn set_following<C: GenericClient>(
    c: &C,
    follower: UserId,
    username: &str,
    follow: bool,
) -> StoreResult<Option<Profile>> {
    let Some(followee) = user_id_by_name(c, username).await? else {
        return Ok(None);
    };
    if follow {
        exec(
            c,
            "INSERT INTO follows (follower_id, followee_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&follower.0, &followee.0, &Timestamp::now().as_millis()],
        )
        .await?;
    } else {
        exec(
            c,
            "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2",
            &[&follower.0, &followee.0],
        )
        .await?;
    }
    profile(c, username, Some(follower)).await
}

pub async fn count<C: GenericClient>(c: &C, what: Count) -> StoreResult<u64> {
    let (sql, user) = match what {
        Count::ArticlesBy(u) => ("SELECT count(*) FROM articles WHERE author_id = $1", u),
        Count::FavoritesReceived(u) => (
            "SELECT coalesce(sum(favorites_count), 0)::bigint FROM articles WHERE author_id = $1",
            u,
        ),
        Count::Followers(u) => ("SELECT count(*) FROM follows WHERE followee_id = $1", u),
        Count::Following(u) => ("SELECT count(*) FROM follows WHERE follower_id = $1", u),
    };
    Ok(count_at(&one(c, sql, &[&user.0]).await?, 0))
}

pub async fn favorited_ids<C: GenericClient>(c: &C, user: UserId) -> StoreResult<Vec<ArticleId>> {
    Ok(all(
        c,
        "SELECT article_id FROM favorites WHERE user_id = $1",
        &[&user.0],
    )
    .await?
    .iter()
    .map(|row| ArticleId(row.get(0)))
    .collect())
}

pub async fn following_ids<C: GenericClient>(c: &C, follower: UserId) -> StoreResult<Vec<UserId>> {
    Ok(all(
        c,
        "SELECT followee_id FROM follows WHERE follower_id = $1",
        &[&follower.0],
    )
    .await?
    .iter()
    .map(|row| UserId(row.get(0)))
    .collect())
}

/// Columns of an article (body included when `with_body`) with tags, the viewer's (`$1`)
/// flags and its author, for `articles a JOIN users u`.
fn article_columns(with_body: bool) -> String {
    let body = if with_body { "a.body" } else { "NULL::text" };
    format!(
        "a.id, a.slug, a.title, a.description, {body}, a.created_at, a.updated_at,
         a.favorites_count,
         ARRAY(SELECT t.tag FROM article_tags t WHERE t.article_id = a.id),
         EXISTS (SELECT 1 FROM favorites f WHERE f.user_id = $1 AND f.article_id = a.id),
         {PROFILE_COLUMNS}"
    )
}

fn article_from_row(row: &Row) -> ArticleRecord {
    let mut tags: Vec<String> = row.get(8);
    // Byte order, as the SQLite store sorts (not the database's collation).
    tags.sort_unstable();
    ArticleRecord {
        id: ArticleId(row.get(0)),
        slug: row.get(1),
        title: row.get(2),
        description: row.get(3),
        body: row.get(4),
        tags,
        created_at: Timestamp::from_millis(row.get(5)),
        updated_at: Timestamp::from_millis(row.get(6)),
        favorites_count: count_at(row, 7),
        favorited: row.get(9),
        author: profile_from_row(row, 10),
    }
}

pub async fn article<C: GenericClient>(
    c: &C,
    slug: &str,
    viewer: Option<UserId>,
) -> StoreResult<Option<ArticleRecord>> {
    let sql = format!(
        "SELECT {} FROM articles a JOIN users u ON u.id = a.author_id WHERE a.slug = $2",
        article_columns(true)
    );
    let viewer = viewer.map(|v| v.0);
    Ok(opt(c, &sql, &[&viewer, &slug])
        .await?
        .as_ref()
        .map(article_from_row))
}

async fn article_by_id<C: GenericClient>(
    c: &C,
    id: ArticleId,
    viewer: Option<UserId>,
) -> StoreResult<Option<ArticleRecord>> {
    let sql = format!(
        "SELECT {} FROM articles a JOIN users u ON u.id = a.author_id WHERE a.id = $2",
        article_columns(true)
    );
    let viewer = viewer.map(|v| v.0);
    Ok(opt(c, &sql, &[&viewer, &id.0])
        .await?
        .as_ref()
        .map(article_from_row))
}

/// The subquery naming a user's id by username (ASCII case ignored), for parameter `$n`.
fn user_named(n: usize) -> String {
    format!("(SELECT id FROM users WHERE username_key(username) = username_key(${n}))")
}

/// Count and page queries for one filter, with their parameters; the page query takes two
/// more (limit, offset) after them. Single filters get index-only forms (the count of all
/// articles comes from the trigger-kept `article_total`); combinations use a general form.
fn id_queries(filter: &ArticleFilter) -> (String, String, Vec<&(dyn ToSql + Sync)>) {
    match (&filter.tag, &filter.author, &filter.favorited_by) {
        (None, None, None) => (
            "SELECT value FROM article_total WHERE id = 1".into(),
            "SELECT id FROM articles ORDER BY id DESC LIMIT $1 OFFSET $2".into(),
            Vec::new(),
        ),
        (Some(tag), None, None) => (
            "SELECT count(*) FROM article_tags WHERE tag = $1".into(),
            "SELECT article_id FROM article_tags WHERE tag = $1
             ORDER BY article_id DESC LIMIT $2 OFFSET $3"
                .into(),
            vec![tag as &(dyn ToSql + Sync)],
        ),
        (None, Some(author), None) => (
            format!(
                "SELECT count(*) FROM articles WHERE author_id = {}",
                user_named(1)
            ),
            format!(
                "SELECT id FROM articles WHERE author_id = {} ORDER BY id DESC LIMIT $2 OFFSET $3",
                user_named(1)
            ),
            vec![author as &(dyn ToSql + Sync)],
        ),
        (None, None, Some(fan)) => (
            format!(
                "SELECT count(*) FROM favorites WHERE user_id = {}",
                user_named(1)
            ),
            format!(
                "SELECT article_id FROM favorites WHERE user_id = {}
                 ORDER BY article_id DESC LIMIT $2 OFFSET $3",
                user_named(1)
            ),
            vec![fan as &(dyn ToSql + Sync)],
        ),
        _ => {
            let mut clauses = Vec::new();
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
            if let Some(tag) = &filter.tag {
                params.push(tag);
                clauses.push(format!(
                    "a.id IN (SELECT article_id FROM article_tags WHERE tag = ${})",
                    params.len()
                ));
            }
            if let Some(author) = &filter.author {
                params.push(author);
                clauses.push(format!("a.author_id = {}", user_named(params.len())));
            }
            if let Some(fan) = &filter.favorited_by {
                params.push(fan);
                clauses.push(format!(
                    "a.id IN (SELECT article_id FROM favorites WHERE user_id = {})",
                    user_named(params.len())
                ));
            }
            let clause = clauses.join(" AND ");
            let n = params.len();
            (
                format!("SELECT count(*) FROM articles a WHERE {clause}"),
                format!(
                    "SELECT a.id FROM articles a WHERE {clause} ORDER BY a.id DESC
                     LIMIT ${} OFFSET ${}",
                    n + 1,
                    n + 2
                ),
                params,
            )
        }
    }
}

/// One page of ids matching `filter`, newest first, and the number of all matches.
pub async fn article_ids<C: GenericClient>(
    c: &C,
    filter: &ArticleFilter,
    page: Page,
) -> StoreResult<(Vec<ArticleId>, u64)> {
    let (count_sql, page_sql, params) = id_queries(filter);
    let total = count_at(&one(c, &count_sql, &params).await?, 0);
    if total == 0 || page.offset >= total {
        return Ok((Vec::new(), total));
    }
    let limit = i64::from(page.limit);
    let offset = i64::try_from(page.offset).unwrap_or(i64::MAX);
    let mut with_page = params;
    with_page.extend([&limit as &(dyn ToSql + Sync), &offset]);
    let ids = all(c, &page_sql, &with_page)
        .await?
        .iter()
        .map(|row| ArticleId(row.get(0)))
        .collect();
    Ok((ids, total))
}

/// Whole articles (bodies included) by id, as nobody in particular sees them.
pub async fn articles_by_ids<C: GenericClient>(
    c: &C,
    ids: &[ArticleId],
) -> StoreResult<Vec<ArticleRecord>> {
    let sql = format!(
        "SELECT {} FROM articles a JOIN users u ON u.id = a.author_id WHERE a.id = ANY($2)",
        article_columns(true)
    );
    let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
    Ok(all(c, &sql, &[&None::<i64>, &ids])
        .await?
        .iter()
        .map(article_from_row)
        .collect())
}

async fn article_id_by_slug<C: GenericClient>(c: &C, slug: &str) -> StoreResult<Option<i64>> {
    Ok(opt(c, "SELECT id FROM articles WHERE slug = $1", &[&slug])
        .await?
        .map(|row| row.get(0)))
}

pub async fn slug_to_id<C: GenericClient>(c: &C, slug: &str) -> StoreResult<Option<ArticleId>> {
    Ok(article_id_by_slug(c, slug).await?.map(ArticleId))
}

/// The feed's count: from the follower's follows into each followed author's articles.
const FEED_COUNT: &str =
    "SELECT count(*) FROM follows f JOIN articles a ON a.author_id = f.followee_id
     WHERE f.follower_id = $1";

pub async fn feed_ids<C: GenericClient>(
    c: &C,
    viewer: UserId,
    limit: u32,
) -> StoreResult<(Vec<ArticleId>, u64)> {
    let total = count_at(&one(c, FEED_COUNT, &[&viewer.0]).await?, 0);
    let ids = all(
        c,
        "SELECT a.id FROM follows f JOIN articles a ON a.author_id = f.followee_id
         WHERE f.follower_id = $1 ORDER BY a.id DESC LIMIT $2",
        &[&viewer.0, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(|row| ArticleId(row.get(0)))
    .collect();
    Ok((ids, total))
}

pub async fn feed<C: GenericClient>(c: &C, viewer: UserId, page: Page) -> StoreResult<ArticleList> {
    let total = count_at(&one(c, FEED_COUNT, &[&viewer.0]).await?, 0);
    if total == 0 || page.offset >= total {
        return Ok(ArticleList {
            articles: Vec::new(),
            total,
        });
    }
    let sql = format!(
        "SELECT {} FROM follows f
         JOIN articles a ON a.author_id = f.followee_id
         JOIN users u ON u.id = a.author_id
         WHERE f.follower_id = $1
         ORDER BY a.id DESC LIMIT $2 OFFSET $3",
        article_columns(false)
    );
    let limit = i64::from(page.limit);
    let offset = i64::try_from(page.offset).unwrap_or(i64::MAX);
    let articles = all(c, &sql, &[&viewer.0, &limit, &offset])
        .await?
        .iter()
        .map(article_from_row)
        .collect();
    Ok(ArticleList { articles, total })
}

async fn slug_taken<C: GenericClient>(
    c: &C,
    slug: &str,
    except: Option<ArticleId>,
) -> StoreResult<bool> {
    let id = article_id_by_slug(c, slug).await?;
    Ok(id.is_some_and(|id| Some(ArticleId(id)) != except))
}

/// The title's slug if free, else the slug with a short random suffix. Another writer may
/// still take it before we write; callers handle that (ON CONFLICT or a savepoint) and ask
/// again.
async fn unique_slug<C: GenericClient>(
    c: &C,
    title: &str,
    except: Option<ArticleId>,
) -> StoreResult<Slug> {
    let base = Slug::from_title(title);
    if !slug_taken(c, base.as_str(), except).await? {
        return Ok(base);
    }
    loop {
        let candidate = base.with_suffix(&random_suffix());
        if !slug_taken(c, candidate.as_str(), except).await? {
            return Ok(candidate);
        }
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Run inside a transaction: inserts the article and its tags.
pub async fn create_article<C: GenericClient>(
    c: &C,
    article: &NewArticle,
) -> StoreResult<ArticleRecord> {
    let now = Timestamp::now().as_millis();
    let id = loop {
        let slug = unique_slug(c, article.title.as_str(), None).await?;
        // A concurrent writer may have taken the slug since we looked: then no row comes
        // back and we pick another, as SQLite's single writer never needs to.
        let row = opt(
            c,
            "INSERT INTO articles (slug, author_id, title, description, body, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (slug) DO NOTHING RETURNING id",
            &[
                &slug.as_str(),
                &article.author.0,
                &article.title.as_str(),
                &article.description.as_str(),
                &article.body.as_str(),
                &now,
            ],
        )
        .await?;
        if let Some(row) = row {
            break ArticleId(row.get(0));
        }
    };
    let tags: Vec<&str> = article.tags.as_slice().iter().map(Tag::as_str).collect();
    exec(
        c,
        "INSERT INTO article_tags (article_id, tag) SELECT $1, unnest($2::text[])
         ON CONFLICT DO NOTHING",
        &[&id.0, &tags],
    )
    .await?;
    article_by_id(c, id, Some(article.author))
        .await?
        .ok_or_else(|| StoreError::Database("inserted article vanished".into()))
}

/// Run inside a transaction (the slug retry uses savepoints).
pub async fn update_article(
    tx: &mut deadpool_postgres::Transaction<'_>,
    id: ArticleId,
    changes: &ArticleChanges,
    viewer: UserId,
) -> StoreResult<Option<ArticleRecord>> {
    let Some(current) = article_by_id(tx, id, Some(viewer)).await? else {
        return Ok(None);
    };
    let title = changes
        .title
        .as_ref()
        .map_or(current.title.as_str(), |t| t.as_str());
    let description = changes
        .description
        .as_ref()
        .map_or(current.description.as_str(), |d| d.as_str());
    let body = changes
        .body
        .as_ref()
        .map(|b| b.as_str())
        .or(current.body.as_deref())
        .unwrap_or_default();
    let new_title = changes
        .title
        .as_ref()
        .filter(|t| t.as_str() != current.title);
    loop {
        let slug = match new_title {
            Some(title) => unique_slug(&*tx, title.as_str(), Some(id))
                .await?
                .into_string(),
            None => current.slug.clone(),
        };
        let attempt = tx.savepoint("slug").await?;
        let statement = attempt
            .prepare_cached(
                "UPDATE articles SET slug = $2, title = $3, description = $4, body = $5,
                 updated_at = $6 WHERE id = $1",
            )
            .await?;
        let updated = attempt
            .execute(
                &statement,
                &[
                    &id.0,
                    &slug,
                    &title,
                    &description,
                    &body,
                    &Timestamp::now().as_millis(),
                ],
            )
            .await;
        match updated {
            Ok(_) => {
                attempt.commit().await?;
                break;
            }
            // Taken by a concurrent writer since we looked: roll back to the savepoint, pick
            // another suffix.
            Err(e) if new_title.is_some() && unique_violation(&e) == Some("articles_slug_key") => {
                attempt.rollback().await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(tags) = &changes.tags {
        let tags: Vec<&str> = tags.as_slice().iter().map(Tag::as_str).collect();
        exec(
            &*tx,
            "DELETE FROM article_tags WHERE article_id = $1",
            &[&id.0],
        )
        .await?;
        exec(
            &*tx,
            "INSERT INTO article_tags (article_id, tag) SELECT $1, unnest($2::text[])
             ON CONFLICT DO NOTHING",
            &[&id.0, &tags],
        )
        .await?;
    }
    article_by_id(&*tx, id, Some(viewer)).await
}

pub async fn delete_article<C: GenericClient>(c: &C, id: ArticleId) -> StoreResult<bool> {
    // Tags, favorites and comments go with it (ON DELETE CASCADE).
    Ok(exec(c, "DELETE FROM articles WHERE id = $1", &[&id.0]).await? > 0)
}

/// Run inside a transaction. The article's row is locked first, so concurrent favorites of
/// one article (and its deletion) take turns: the count changes only when the favorites row
/// did, by exactly one, in the same transaction.
pub async fn set_favorite<C: GenericClient>(
    c: &C,
    user: UserId,
    slug: &str,
    favorite: bool,
) -> StoreResult<Option<ArticleRecord>> {
    let Some(row) = opt(
        c,
        "SELECT id FROM articles WHERE slug = $1 FOR NO KEY UPDATE",
        &[&slug],
    )
    .await?
    else {
        return Ok(None);
    };
    let id: i64 = row.get(0);
    let changed = if favorite {
        exec(
            c,
            "INSERT INTO favorites (user_id, article_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&user.0, &id, &Timestamp::now().as_millis()],
        )
        .await?
    } else {
        exec(
            c,
            "DELETE FROM favorites WHERE user_id = $1 AND article_id = $2",
            &[&user.0, &id],
        )
        .await?
    };
    if changed > 0 {
        let delta: i64 = if favorite { 1 } else { -1 };
        exec(
            c,
            "UPDATE articles SET favorites_count = favorites_count + $2 WHERE id = $1",
            &[&id, &delta],
        )
        .await?;
    }
    article_by_id(c, ArticleId(id), Some(user)).await
}

const COMMENT_COLUMNS: &str = "c.id, c.body, c.created_at, c.updated_at";

fn comment_from_row(row: &Row) -> CommentRecord {
    CommentRecord {
        id: CommentId(row.get(0)),
        body: row.get(1),
        created_at: Timestamp::from_millis(row.get(2)),
        updated_at: Timestamp::from_millis(row.get(3)),
        author: profile_from_row(row, 4),
    }
}

pub async fn comments<C: GenericClient>(
    c: &C,
    slug: &str,
    viewer: Option<UserId>,
) -> StoreResult<Option<Vec<CommentRecord>>> {
    let Some(article) = article_id_by_slug(c, slug).await? else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {COMMENT_COLUMNS}, {PROFILE_COLUMNS} FROM comments c
         JOIN users u ON u.id = c.author_id
         WHERE c.article_id = $2 ORDER BY c.id DESC"
    );
    let viewer = viewer.map(|v| v.0);
    Ok(Some(
        all(c, &sql, &[&viewer, &article])
            .await?
            .iter()
            .map(comment_from_row)
            .collect(),
    ))
}

pub async fn comment<C: GenericClient>(
    c: &C,
    slug: &str,
    id: CommentId,
    viewer: Option<UserId>,
) -> StoreResult<Option<CommentRecord>> {
    let sql = format!(
        "SELECT {COMMENT_COLUMNS}, {PROFILE_COLUMNS} FROM comments c
         JOIN users u ON u.id = c.author_id
         JOIN articles a ON a.id = c.article_id
         WHERE c.id = $2 AND a.slug = $3"
    );
    let viewer = viewer.map(|v| v.0);
    Ok(opt(c, &sql, &[&viewer, &id.0, &slug])
        .await?
        .as_ref()
        .map(comment_from_row))
}

/// One statement: the article's lookup and the insert are atomic together.
pub async fn add_comment<C: GenericClient>(
    c: &C,
    author: UserId,
    slug: &str,
    body: &str,
) -> StoreResult<Option<CommentRecord>> {
    let now = Timestamp::now().as_millis();
    let Some(row) = opt(
        c,
        "INSERT INTO comments (article_id, author_id, body, created_at, updated_at)
         SELECT id, $2, $3, $4, $4 FROM articles WHERE slug = $1 RETURNING id",
        &[&slug, &author.0, &body, &now],
    )
    .await?
    else {
        return Ok(None);
    };
    comment(c, slug, CommentId(row.get(0)), Some(author)).await
}

pub async fn delete_comment<C: GenericClient>(c: &C, id: CommentId) -> StoreResult<bool> {
    Ok(exec(c, "DELETE FROM comments WHERE id = $1", &[&id.0]).await? > 0)
}

pub async fn tags<C: GenericClient>(c: &C) -> StoreResult<Vec<Tag>> {
    // Byte order (the "C" collation), as SQLite's BINARY sorts.
    Ok(all(
        c,
        "SELECT tag FROM tag_counts ORDER BY tag COLLATE \"C\"",
        &[],
    )
    .await?
    .iter()
    .map(|row| Tag::from_trusted(row.get(0)))
    .collect())
}

pub async fn create_media<C: GenericClient>(c: &C, media: &MediaRecord) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO media (id, sha256, size, content_type, uploader_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &media.id,
            &media.sha256,
            &i64::try_from(media.size).unwrap_or(i64::MAX),
            &media.content_type,
            &media.uploader.0,
            &media.created_at.as_millis(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn media<C: GenericClient>(c: &C, id: &str) -> StoreResult<Option<MediaRecord>> {
    Ok(opt(
        c,
        "SELECT id, sha256, size, content_type, uploader_id, created_at FROM media WHERE id = $1",
        &[&id],
    )
    .await?
    .map(|row| MediaRecord {
        id: row.get(0),
        sha256: row.get(1),
        size: count_at(&row, 2),
        content_type: row.get(3),
        uploader: UserId(row.get(4)),
        created_at: Timestamp::from_millis(row.get(5)),
    }))
}

pub async fn delete_media<C: GenericClient>(c: &C, id: &str) -> StoreResult<bool> {
    Ok(exec(c, "DELETE FROM media WHERE id = $1", &[&id]).await? > 0)
}

pub async fn blob_in_use<C: GenericClient>(c: &C, sha256: &str) -> StoreResult<bool> {
    Ok(one(
        c,
        "SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = $1)",
        &[&sha256],
    )
    .await?
    .get(0))
}

/// Stores `candidate` as the secret `name` unless one is there, and returns the stored one:
/// every instance starting at once ends up with the same value.
pub async fn shared_secret_on(
    c: &tokio_postgres::Client,
    name: &str,
    candidate: &str,
) -> StoreResult<String> {
    c.execute(
        "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        &[&name, &candidate],
    )
    .await?;
    Ok(
        c.query_one("SELECT value FROM secrets WHERE name = $1", &[&name])
            .await?
            .get(0),
    )
}

/// `ts_headline` options: matches between the store's markers, about 24 words.
const HEADLINE: &str = "StartSel=\u{E000}, StopSel=\u{E001}, MaxWords=24, MinWords=12, MaxFragments=2, FragmentDelimiter=\" … \"";

pub async fn search<C: GenericClient>(
    c: &C,
    words: &[String],
    page: Page,
) -> StoreResult<SearchHits> {
    let query = words.join(" ");
    let total = count_at(
        &one(
            c,
            "SELECT count(*) FROM articles WHERE search @@ websearch_to_tsquery('english', $1)",
            &[&query],
        )
        .await?,
        0,
    );
    if total == 0 || page.offset >= total {
        return Ok(SearchHits {
            hits: Vec::new(),
            total,
        });
    }
    let hits = all(
        c,
        "SELECT a.id, ts_headline('english', a.title || ' — ' || a.description || ' — ' || a.body, q, $4)
         FROM (SELECT id, ts_rank_cd(search, q) AS rank
               FROM articles, websearch_to_tsquery('english', $1) q
               WHERE search @@ q
               ORDER BY rank DESC, id DESC LIMIT $2 OFFSET $3) hit
         JOIN articles a ON a.id = hit.id, websearch_to_tsquery('english', $1) q
         ORDER BY hit.rank DESC, hit.id DESC",
        &[
            &query,
            &i64::from(page.limit),
            &i64::try_from(page.offset).unwrap_or(i64::MAX),
            &HEADLINE,
        ],
    )
    .await?
    .iter()
    .map(|row| SearchHit {
        id: ArticleId(row.get(0)),
        snippet: row.get(1),
    })
    .collect();
    Ok(SearchHits { hits, total })
}

pub async fn admin_changes_after<C: GenericClient>(
    c: &C,
    after: Option<i64>,
) -> StoreResult<Vec<(i64, String)>> {
    let Some(after) = after else {
        let row = c
            .query_one("SELECT coalesce(max(seq), 0) FROM admin_changes", &[])
            .await?;
        return Ok(vec![(row.get(0), String::new())]);
    };
    let statement = c
        .prepare_cached(
            "SELECT seq, changes FROM admin_changes WHERE seq > $1 ORDER BY seq LIMIT 100",
        )
        .await?;
    let rows = c.query(&statement, &[&after]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
