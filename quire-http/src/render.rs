//! The hot read answers (articles, article lists, the dashboard's articles, tags) written
//! from JSON rendered once per cached version instead of serialized per request.
//!
//! An article's JSON is the same for every reader but for `favorited` and
//! `author.following`. Everything else is serialized once into the memo of the cached
//! version it came from (with the body for single-article answers, without it for lists),
//! ending just before the reader's flags; an answer copies those bytes and appends the flags.
//! A write replaces the cached version and so its memo: a rendering never outlives the data
//! it was made from. The shapes are those of [`crate::views`] (a test compares them); only
//! the key order differs (`favorited` comes last), which JSON objects do not carry.

use std::sync::{Arc, Mutex, OnceLock};

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use quire_app::{ArticleRecord, Dashboard, SeenArticle};
use quire_domain::{Tag, Timestamp};
use serde::Serialize;

use crate::views::{DashboardStats, ProfileView};

/// What an article's memo holds: its two renderings, each made on first use.
#[derive(Default)]
struct Renderings {
    with_body: OnceLock<Bytes>,
    without_body: OnceLock<Bytes>,
    /// The body as HTML, for the web pages.
    html_body: OnceLock<std::sync::Arc<str>>,
    /// The article's entry in the web pages' lists.
    html_preview: OnceLock<std::sync::Arc<str>>,
}

/// The viewer-independent fields, in the order they are written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    slug: &'a str,
    title: &'a str,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    tag_list: &'a [String],
    created_at: Timestamp,
    updated_at: Timestamp,
    favorites_count: u64,
    author: AuthorHead<'a>,
}

#[derive(Serialize)]
struct AuthorHead<'a> {
    username: &'a str,
    bio: Option<&'a str>,
    image: Option<&'a str>,
}

/// `{"slug":…,"author":{"username":…,"image":…,"following":` — an article's JSON up to its
/// reader's first flag.
fn head(article: &ArticleRecord, with_body: bool) -> Bytes {
    let head = Head {
        slug: &article.slug,
        title: &article.title,
        description: &article.description,
        body: article.body.as_deref().filter(|_| with_body),
        tag_list: &article.tags,
        created_at: article.created_at,
        updated_at: article.updated_at,
        favorites_count: article.favorites_count,
        author: AuthorHead {
            username: &article.author.username,
            bio: article.author.bio.as_deref(),
            image: article.author.image.as_deref(),
        },
    };
    let mut json = serde_json::to_vec(&head).unwrap_or_default();
    // Reopen the two objects the serializer closed, to append the flags.
    json.truncate(json.len().saturating_sub(2));
    json.extend_from_slice(br#","following":"#);
    Bytes::from(json)
}

/// The rendered head of `seen`'s version, made now if this version has none yet.
fn head_of(seen: &SeenArticle, with_body: bool) -> Bytes {
    let record = seen.record();
    let Some(renderings) = seen.shared.memo.get_or_init(Renderings::default) else {
        return head(record, with_body);
    };
    let slot = if with_body {
        &renderings.with_body
    } else {
        &renderings.without_body
    };
    slot.get_or_init(|| head(record, with_body)).clone()
}

/// The body of `seen`'s version as HTML (made by `to_html` once per version).
pub(crate) fn article_html(
    seen: &SeenArticle,
    to_html: impl FnOnce(&str) -> String,
) -> std::sync::Arc<str> {
    let body = seen.record().body.as_deref().unwrap_or_default();
    memo_html(seen, |r| &r.html_body, || to_html(body))
}

/// The list entry of `seen`'s version as HTML (made by `render` once per version).
pub(crate) fn article_preview_html(
    seen: &SeenArticle,
    render: impl FnOnce(&ArticleRecord) -> String,
) -> std::sync::Arc<str> {
    memo_html(seen, |r| &r.html_preview, || render(seen.record()))
}

fn memo_html(
    seen: &SeenArticle,
    slot: impl FnOnce(&Renderings) -> &OnceLock<std::sync::Arc<str>>,
    make: impl FnOnce() -> String,
) -> std::sync::Arc<str> {
    match seen.shared.memo.get_or_init(Renderings::default) {
        Some(renderings) => slot(renderings).get_or_init(|| make().into()).clone(),
        None => make().into(),
    }
}

fn flag(value: bool) -> &'static [u8] {
    if value { b"true" } else { b"false" }
}

/// Appends `seen` as this reader sees it, from its rendered `head`.
fn put_article(out: &mut BytesMut, head: &[u8], seen: &SeenArticle) {
    out.put_slice(head);
    out.put_slice(flag(seen.following));
    out.put_slice(br#"},"favorited":"#);
    out.put_slice(flag(seen.favorited));
    out.put_u8(b'}');
}

/// Appends `[article,…]` (without bodies).
fn put_list(out: &mut BytesMut, articles: &[SeenArticle]) {
    out.put_u8(b'[');
    for (i, seen) in articles.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        put_article(out, &head_of(seen, false), seen);
    }
    out.put_u8(b']');
}

