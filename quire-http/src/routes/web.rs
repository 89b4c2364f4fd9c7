//! The human-readable blog (`GET /`, `GET /articles/{slug}`): small server-rendered HTML pages
//! over the same use cases as the API, with every value HTML-escaped and strict security
//! headers (no scripts at all: `Content-Security-Policy: default-src 'none'`).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quire_app::{AppError, ArticleQuery, ArticleRecord, SeenArticle};
use serde::Deserialize;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::CommonErrors;
use crate::{ApiError, AppState};

const PAGE_SIZE: u64 = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(home))
        .routes(routes!(article))
}

/// Escapes text for HTML element content and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a path segment (slugs are URL-safe, but nothing is assumed).
fn path_segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · quire</title><style>body{{font-family:system-ui,sans-serif;max-width:46rem;\
         margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}}a{{color:#3a6}}\
         .meta{{color:#777;font-size:.9rem}}.tag{{background:#eee;border-radius:.6rem;\
         padding:0 .5rem;margin-right:.3rem;font-size:.8rem}}article{{margin:1.5rem 0}}\
         .body{{white-space:pre-wrap}}</style></head><body><header><a href=\"/\"><strong>quire\
         </strong></a></header><main>{body}</main></body></html>",
        escape(title)
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    let set = |v: &'static str| HeaderValue::from_static(v);
    headers.insert(header::CONTENT_TYPE, set("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        set("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, set("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, set("DENY"));
    headers.insert(header::REFERRER_POLICY, set("no-referrer"));
    response
}

fn meta(article: &ArticleRecord) -> String {
    let mut tags = String::new();
    for tag in &article.tags {
        let _ = write!(tags, "<span class=\"tag\">{}</span>", escape(tag));
    }
    format!(
        "<p class=\"meta\">by {} · {} · {} favorites {}</p>",
        escape(&article.author.username),
        escape(&article.created_at.to_rfc3339()[..10]),
        article.favorites_count,
        tags
    )
}

#[derive(Deserialize)]
struct HomeQuery {
    page: Option<String>,
}

#[utoipa::path(get, path = "/", tag = "Web", operation_id = "HomePage",
    params(("page" = Option<u32>, Query, minimum = 1, description = "page of 20 articles, from 1")),
    responses(
        (status = 200, description = "the newest articles", content_type = "text/html", body = String),
        CommonErrors))]
async fn home(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HomeQuery>,
) -> Result<Response, ApiError> {
    let number: u64 = query
        .page
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let list = state
        .app
        .list_articles(
            ArticleQuery {
                limit: Some(PAGE_SIZE.to_string()),
                offset: Some(((number - 1).saturating_mul(PAGE_SIZE)).to_string()),
                ..ArticleQuery::default()
            },
            None,
        )
        .await?;
    let mut body = String::from("<h1>Latest articles</h1>");
    if list.articles.is_empty() {
        body.push_str("<p>Nothing here yet.</p>");
    }
    for article in list.articles.iter().map(SeenArticle::record) {
        let _ = write!(
            body,
            "<article><h2><a href=\"/articles/{}\">{}</a></h2><p>{}</p>{}</article>",
            path_segment(&article.slug),
            escape(&article.title),
            escape(&article.description),
            meta(article)
        );
    }
    let _ = write!(body, "<nav>");
    if number > 1 {
        let _ = write!(body, "<a href=\"/?page={}\">← newer</a> ", number - 1);
    }
    if number.saturating_mul(PAGE_SIZE) < list.total {
        let _ = write!(body, "<a href=\"/?page={}\">older →</a>", number + 1);
    }
    body.push_str("</nav>");
    Ok(page(StatusCode::OK, "Latest articles", &body))
}

#[utoipa::path(get, path = "/articles/{slug}", tag = "Web", operation_id = "ArticlePage",
    params(("slug" = String, Path, description = "the article's slug")),
    responses(
        (status = 200, description = "the article and its comments", content_type = "text/html", body = String),
        (status = 404, description = "no such article (an HTML page)", content_type = "text/html", body = String),
        CommonErrors))]
async fn article(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<Response, ApiError> {
    match state.app.article(&slug, None).await {
        Ok(seen) => {
            let article = seen.record();
            let body = format!(
                "<article><h1>{}</h1>{}<p><em>{}</em></p><div class=\"body\">{}</div></article>",
                escape(&article.title),
                meta(article),
                escape(&article.description),
                escape(article.body.as_deref().unwrap_or_default())
            );
            Ok(page(StatusCode::OK, &article.title, &body))
        }
        Err(AppError::NotFound(_)) => Ok(page(
            StatusCode::NOT_FOUND,
            "Not found",
            "<h1>Not found</h1><p>No article by that name.</p>",
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<script>alert("x&y's")</script>"#),
            "&lt;script&gt;alert(&quot;x&amp;y&#39;s&quot;)&lt;/script&gt;"
        );
        assert_eq!(path_segment("a b/c"), "a+b%2Fc");
    }
}
