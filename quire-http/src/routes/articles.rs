//! Articles: `GET /articles/feed` (GetArticlesFeed), `GET /articles` (GetArticles), `POST
//! /articles` (CreateArticle), `GET`/`PUT`/`DELETE /articles/{slug}` (GetArticle,
//! UpdateArticle, DeleteArticle), `POST`/`DELETE /articles/{slug}/favorite`
//! (CreateArticleFavorite, DeleteArticleFavorite).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use quire_app::{ArticleQuery, ArticleRecord, NewArticleInput, UpdateArticleInput};
use serde::Deserialize;

use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, MaybeAuthUser};
use crate::views::{ArticleBody, ArticlesBody};
use crate::{ApiError, AppState};

/// The `{"article": {...}}` envelope of article requests.
#[derive(Deserialize)]
struct ArticleEnvelope<T> {
    article: T,
}

/// `limit` and `offset` of the feed, unparsed (the app parses them).
#[derive(Deserialize)]
struct PageQuery {
    limit: Option<String>,
    offset: Option<String>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/articles/feed", get(get_articles_feed))
        .route("/articles", get(get_articles).post(create_article))
        .route(
            "/articles/{slug}",
            get(get_article).put(update_article).delete(delete_article),
        )
        .route(
            "/articles/{slug}/favorite",
            post(create_article_favorite).delete(delete_article_favorite),
        )
}

fn article_response(status: StatusCode, article: &ArticleRecord) -> Response {
    (status, Json(ArticleBody::from(article))).into_response()
}

async fn get_articles_feed(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let list = state
        .app
        .feed(&viewer, page.limit.as_deref(), page.offset.as_deref())
        .await?;
    Ok(Json(ArticlesBody::from(&list)).into_response())
}

async fn get_articles(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    ApiQuery(query): ApiQuery<ArticleQuery>,
) -> Result<Response, ApiError> {
    let list = state.app.list_articles(query, viewer.as_ref()).await?;
    Ok(Json(ArticlesBody::from(&list)).into_response())
}

async fn create_article(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiJson(body): ApiJson<ArticleEnvelope<NewArticleInput>>,
) -> Result<Response, ApiError> {
    let article = state.app.create_article(&viewer, body.article).await?;
    Ok(article_response(StatusCode::CREATED, &article))
}

async fn get_article(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<Response, ApiError> {
    let article = state.app.article(&slug, viewer.as_ref()).await?;
    Ok(article_response(StatusCode::OK, &article))
}

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

async fn delete_article(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.app.delete_article(&viewer, &slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_article_favorite(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<Response, ApiError> {
    let article = state.app.favorite(&viewer, &slug).await?;
    Ok(article_response(StatusCode::OK, &article))
}

async fn delete_article_favorite(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<Response, ApiError> {
    let article = state.app.unfavorite(&viewer, &slug).await?;
    Ok(article_response(StatusCode::OK, &article))
}
