//! The SQL, as plain functions over a connection. Reads run on reader threads; writes run on
//! the writer thread inside its batch transaction, so a write may read its own result back.
//! Statements are prepared once per connection and cached.

use quire_domain::{ArticleId, CommentId, Page, Slug, Tag, Timestamp, UserId};
use rusqlite::{Connection, OptionalExtension, Row, ToSql, named_params};

use crate::{
    ArticleChanges, ArticleFilter, ArticleList, ArticleRecord, CommentRecord, Count, MediaRecord,
    NewArticle, NewUser, Profile, SearchHit, SearchHits, StoreError, StoreResult, UserChanges,
    UserRecord,
};

/// Separates tags in one aggregated column; tags cannot contain control characters.
const TAG_SEPARATOR: char = '\u{1f}';

const USER_COLUMNS: &str =
    "id, username, email, password_hash, bio, image, disabled_at IS NOT NULL";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: UserId(row.get(0)?),
        username: row.get(1)?,
        email: row.get(2)?,
        password_hash: row.get(3)?,
        bio: row.get(4)?,
        image: row.get(5)?,
        disabled: row.get(6)?,
    })
}

pub fn user_by_id(conn: &Connection, id: UserId) -> StoreResult<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id.0], user_from_row)
        .optional()?)
}

pub fn user_by_email(conn: &Connection, email: &str) -> StoreResult<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([email], user_from_row)
        .optional()?)
}

fn user_id_by_name(conn: &Connection, username: &str) -> StoreResult<Option<UserId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM users WHERE username = ?1")?
        .query_row([username], |row| row.get(0).map(UserId))
        .optional()?)
}

/// Names the unique fields (`username`, `email`) already held by a user other than `except`.
fn taken_fields(
    conn: &Connection,
    username: Option<&str>,
    email: Option<&str>,
    except: Option<UserId>,
) -> StoreResult<Vec<&'static str>> {
    let mut taken = Vec::new();
    let other = |id: Option<UserId>| id.is_some_and(|id| Some(id) != except);
    if let Some(name) = username
        && other(user_id_by_name(conn, name)?)
    {
        taken.push("username");
    }
    if let Some(email) = email
        && other(user_by_email(conn, email)?.map(|u| u.id))
    {
        taken.push("email");
    }
    Ok(taken)
}

pub fn create_user(conn: &Connection, user: &NewUser) -> StoreResult<UserRecord> {
    let taken = taken_fields(
        conn,
        Some(user.username.as_str()),
        Some(user.email.as_str()),
        None,
    )?;
    if !taken.is_empty() {
        return Err(StoreError::Conflict(taken));
    }
    let now = Timestamp::now().as_millis();
    conn.prepare_cached(
        "INSERT INTO users (username, email, password_hash, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(rusqlite::params![
        user.username.as_str(),
        user.email.as_str(),
        user.password_hash,
        now
    ])?;
    let id = UserId(conn.last_insert_rowid());
    user_by_id(conn, id)?.ok_or_else(|| StoreError::Database("inserted user vanished".into()))
}

pub fn update_user(
    conn: &Connection,
    id: UserId,
    changes: &UserChanges,
) -> StoreResult<Option<UserRecord>> {
    let Some(current) = user_by_id(conn, id)? else {
        return Ok(None);
    };
    let taken = taken_fields(
        conn,
        changes.username.as_ref().map(|u| u.as_str()),
        changes.email.as_ref().map(|e| e.as_str()),
        Some(id),
    )?;
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
    conn.prepare_cached(
        "UPDATE users SET username = ?2, email = ?3, password_hash = ?4, bio = ?5, image = ?6,
         updated_at = ?7 WHERE id = ?1",
    )?
    .execute(rusqlite::params![
        id.0,
        username,
        email,
        password_hash,
        bio,
        image,
        Timestamp::now().as_millis()
    ])?;
    user_by_id(conn, id)
}

/// Columns of a profile as seen by `:viewer`, for a `users` row aliased `u`.
const PROFILE_COLUMNS: &str = "u.id, u.username, u.bio, u.image,
    EXISTS (SELECT 1 FROM follows fo WHERE fo.follower_id = :viewer AND fo.followee_id = u.id)";