fn json_response(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Room for `count` list entries, so building an answer allocates once.
fn capacity(articles: &[SeenArticle]) -> usize {
    articles
        .iter()
        .map(|a| {
            let r = a.record();
            r.title.len() + r.description.len() + 64 * r.tags.len() + 320
        })
        .sum::<usize>()
        + 64
}

/// `{"article":{…}}`, body included.
pub(crate) fn article(seen: &SeenArticle) -> Response {
    let head = head_of(seen, true);
    let mut out = BytesMut::with_capacity(head.len() + 64);
    out.put_slice(br#"{"article":"#);
    put_article(&mut out, &head, seen);
    out.put_u8(b'}');
    json_response(out.freeze())
}

/// `{"articles":[…],"articlesCount":n}`, bodies left out.
pub(crate) fn articles(articles: &[SeenArticle], total: u64) -> Response {
    let mut out = BytesMut::with_capacity(capacity(articles));
    out.put_slice(br#"{"articles":"#);
    put_list(&mut out, articles);
    out.put_slice(br#","articlesCount":"#);
    out.put_slice(total.to_string().as_bytes());
    out.put_u8(b'}');
    json_response(out.freeze())
}

/// `{"dashboard":{"profile":…,"stats":…,"latestArticles":[…]}}`.
pub(crate) fn dashboard(dashboard: &Dashboard) -> Response {
    #[derive(Serialize)]
    struct Start<'a> {
        profile: ProfileView<'a>,
        stats: DashboardStats,
    }
    let start = Start {
        profile: (&dashboard.profile).into(),
        stats: DashboardStats {
            articles: dashboard.stats.articles,
            favorites_received: dashboard.stats.favorites_received,
            followers: dashboard.stats.followers,
            following: dashboard.stats.following,
        },
    };
    let mut out = BytesMut::with_capacity(capacity(&dashboard.latest) + 256);
    out.put_slice(br#"{"dashboard":"#);
    let mut writer = out.writer();
    let _ = serde_json::to_writer(&mut writer, &start);
    let mut out = writer.into_inner();
    out.truncate(out.len().saturating_sub(1));
    out.put_slice(br#","latestArticles":"#);
    put_list(&mut out, &dashboard.latest);
    out.put_slice(b"}}");
    json_response(out.freeze())
}

/// `{"tags":[…]}` of the last tag list seen, kept while the app serves that same list.
#[derive(Default)]
pub struct TagsJson(Mutex<Option<(Arc<Vec<Tag>>, Bytes)>>);

impl TagsJson {
    pub(crate) fn response(&self, tags: Arc<Vec<Tag>>) -> Response {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let json = match &*last {
            Some((source, json)) if Arc::ptr_eq(source, &tags) => json.clone(),
            _ => {
                let names: Vec<&str> = tags.iter().map(Tag::as_str).collect();
                let body = crate::views::TagsBody { tags: names };
                let json = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
                *last = Some((tags, json.clone()));
                json
            }
        };
        drop(last);
        json_response(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{ArticleBody, ArticleView, ArticlesBody};
    use quire_app::{Profile, SharedArticle};
    use quire_domain::{ArticleId, UserId};
    use serde_json::Value;

    fn record(body: Option<&str>, bio: Option<&str>) -> ArticleRecord {
        ArticleRecord {
            id: ArticleId(7),
            slug: "how-to-\"quote\"".into(),
            title: "How to \"quote\" \\ things\n".into(),
            description: "ünïcödé </script>".into(),
            body: body.map(str::to_owned),
            tags: vec!["a".into(), "b\"c".into()],
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
            favorited: false,
            favorites_count: 3,
            author: Profile {
                id: UserId(9),
                username: "jake".into(),
                bio: bio.map(str::to_owned),
                image: None,
                following: false,
            },
        }
    }

    async fn body_json(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// What the serde views say `seen` looks like to its reader.
    fn expected(seen: &SeenArticle, with_body: bool) -> ArticleRecord {
        let mut record = seen.record().clone();
        record.favorited = seen.favorited;
        record.author.following = seen.following;
        if !with_body {
            record.body = None;
        }
        record
    }

    fn seen(record: ArticleRecord, favorited: bool, following: bool) -> SeenArticle {
        SeenArticle {
            shared: Arc::new(SharedArticle::new(record)),
            favorited,
            following,
        }
    }

    #[tokio::test]
    async fn an_article_renders_as_the_view_does_for_every_reader() {
        let shared = seen(
            record(Some("the \"body\""), Some("bio \\ here")),
            false,
            false,
        );
        for (favorited, following) in [(false, false), (true, false), (false, true), (true, true)] {
            let reader = SeenArticle {
                favorited,
                following,
                ..shared.clone()
            };
            let want = expected(&reader, true);
            let want = serde_json::to_value(ArticleBody {
                article: ArticleView::from(&want),
            })
            .unwrap();
            assert_eq!(body_json(article(&reader)).await, want);
        }
    }

    #[tokio::test]
    async fn lists_leave_bodies_out_and_count_all() {
        let list = vec![
            seen(record(Some("long body"), None), true, false),
            seen(record(None, Some("x")), false, true),
        ];
        let records: Vec<_> = list.iter().map(|s| expected(s, false)).collect();
        let want = serde_json::to_value(ArticlesBody {
            articles: records.iter().map(ArticleView::from).collect(),
            articles_count: 42,
        })
        .unwrap();
        assert_eq!(body_json(articles(&list, 42)).await, want);
        let empty = serde_json::json!({"articles": [], "articlesCount": 0});
        assert_eq!(body_json(articles(&[], 0)).await, empty);
    }

    #[tokio::test]
    async fn a_new_version_is_rendered_anew() {
        let first = seen(record(Some("old"), None), false, false);
        let old = body_json(article(&first)).await;
        let mut changed = record(Some("new"), None);
        changed.favorites_count = 4;
        let second = seen(changed, false, false);
        let new = body_json(article(&second)).await;
        assert_eq!(old["article"]["body"], "old");
        assert_eq!(new["article"]["body"], "new");
        assert_eq!(new["article"]["favoritesCount"], 4);
    }
}
