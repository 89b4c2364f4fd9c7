//! Articles: `GET /articles/feed` (GetArticlesFeed), `GET /articles` (GetArticles), `POST
//! /articles` (CreateArticle), `GET`/`PUT`/`DELETE /articles/{slug}` (GetArticle,
//! UpdateArticle, DeleteArticle), `POST`/`DELETE /articles/{slug}/favorite`
//! (CreateArticleFavorite, DeleteArticleFavorite).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quire_app::{ArticleQuery, ArticleRecord, NewArticleInput, UpdateArticleInput};
use serde::Deserialize;

use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, MaybeAuthUser};
use crate::openapi::{CommonErrors, Forbidden, NotFound};
use crate::views::{ArticleBody, ArticlesBody};
use crate::{ApiError, AppState, render};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The `{"article": {...}}` envelope of article requests.
#[derive(Deserialize, ToSchema)]
struct ArticleEnvelope<T> {
    article: T,
}

/// `limit` and `offset` of the feed, unparsed (the app parses them).
#[derive(Deserialize)]
struct PageQuery {
    limit: Option<String>,
    offset: Option<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_articles_feed))
        .routes(routes!(get_articles, create_article))
        .routes(routes!(get_article, update_article, delete_article))
        .routes(routes!(create_article_favorite, delete_article_favorite))
}

fn article_response(status: StatusCode, article: &ArticleRecord) -> Response {
    (status, Json(ArticleBody::from(article))).into_response()
}

#[utoipa::path(get, path = "/api/articles/feed", tag = "Articles", operation_id = "GetArticlesFeed",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, description = "articles per page, 1 to 100 (larger values count as 100); default 20"),
        ("offset" = Option<u32>, Query, description = "articles to skip; default 0"),
    ),
    security(("Token" = [])),
    responses((status = 200, body = ArticlesBody<'static>), CommonErrors))]
async fn get_articles_feed(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let list = state
        .app
        .feed(&viewer, page.limit.as_deref(), page.offset.as_deref())
        .await?;
    Ok(render::articles(&list.articles, list.total))
}

#[utoipa::path(get, path = "/api/articles", tag = "Articles", operation_id = "GetArticles",
    params(ArticleQuery), security((), ("Token" = [])),
    responses((status = 200, body = ArticlesBody<'static>), CommonErrors))]
async fn get_articles(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    ApiQuery(query): ApiQuery<ArticleQuery>,
) -> Result<Response, ApiError> {
    let list = state.app.list_articles(query, viewer.as_ref()).await?;
    Ok(render::articles(&list.articles, list.total))
}

#[utoipa::path(post, path = "/api/articles", tag = "Articles", operation_id = "CreateArticle",
    request_body = ArticleEnvelope<NewArticleInput>, security(("Token" = [])),
    responses((status = 201, body = ArticleBody<'static>), CommonErrors))]
async fn create_article(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiJson(body): ApiJson<ArticleEnvelope<NewArticleInput>>,
) -> Result<Response, ApiError> {
    let article = state.app.create_article(&viewer, body.article).await?;
    Ok(article_response(StatusCode::CREATED, &article))
}

#[utoipa::path(get, path = "/api/articles/{slug}", tag = "Articles", operation_id = "GetArticle",
    params(("slug" = String, Path, description = "the article's slug")), security((), ("Token" = [])),
    responses((status = 200, body = ArticleBody<'static>), NotFound, CommonErrors))]
async fn get_article(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<Response, ApiError> {
    let article = state.app.article(&slug, viewer.as_ref()).await?;
    Ok(render::article(&article))
}

#[utoipa::path(put, path = "/api/articles/{slug}", tag = "Articles", operation_id = "UpdateArticle",
    params(("slug" = String, Path, description = "the article's slug")), request_body = ArticleEnvelope<UpdateArticleInput>, security(("Token" = [])),
    responses((status = 200, body = ArticleBody<'static>), Forbidden, NotFound, CommonErrors))]
async fn update_article(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<ArticleEnvelope<UpdateArticleInput>>,
) -> Result<Response, ApiError> {
    let article = state
        .app
        .update_article(&viewer, &slug, body.article)
        .await?;
    Ok(article_response(StatusCode::OK, &article))
}

#[utoipa::path(delete, path = "/api/articles/{slug}", tag = "Articles", operation_id = "DeleteArticle",
    params(("slug" = String, Path, description = "the article's slug")), security(("Token" = [])),
    responses((status = 204, description = "deleted"), Forbidden, NotFound, CommonErrors))]
async fn delete_article(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.app.delete_article(&viewer, &slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/articles/{slug}/favorite", tag = "Favorites", operation_id = "CreateArticleFavorite",
    params(("slug" = String, Path, description = "the article's slug")), security(("Token" = [])),
    responses((status = 200, body = ArticleBody<'static>), NotFound, CommonErrors))]
async fn create_article_favorite(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<Response, ApiError> {
    let article = state.app.favorite(&viewer, &slug).await?;
    Ok(article_response(StatusCode::OK, &article))
}

#[utoipa::path(delete, path = "/api/articles/{slug}/favorite", tag = "Favorites", operation_id = "DeleteArticleFavorite",
    params(("slug" = String, Path, description = "the article's slug")), security(("Token" = [])),
    responses((status = 200, body = ArticleBody<'static>), NotFound, CommonErrors))]
async fn delete_article_favorite(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<Response, ApiError> {
    let article = state.app.unfavorite(&viewer, &slug).await?;
    Ok(article_response(StatusCode::OK, &article))
}