fn profile_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<Profile> {
    Ok(Profile {
        id: UserId(row.get(at)?),
        username: row.get(at + 1)?,
        bio: row.get(at + 2)?,
        image: row.get(at + 3)?,
        following: row.get(at + 4)?,
    })
}

pub fn profile(
    conn: &Connection,
    username: &str,
    viewer: Option<UserId>,
) -> StoreResult<Option<Profile>> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM users u WHERE u.username = :username");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(
            named_params! { ":viewer": viewer.map(|v| v.0), ":username": username },
            |row| profile_from_row(row, 0),
        )
        .optional()?)
}

pub fn set_following(
    conn: &Connection,
    follower: UserId,
    username: &str,
    follow: bool,
) -> StoreResult<Option<Profile>> {
    let Some(followee) = user_id_by_name(conn, username)? else {
        return Ok(None);
    };
    if follow {
        conn.prepare_cached(
            "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?
        .execute(rusqlite::params![
            follower.0,
            followee.0,
            Timestamp::now().as_millis()
        ])?;
    } else {
        conn.prepare_cached("DELETE FROM follows WHERE follower_id = ?1 AND followee_id = ?2")?
            .execute([follower.0, followee.0])?;
    }
    profile(conn, username, Some(follower))
}

pub fn count(conn: &Connection, what: Count) -> StoreResult<u64> {
    let (sql, user) = match what {
        Count::ArticlesBy(u) => ("SELECT count(*) FROM articles WHERE author_id = ?1", u),
        Count::FavoritesReceived(u) => (
            "SELECT coalesce(sum(favorites_count), 0) FROM articles WHERE author_id = ?1",
            u,
        ),
        Count::Followers(u) => ("SELECT count(*) FROM follows WHERE followee_id = ?1", u),
        Count::Following(u) => ("SELECT count(*) FROM follows WHERE follower_id = ?1", u),
    };
    let n: i64 = conn
        .prepare_cached(sql)?
        .query_row([user.0], |row| row.get(0))?;
    Ok(n.max(0) as u64)
}

pub fn favorited_ids(conn: &Connection, user: UserId) -> StoreResult<Vec<ArticleId>> {
    Ok(conn
        .prepare_cached("SELECT article_id FROM favorites WHERE user_id = ?1")?
        .query_map([user.0], |row| row.get(0).map(ArticleId))?
        .collect::<Result<Vec<_>, _>>()?)
}

pub fn following_ids(conn: &Connection, follower: UserId) -> StoreResult<Vec<UserId>> {
    Ok(conn
        .prepare_cached("SELECT followee_id FROM follows WHERE follower_id = ?1")?
        .query_map([follower.0], |row| row.get(0).map(UserId))?
        .collect::<Result<Vec<_>, _>>()?)
}

/// Columns of an article (body included when `with_body`) with tags, the viewer's flags and
/// its author, for `articles a JOIN users u`.
fn article_columns(with_body: bool) -> String {
    let body = if with_body { "a.body" } else { "NULL" };
    format!(
        "a.id, a.slug, a.title, a.description, {body}, a.created_at, a.updated_at,
         a.favorites_count,
         (SELECT group_concat(t.tag, char(31)) FROM article_tags t WHERE t.article_id = a.id),
         EXISTS (SELECT 1 FROM favorites f WHERE f.user_id = :viewer AND f.article_id = a.id),
         {PROFILE_COLUMNS}"
    )
}

fn article_from_row(row: &Row<'_>) -> rusqlite::Result<ArticleRecord> {
    let tags: Option<String> = row.get(8)?;
    let mut tags: Vec<String> = tags
        .map(|t| t.split(TAG_SEPARATOR).map(str::to_owned).collect())
        .unwrap_or_default();
    tags.sort_unstable();
    Ok(ArticleRecord {
        id: ArticleId(row.get(0)?),
        slug: row.get(1)?,
        title: row.get(2)?,
        description: row.get(3)?,
        body: row.get(4)?,
        tags,
        created_at: Timestamp::from_millis(row.get(5)?),
        updated_at: Timestamp::from_millis(row.get(6)?),
        favorites_count: row.get::<_, i64>(7)?.max(0) as u64,
        favorited: row.get(9)?,
        author: profile_from_row(row, 10)?,
    })
}

pub fn article(
    conn: &Connection,
    slug: &str,
    viewer: Option<UserId>,
) -> StoreResult<Option<ArticleRecord>> {
    let sql = format!(
        "SELECT {} FROM articles a JOIN users u ON u.id = a.author_id WHERE a.slug = :slug",
        article_columns(true)
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(
            named_params! { ":viewer": viewer.map(|v| v.0), ":slug": slug },
            article_from_row,
        )
        .optional()?)
}

fn article_by_id(
    conn: &Connection,
    id: ArticleId,
    viewer: Option<UserId>,
) -> StoreResult<Option<ArticleRecord>> {
    let sql = format!(
        "SELECT {} FROM articles a JOIN users u ON u.id = a.author_id WHERE a.id = :id",
        article_columns(true)
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(
            named_params! { ":viewer": viewer.map(|v| v.0), ":id": id.0 },
            article_from_row,
        )
        .optional()?)
}

/// The `WHERE` clause and parameters of a filtered list.
fn filter_clause(filter: &ArticleFilter) -> (String, Vec<(&'static str, &dyn ToSql)>) {
    let mut clauses = vec!["1 = 1"];
    let mut params: Vec<(&str, &dyn ToSql)> = Vec::new();
    if let Some(tag) = &filter.tag {
        clauses.push("a.id IN (SELECT article_id FROM article_tags WHERE tag = :tag)");
        params.push((":tag", tag));
    }
    if let Some(author) = &filter.author {
        clauses.push("a.author_id = (SELECT id FROM users WHERE username = :author)");
        params.push((":author", author));
    }
    if let Some(fan) = &filter.favorited_by {
        clauses.push(
            "a.id IN (SELECT article_id FROM favorites
                      WHERE user_id = (SELECT id FROM users WHERE username = :fan))",
        );
        params.push((":fan", fan));
    }
    (clauses.join(" AND "), params)
}

/// Count and page queries for one filter. Single filters get index-only forms (the count of
/// all articles comes from the trigger-kept `article_total`); combinations use the general form.
fn id_queries(filter: &ArticleFilter) -> (String, String, Vec<(&'static str, &dyn ToSql)>) {
    let page = " LIMIT :limit OFFSET :offset";
    match (&filter.tag, &filter.author, &filter.favorited_by) {
        (None, None, None) => (
            "SELECT value FROM article_total WHERE id = 1".into(),
            format!("SELECT id FROM articles ORDER BY id DESC{page}"),
            Vec::new(),
        ),
        (Some(tag), None, None) => (
            "SELECT count(*) FROM article_tags WHERE tag = :tag".into(),
            format!("SELECT article_id FROM article_tags WHERE tag = :tag ORDER BY article_id DESC{page}"),
            vec![(":tag", tag as &dyn ToSql)],
        ),
        (None, Some(author), None) => (
            "SELECT count(*) FROM articles
             WHERE author_id = (SELECT id FROM users WHERE username = :author)"
                .into(),
            format!(
                "SELECT id FROM articles WHERE author_id = (SELECT id FROM users WHERE username = :author)
                 ORDER BY id DESC{page}"
            ),
            vec![(":author", author as &dyn ToSql)],
        ),
        (None, None, Some(fan)) => (
            "SELECT count(*) FROM favorites
             WHERE user_id = (SELECT id FROM users WHERE username = :fan)"
                .into(),
            format!(
                "SELECT article_id FROM favorites WHERE user_id = (SELECT id FROM users WHERE username = :fan)
                 ORDER BY article_id DESC{page}"
            ),
            vec![(":fan", fan as &dyn ToSql)],
        ),
        _ => {
            let (clause, params) = filter_clause(filter);
            (
                format!("SELECT count(*) FROM articles a WHERE {clause}"),
                format!("SELECT a.id FROM articles a WHERE {clause} ORDER BY a.id DESC{page}"),
                params,
            )
        }
    }
}

/// One page of ids matching `filter`, newest first, and the number of all matches.
pub fn article_ids(
    conn: &Connection,
    filter: &ArticleFilter,
    page: Page,
) -> StoreResult<(Vec<ArticleId>, u64)> {
    let (count_sql, page_sql, params) = id_queries(filter);
    let total: i64 = conn
        .prepare_cached(&count_sql)?
        .query_row(params.as_slice(), |row| row.get(0))?;
    if total <= 0 || page.offset >= total as u64 {
        return Ok((Vec::new(), total.max(0) as u64));
    }
    let limit = i64::from(page.limit);
    let offset = i64::try_from(page.offset).unwrap_or(i64::MAX);
    let mut all = params;
    all.extend([
        (":limit", &limit as &dyn ToSql),
        (":offset", &offset as &dyn ToSql),
    ]);
    let ids = conn
        .prepare_cached(&page_sql)?
        .query_map(all.as_slice(), |row| row.get(0).map(ArticleId))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((ids, total as u64))
}

/// Whole articles (bodies included) by id, as nobody in particular sees them.
pub fn articles_by_ids(conn: &Connection, ids: &[ArticleId]) -> StoreResult<Vec<ArticleRecord>> {
    let ids_json = format!(
        "[{}]",
        ids.iter()
            .map(|id| id.0.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let sql = format!(
        "SELECT {} FROM articles a JOIN users u ON u.id = a.author_id
         WHERE a.id IN (SELECT value FROM json_each(:ids))",
        article_columns(true)
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_map(
            named_params! { ":viewer": None::<i64>, ":ids": ids_json },
            article_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?)
}

pub fn slug_to_id(conn: &Connection, slug: &str) -> StoreResult<Option<ArticleId>> {
    Ok(article_id_by_slug(conn, slug)?.map(ArticleId))
}

/// The feed's count and page queries: from the follower's follows into each followed
/// author's range of `articles_by_author`, never scanning all articles.
fn feed_queries() -> (&'static str, String) {
    (
        "SELECT count(*) FROM follows f JOIN articles a ON a.author_id = f.followee_id
         WHERE f.follower_id = :follower",
        format!(
            "SELECT {} FROM follows f
             JOIN articles a ON a.author_id = f.followee_id
             JOIN users u ON u.id = a.author_id
             WHERE f.follower_id = :follower
             ORDER BY a.id DESC LIMIT :limit OFFSET :offset",
            article_columns(false)
        ),
    )
}

pub fn feed_ids(
    conn: &Connection,
    viewer: UserId,
    limit: u32,
) -> StoreResult<(Vec<ArticleId>, u64)> {
    let (count_sql, _) = feed_queries();
    let total: i64 = conn
        .prepare_cached(count_sql)?
        .query_row(named_params! { ":follower": viewer.0 }, |row| row.get(0))?;
    let ids = conn
        .prepare_cached(
            "SELECT a.id FROM follows f JOIN articles a ON a.author_id = f.followee_id
             WHERE f.follower_id = :follower ORDER BY a.id DESC LIMIT :limit",
        )?
        .query_map(
            named_params! { ":follower": viewer.0, ":limit": i64::from(limit) },
            |row| row.get(0).map(ArticleId),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((ids, total.max(0) as u64))
}

pub fn feed(conn: &Connection, viewer: UserId, page: Page) -> StoreResult<ArticleList> {
    let (count_sql, page_sql) = feed_queries();
    let total: i64 = conn
        .prepare_cached(count_sql)?
        .query_row(named_params! { ":follower": viewer.0 }, |row| row.get(0))?;
    if total <= 0 || page.offset >= total as u64 {
        return Ok(ArticleList {
            articles: Vec::new(),
            total: total.max(0) as u64,
        });
    }
    let articles = conn
        .prepare_cached(&page_sql)?
        .query_map(
            named_params! {
                ":follower": viewer.0,
                ":viewer": viewer.0,
                ":limit": i64::from(page.limit),
                ":offset": i64::try_from(page.offset).unwrap_or(i64::MAX),
            },
            article_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ArticleList {
        articles,
        total: total as u64,
    })
}

fn slug_taken(conn: &Connection, slug: &str, except: Option<ArticleId>) -> StoreResult<bool> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM articles WHERE slug = ?1")?
        .query_row([slug], |row| row.get(0))
        .optional()?;
    Ok(id.is_some_and(|id| Some(ArticleId(id)) != except))
}

/// The title's slug if free, else the slug with a short random suffix.
fn unique_slug(conn: &Connection, title: &str, except: Option<ArticleId>) -> StoreResult<Slug> {
    let base = Slug::from_title(title);
    if !slug_taken(conn, base.as_str(), except)? {
        return Ok(base);
    }
    loop {
        let candidate = base.with_suffix(&random_suffix());
        if !slug_taken(conn, candidate.as_str(), except)? {
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

fn insert_tags(conn: &Connection, id: ArticleId, tags: &[Tag]) -> StoreResult<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO article_tags (article_id, tag) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for tag in tags {
        insert.execute(rusqlite::params![id.0, tag.as_str()])?;
    }
    Ok(())
}

pub fn create_article(conn: &Connection, article: &NewArticle) -> StoreResult<ArticleRecord> {
    let slug = unique_slug(conn, article.title.as_str(), None)?;
    let now = Timestamp::now().as_millis();
    conn.prepare_cached(
        "INSERT INTO articles (slug, author_id, title, description, body, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(rusqlite::params![
        slug.as_str(),
        article.author.0,
        article.title.as_str(),
        article.description.as_str(),
        article.body.as_str(),
        now
    ])?;
    let id = ArticleId(conn.last_insert_rowid());
    insert_tags(conn, id, article.tags.as_slice())?;
    article_by_id(conn, id, Some(article.author))?
        .ok_or_else(|| StoreError::Database("inserted article vanished".into()))
}

pub fn update_article(
    conn: &Connection,
    id: ArticleId,
    changes: &ArticleChanges,
    viewer: UserId,
) -> StoreResult<Option<ArticleRecord>> {
    let Some(current) = article_by_id(conn, id, Some(viewer))? else {
        return Ok(None);
    };
    let slug = match &changes.title {
        Some(title) if title.as_str() != current.title => {
            unique_slug(conn, title.as_str(), Some(id))?.into_string()
        }
        _ => current.slug,
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
    conn.prepare_cached(
        "UPDATE articles SET slug = ?2, title = ?3, description = ?4, body = ?5, updated_at = ?6
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![
        id.0,
        slug,
        title,
        description,
        body,
        Timestamp::now().as_millis()
    ])?;
    if let Some(tags) = &changes.tags {
        conn.prepare_cached("DELETE FROM article_tags WHERE article_id = ?1")?
            .execute([id.0])?;
        insert_tags(conn, id, tags.as_slice())?;
    }
    article_by_id(conn, id, Some(viewer))
}

pub fn delete_article(conn: &Connection, id: ArticleId) -> StoreResult<bool> {
    // Tags, favorites and comments go with it (ON DELETE CASCADE).
    Ok(conn
        .prepare_cached("DELETE FROM articles WHERE id = ?1")?
        .execute([id.0])?
        > 0)
}

pub fn set_favorite(
    conn: &Connection,
    user: UserId,
    slug: &str,
    favorite: bool,
) -> StoreResult<Option<ArticleRecord>> {
    let Some(id) = article_id_by_slug(conn, slug)? else {
        return Ok(None);
    };
    let changed = if favorite {
        conn.prepare_cached(
            "INSERT INTO favorites (user_id, article_id, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?
        .execute(rusqlite::params![user.0, id, Timestamp::now().as_millis()])?
    } else {
        conn.prepare_cached("DELETE FROM favorites WHERE user_id = ?1 AND article_id = ?2")?
            .execute([user.0, id])?
    };
    if changed > 0 {
        let delta: i64 = if favorite { 1 } else { -1 };
        conn.prepare_cached(
            "UPDATE articles SET favorites_count = favorites_count + ?2 WHERE id = ?1",
        )?
        .execute([id, delta])?;
    }
    article_by_id(conn, ArticleId(id), Some(user))
}

const COMMENT_COLUMNS: &str = "c.id, c.body, c.created_at, c.updated_at";

fn comment_from_row(row: &Row<'_>) -> rusqlite::Result<CommentRecord> {
    Ok(CommentRecord {
        id: CommentId(row.get(0)?),
        body: row.get(1)?,
        created_at: Timestamp::from_millis(row.get(2)?),
        updated_at: Timestamp::from_millis(row.get(3)?),
        author: profile_from_row(row, 4)?,
    })
}

fn article_id_by_slug(conn: &Connection, slug: &str) -> StoreResult<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM articles WHERE slug = ?1")?
        .query_row([slug], |row| row.get(0))
        .optional()?)
}

pub fn comments(
    conn: &Connection,
    slug: &str,
    viewer: Option<UserId>,
) -> StoreResult<Option<Vec<CommentRecord>>> {
    let Some(article) = article_id_by_slug(conn, slug)? else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {COMMENT_COLUMNS}, {PROFILE_COLUMNS} FROM comments c
         JOIN users u ON u.id = c.author_id
         WHERE c.article_id = :article ORDER BY c.id DESC"
    );
    let comments = conn
        .prepare_cached(&sql)?
        .query_map(
            named_params! { ":viewer": viewer.map(|v| v.0), ":article": article },
            comment_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(comments))
}

pub fn comment(
    conn: &Connection,
    slug: &str,
    id: CommentId,
    viewer: Option<UserId>,
) -> StoreResult<Option<CommentRecord>> {
    let sql = format!(
        "SELECT {COMMENT_COLUMNS}, {PROFILE_COLUMNS} FROM comments c
         JOIN users u ON u.id = c.author_id
         JOIN articles a ON a.id = c.article_id
         WHERE c.id = :id AND a.slug = :slug"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(
            named_params! { ":viewer": viewer.map(|v| v.0), ":id": id.0, ":slug": slug },
            comment_from_row,
        )
        .optional()?)
}

pub fn add_comment(
    conn: &Connection,
    author: UserId,
    slug: &str,
    body: &str,
) -> StoreResult<Option<CommentRecord>> {
    let Some(article) = article_id_by_slug(conn, slug)? else {
        return Ok(None);
    };
    let now = Timestamp::now().as_millis();
    conn.prepare_cached(
        "INSERT INTO comments (article_id, author_id, body, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(rusqlite::params![article, author.0, body, now])?;
    let id = CommentId(conn.last_insert_rowid());
    comment(conn, slug, id, Some(author))
}

pub fn delete_comment(conn: &Connection, id: CommentId) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM comments WHERE id = ?1")?
        .execute([id.0])?
        > 0)
}

pub fn tags(conn: &Connection) -> StoreResult<Vec<Tag>> {
    Ok(conn
        .prepare_cached("SELECT tag FROM tag_counts ORDER BY tag")?
        .query_map([], |row| row.get(0).map(Tag::from_trusted))?
        .collect::<Result<Vec<_>, _>>()?)
}

pub fn create_media(conn: &Connection, media: &MediaRecord) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO media (id, sha256, size, content_type, uploader_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(rusqlite::params![
        media.id,
        media.sha256,
        i64::try_from(media.size).unwrap_or(i64::MAX),
        media.content_type,
        media.uploader.0,
        media.created_at.as_millis()
    ])?;
    Ok(())
}

pub fn media(conn: &Connection, id: &str) -> StoreResult<Option<MediaRecord>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, sha256, size, content_type, uploader_id, created_at FROM media
             WHERE id = ?1",
        )?
        .query_row([id], |row| {
            Ok(MediaRecord {
                id: row.get(0)?,
                sha256: row.get(1)?,
                size: row.get::<_, i64>(2)?.max(0) as u64,
                content_type: row.get(3)?,
                uploader: UserId(row.get(4)?),
                created_at: Timestamp::from_millis(row.get(5)?),
            })
        })
        .optional()?)
}

