//! What the templates show, made from the use cases' records: dates as text, counts, links
//! for paging. No HTML here: templates escape every value (only sanitized Markdown is
//! marked safe, in `markdown.rs`).

use quire_app::{ArticleRecord, CommentRecord, SeenArticle};

use super::PAGE_SIZE;

/// An article as a list or page shows it.
pub(crate) struct ArticleView {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub author: String,
    /// RFC 3339, for `<time datetime>`.
    pub created: String,
    /// `2026-12-03`, for reading.
    pub created_day: String,
    pub updated: String,
    pub updated_day: String,
    pub favorites: u64,
    pub tags: Vec<String>,
}

impl ArticleView {
    pub(crate) fn of(article: &ArticleRecord) -> Self {
        let created = article.created_at.to_rfc3339();
        let updated = article.updated_at.to_rfc3339();
        Self {
            slug: article.slug.clone(),
            title: article.title.clone(),
            description: article.description.clone(),
            author: article.author.username.clone(),
            created_day: created.get(..10).unwrap_or_default().to_owned(),
            updated_day: updated.get(..10).unwrap_or_default().to_owned(),
            created,
            updated,
            favorites: article.favorites_count,
            tags: article.tags.clone(),
        }
    }

    pub(crate) fn list(articles: &[SeenArticle]) -> Vec<Self> {
        articles
            .iter()
            .map(|seen| Self::of(seen.record()))
            .collect()
    }
}

/// An article's entry in a list (home, tag and author pages) as HTML. It shows no reader's
/// flags, so it is rendered once per cached article version and kept with it.
#[derive(askama::Template)]
#[template(path = "web/preview.html")]
struct Preview {
    a: ArticleView,
}

/// The list entries of `articles`, each rendered at most once per version.
pub(crate) fn previews(articles: &[SeenArticle]) -> Vec<std::sync::Arc<str>> {
    use askama::Template as _;
    articles
        .iter()
        .map(|seen| {
            crate::render::article_preview_html(seen, |record| {
                Preview {
                    a: ArticleView::of(record),
                }
                .render()
                .unwrap_or_default()
            })
        })
        .collect()
}

/// A comment as an article page shows it.
pub(crate) struct CommentView {
    pub id: i64,
    pub body_html: std::sync::Arc<str>,
    pub author: String,
    pub created: String,
    pub created_day: String,
    /// Whether the reader wrote it (and may delete it).
    pub mine: bool,
}

impl CommentView {
    pub(crate) fn of(comment: &CommentRecord, reader: Option<&str>) -> Self {
        let created = comment.created_at.to_rfc3339();
        Self {
            id: comment.id.0,
            body_html: super::markdown::comment_html(&comment.body),
            author: comment.author.username.clone(),
            created_day: created.get(..10).unwrap_or_default().to_owned(),
            created,
            mine: reader == Some(comment.author.username.as_str()),
        }
    }
}

/// Links to the newer and older pages of a list.
pub(crate) struct Pager {
    pub number: u64,
    pub pages: u64,
    pub newer: Option<String>,
    pub older: Option<String>,
}

impl Pager {
    /// Page `number` (from 1) of `total` items; `link(n)` is page n's URL.
    pub(crate) fn new(number: u64, total: u64, link: impl Fn(u64) -> String) -> Self {
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        Self {
            number,
            pages,
            newer: (number > 1).then(|| link(number - 1)),
            older: (number < pages).then(|| link(number + 1)),
        }
    }
}

/// A tab of a page's lists (global feed, your feed; an author's articles, their favorites).
pub(crate) struct Tab {
    pub label: String,
    pub href: String,
    pub current: bool,
}

/// A page number from a query (`?page=3`); anything else is page 1.
pub(crate) fn page_number(raw: Option<&str>) -> u64 {
    raw.and_then(|p| p.parse().ok())
        .filter(|p| (1..=1_000_000).contains(p))
        .unwrap_or(1)
}

/// `limit` and `offset` of page `number`, as the list use cases take them.
pub(crate) fn limit_offset(number: u64) -> (String, String) {
    (
        PAGE_SIZE.to_string(),
        ((number - 1).saturating_mul(PAGE_SIZE)).to_string(),
    )
}

/// A path segment, percent-encoded (everything but ASCII letters and digits and `-._~`).
pub(crate) fn segment(text: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}
