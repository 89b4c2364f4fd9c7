//! Discovery: Atom feeds (the whole site, a tag, an author: the 20 newest articles) with
//! `ETag` and `Last-Modified` answered with 304 when unchanged, `sitemap.xml` (the home page
//! and the newest 1,000 articles) and `robots.txt`.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quire_app::{ArticleQuery, SeenArticle};
use quire_domain::Timestamp;
use sha2::{Digest as _, Sha256};

use super::views::{ArticleView, segment};
use super::{WebError, site_origin};
use crate::AppState;
use crate::conditional::none_match;

/// Entries per feed.
const FEED_SIZE: u64 = 20;
/// Articles listed in the sitemap at most (its format allows 50,000).
const SITEMAP_ARTICLES: u64 = 1000;

#[derive(Template)]
#[template(path = "web/atom.xml")]
struct AtomFeed {
    origin: String,
    /// This feed's own path.
    path: String,
    /// The page the feed follows.
    page: String,
    title: String,
    updated: String,
    entries: Vec<ArticleView>,
}

async fn newest(
    state: &AppState,
    query: ArticleQuery,
    limit: u64,
) -> Result<Vec<SeenArticle>, WebError> {
    let mut articles = Vec::new();
    let mut offset = 0;
    while offset < limit {
        let page = state
            .app
            .list_articles(
                ArticleQuery {
                    limit: Some((limit - offset).min(100).to_string()),
                    offset: Some(offset.to_string()),
                    ..query.clone()
                },
                None,
            )
            .await?;
        let got = page.articles.len() as u64;
        articles.extend(page.articles);
        offset += got;
        if got == 0 || offset >= page.total {
            break;
        }
    }
    Ok(articles)
}

/// A feed of `query`'s newest articles, or 304 if the reader has this version.
async fn feed(
    state: &AppState,
    headers: &HeaderMap,
    query: ArticleQuery,
    title: String,
    page: String,
    path: String,
) -> Result<Response, WebError> {
    let articles = newest(state, query, FEED_SIZE).await?;
    let last = articles
        .iter()
        .map(|seen| seen.record().updated_at)
        .max()
        .unwrap_or(Timestamp::from_millis(0));
    let feed = AtomFeed {
        origin: site_origin(state, headers),
        path,
        page,
        title,
        updated: last.to_rfc3339(),
        entries: ArticleView::list(&articles),
    };
    let xml = feed
        .render()
        .map_err(|e| WebError::App(quire_app::AppError::Internal(e.to_string())))?;
    let tag = format!("\"{:x}\"", Sha256::digest(xml.as_bytes()));
    let modified = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs((last.as_millis().max(0) / 1000) as u64);
    let unchanged = if headers.contains_key(header::IF_NONE_MATCH) {
        none_match(headers, &tag)
    } else {
        headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| since >= modified)
    };
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        xml.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/atom+xml; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    // Weak: the same feed goes out compressed or not, and both encodings answer to it.
    if let Ok(value) = HeaderValue::from_str(&format!("W/{tag}")) {
        h.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
        h.insert(header::LAST_MODIFIED, value);
    }
    Ok(response)
}

pub(crate) async fn site(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    feed(
        &state,
        &headers,
        ArticleQuery::default(),
        "quire: all articles".to_owned(),
        "/".to_owned(),
        "/feed.atom".to_owned(),
    )
    .await
}

pub(crate) async fn tag(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tag): Path<String>,
) -> Result<Response, WebError> {
    let page = format!("/tag/{}", segment(&tag));
    feed(
        &state,
        &headers,
        ArticleQuery {
            tag: Some(tag.clone()),
            ..ArticleQuery::default()
        },
        format!("quire: articles tagged {tag}"),
        page.clone(),
        format!("{page}/feed.atom"),
    )
    .await
}

pub(crate) async fn author(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Result<Response, WebError> {
    let profile = state.app.profile(&username, None).await?;
    let page = format!("/profile/{}", segment(&profile.username));
    feed(
        &state,
        &headers,
        ArticleQuery {
            author: Some(profile.username.clone()),
            ..ArticleQuery::default()
        },
        format!("quire: articles by {}", profile.username),
        page.clone(),
        format!("{page}/feed.atom"),
    )
    .await
}

#[derive(Template)]
#[template(path = "web/sitemap.xml")]
struct Sitemap {
    origin: String,
    articles: Vec<ArticleView>,
}

pub(crate) async fn sitemap(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let articles = newest(&state, ArticleQuery::default(), SITEMAP_ARTICLES).await?;
    let xml = Sitemap {
        origin: site_origin(&state, &headers),
        articles: ArticleView::list(&articles),
    }
    .render()
    .map_err(|e| WebError::App(quire_app::AppError::Internal(e.to_string())))?;
    Ok((
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        xml,
    )
        .into_response())
}

pub(crate) async fn robots(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let text = format!(
        "User-agent: *\nAllow: /\nDisallow: /api/\n\nSitemap: {}/sitemap.xml\n",
        site_origin(&state, &headers)
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}
