//! `GET /api/search?q=` (an extension of the spec): full-text search of articles, ranked best
//! first, paged like `/api/articles` (`limit`, `offset`). Each article comes without its body
//! and with `snippet`: its text around the matched words, HTML-escaped, each match in `<mark>`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::{ApiQuery, MaybeAuthUser};
use crate::openapi::CommonErrors;
use crate::views::ArticleView;
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_articles))
}

/// `GET /api/search` query parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The words to find (in titles, descriptions and bodies; all must match; stemmed).
    q: Option<String>,
    /// Results per page (default 20, at most 100).
    limit: Option<String>,
    /// Results to skip.
    offset: Option<String>,
}

/// One match.
#[derive(Serialize, ToSchema)]
pub struct SearchHitView<'a> {
    #[serde(flatten)]
    pub article: ArticleView<'a>,
    /// The text around the matches, HTML-escaped, each match in `<mark>…</mark>`.
    pub snippet: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchBody<'a> {
    pub articles: Vec<SearchHitView<'a>>,
    /// Matches in all.
    pub articles_count: u64,
}

/// A store snippet (matches between the store's markers) as HTML: the text escaped, each
/// match in `<mark>`.
pub(crate) fn snippet_html(snippet: &str) -> String {
    let mut html = String::with_capacity(snippet.len() + 32);
    for c in snippet.chars() {
        match c {
            quire_app::MARK_START => html.push_str("<mark>"),
            quire_app::MARK_END => html.push_str("</mark>"),
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            c => html.push(c),
        }
    }
    html
}

#[utoipa::path(get, path = "/api/search", tag = "Articles", operation_id = "SearchArticles",
    description = "Full-text search of articles (an extension of the spec): every word of `q` must match (stemmed, in title, description or body); best matches first; paged like `GET /api/articles`. Articles come without bodies, each with a `snippet`.",
    params(SearchParams), security((), ("Token" = [])),
    responses((status = 200, body = SearchBody<'static>), CommonErrors))]
async fn search_articles(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Response, ApiError> {
    let page = state
        .app
        .search(
            params.q.as_deref(),
            params.limit.as_deref(),
            params.offset.as_deref(),
            viewer.as_ref(),
        )
        .await?;
    let records: Vec<_> = page
        .results
        .iter()
        .map(|result| {
            let mut record = result.article.to_record();
            record.body = None;
            record
        })
        .collect();
    let body = SearchBody {
        articles: records
            .iter()
            .zip(&page.results)
            .map(|(record, result)| SearchHitView {
                article: record.into(),
                snippet: snippet_html(&result.snippet),
            })
            .collect(),
        articles_count: page.total,
    };
    Ok(Json(body).into_response())
}
