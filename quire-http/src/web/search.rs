//! The search page (`/search?q=`): a search form and the ranked matches, each with its
//! snippet (matches highlighted), 20 a page.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use quire_app::AppError;
use serde::Deserialize;

use super::views::{ArticleView, Pager, limit_offset, page_number};
use super::{Layout, WebError, WebSession, page};
use crate::AppState;
use crate::extract::ApiQuery;
use crate::routes::search::snippet_html;

#[derive(Deserialize, Default)]
pub(crate) struct SearchQuery {
    q: Option<String>,
    page: Option<String>,
}

pub(crate) struct Hit {
    pub a: ArticleView,
    pub snippet_html: String,
}

#[derive(Template)]
#[template(path = "web/search.html")]
struct SearchPage {
    layout: Layout,
    q: String,
    /// `None` before anything was asked.
    hits: Option<Vec<Hit>>,
    total: u64,
    error: Option<String>,
    pager: Pager,
}

pub(crate) async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Response, WebError> {
    let q = query.q.unwrap_or_default();
    let number = page_number(query.page.as_deref());
    let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let path = if q.is_empty() {
        "/search".to_owned()
    } else {
        format!("/search?q={encoded}")
    };
    let layout = Layout::new(&state, &headers, &session, "Search", path);
    let mut found = SearchPage {
        layout,
        q: q.clone(),
        hits: None,
        total: 0,
        error: None,
        pager: Pager::new(1, 0, |_| String::new()),
    };
    if !q.trim().is_empty() {
        let (limit, offset) = limit_offset(number);
        match state
            .app
            .search(
                Some(&q),
                Some(&limit),
                Some(&offset),
                session.viewer.as_ref(),
            )
            .await
        {
            Ok(results) => {
                found.total = results.total;
                found.pager = Pager::new(number, results.total, |n| {
                    format!("/search?q={encoded}&page={n}")
                });
                found.hits = Some(
                    results
                        .results
                        .iter()
                        .map(|r| Hit {
                            a: ArticleView::of(r.article.record()),
                            snippet_html: snippet_html(&r.snippet),
                        })
                        .collect(),
                );
            }
            Err(AppError::Validation(errors)) => {
                found.error = Some(
                    errors
                        .iter()
                        .map(|(_, messages)| format!("The search {}", messages.join(", ")))
                        .collect::<Vec<_>>()
                        .join("; "),
                );
            }
            Err(other) => return Err(other.into()),
        }
    }
    let status = if found.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(page(status, &found, session))
}