pub fn delete_media(conn: &Connection, id: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM media WHERE id = ?1")?
        .execute([id])?
        > 0)
}

pub fn blob_in_use(conn: &Connection, sha256: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = ?1)")?
        .query_row([sha256], |row| row.get(0))?)
}

/// FTS5 query text for `words`: each word a quoted string (so no word is read as syntax),
/// all required.
fn fts_query(words: &[String]) -> String {
    words
        .iter()
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn search(conn: &Connection, words: &[String], page: Page) -> StoreResult<SearchHits> {
    let query = fts_query(words);
    let total: i64 = conn
        .prepare_cached("SELECT count(*) FROM article_search WHERE article_search MATCH ?1")?
        .query_row([&query], |row| row.get(0))?;
    if total <= 0 || page.offset >= total as u64 {
        return Ok(SearchHits {
            hits: Vec::new(),
            total: total.max(0) as u64,
        });
    }
    let hits = conn
        .prepare_cached(
            "SELECT rowid, snippet(article_search, -1, char(57344), char(57345), '…', 24)
             FROM article_search WHERE article_search MATCH :query
             ORDER BY bm25(article_search, 10.0, 4.0, 1.0), rowid DESC
             LIMIT :limit OFFSET :offset",
        )?
        .query_map(
            named_params! {
                ":query": query,
                ":limit": i64::from(page.limit),
                ":offset": i64::try_from(page.offset).unwrap_or(i64::MAX),
            },
            |row| {
                Ok(SearchHit {
                    id: ArticleId(row.get(0)?),
                    snippet: row.get(1)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SearchHits {
        hits,
        total: total as u64,
    })
}

pub fn admin_changes_after(
    conn: &Connection,
    after: Option<i64>,
) -> StoreResult<Vec<(i64, String)>> {
    let Some(after) = after else {
        let newest: i64 =
            conn.query_row("SELECT coalesce(max(seq), 0) FROM admin_changes", [], |r| {
                r.get(0)
            })?;
        return Ok(vec![(newest, String::new())]);
    };
    let mut statement = conn.prepare_cached(
        "SELECT seq, changes FROM admin_changes WHERE seq > ?1 ORDER BY seq LIMIT 100",
    )?;
    let rows = statement
        .query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    /// The query plan's detail lines.
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
        stmt.query_map(rusqlite::params_from_iter(nulls), |row| {
            row.get::<_, String>(3)
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// A full scan is `SCAN <table>` without an index. Allowed (by prefix): the unfiltered page,
    /// which walks `articles` by rowid from the newest and stops after `LIMIT + OFFSET` rows,
    /// and the scan of a query's own list of ids (`json_each`).
    fn assert_no_full_scan(conn: &Connection, sql: &str, allowed: &[&str]) {
        for line in plan(conn, sql) {
            let full_scan = line.starts_with("SCAN ") && !line.contains("USING");
            assert!(
                !full_scan || allowed.iter().any(|a| line.starts_with(a)),
                "full scan `{line}` in:\n{sql}"
            );
        }
    }

    #[test]
    fn list_and_feed_queries_use_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate::migrate(&mut conn).unwrap();
        let some = || Some("x".to_owned());
        let filters = [
            ArticleFilter::default(),
            ArticleFilter {
                tag: some(),
                ..Default::default()
            },
            ArticleFilter {
                author: some(),
                ..Default::default()
            },
            ArticleFilter {
                favorited_by: some(),
                ..Default::default()
            },
            ArticleFilter {
                tag: some(),
                author: some(),
                favorited_by: some(),
            },
            ArticleFilter {
                tag: some(),
                author: some(),
                favorited_by: None,
            },
        ];
        for filter in &filters {
            let (count_sql, page_sql, _) = id_queries(filter);
            assert_no_full_scan(&conn, &count_sql, &[]);
            assert_no_full_scan(&conn, &page_sql, &["SCAN articles", "SCAN a"]);
        }
        let (count_sql, page_sql) = feed_queries();
        assert_no_full_scan(&conn, count_sql, &[]);
        assert_no_full_scan(
            &conn,
            "SELECT a.id FROM follows f JOIN articles a ON a.author_id = f.followee_id
             WHERE f.follower_id = :follower ORDER BY a.id DESC LIMIT :limit",
            &[],
        );
        assert_no_full_scan(&conn, &page_sql, &[]);
        let by_ids = format!(
            "SELECT {} FROM articles a JOIN users u ON u.id = a.author_id
             WHERE a.id IN (SELECT value FROM json_each(:ids))",
            article_columns(true)
        );
        assert_no_full_scan(&conn, &by_ids, &["SCAN json_each VIRTUAL TABLE"]);
        // The tag list is the whole of `tag_counts` (one row per distinct tag) by design.
        assert_no_full_scan(
            &conn,
            "SELECT tag FROM tag_counts ORDER BY tag",
            &["SCAN tag_counts"],
        );
    }
}
