//! `GET`/`POST /articles/{slug}/comments` (GetArticleComments, CreateArticleComment) and
//! `DELETE /articles/{slug}/comments/{id}` (DeleteArticleComment). Creating a comment
//! answers 200, as the spec says.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use quire_app::NewCommentInput;
use serde::Deserialize;

use crate::extract::{ApiJson, ApiPath, AuthUser, MaybeAuthUser};
use crate::openapi::{CommonErrors, Forbidden, NotFound};
use crate::views::{CommentBody, CommentView, CommentsBody};
use crate::{ApiError, AppState};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The `{"comment": {...}}` envelope.
#[derive(Deserialize, ToSchema)]
struct CommentEnvelope<T> {
    comment: T,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_article_comments, create_article_comment))
        .routes(routes!(delete_article_comment))
}

#[utoipa::path(get, path = "/api/articles/{slug}/comments", tag = "Comments", operation_id = "GetArticleComments",
    params(("slug" = String, Path, description = "the article's slug")), security((), ("Token" = [])),
    responses((status = 200, body = CommentsBody<'static>), NotFound, CommonErrors))]
async fn get_article_comments(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    ApiPath(slug): ApiPath<String>,
) -> Result<Response, ApiError> {
    let comments = state.app.comments(&slug, viewer.as_ref()).await?;
    let body = CommentsBody {
        comments: comments.iter().map(CommentView::from).collect(),
    };
    Ok(Json(body).into_response())
}

#[utoipa::path(post, path = "/api/articles/{slug}/comments", tag = "Comments", operation_id = "CreateArticleComment",
    params(("slug" = String, Path, description = "the article's slug")), request_body = CommentEnvelope<NewCommentInput>, security(("Token" = [])),
    responses((status = 200, body = CommentBody<'static>), NotFound, CommonErrors))]
async fn create_article_comment(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<CommentEnvelope<NewCommentInput>>,
) -> Result<Response, ApiError> {
    let comment = state.app.add_comment(&viewer, &slug, body.comment).await?;
    let body = CommentBody {
        comment: (&comment).into(),
    };
    Ok(Json(body).into_response())
}

#[utoipa::path(delete, path = "/api/articles/{slug}/comments/{id}", tag = "Comments", operation_id = "DeleteArticleComment",
    params(("slug" = String, Path, description = "the article's slug"), ("id" = i64, Path, description = "the comment's id")),
    security(("Token" = [])),
    responses((status = 204, description = "deleted"), Forbidden, NotFound, CommonErrors))]
async fn delete_article_comment(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath((slug, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.app.delete_comment(&viewer, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
