//! `GET`/`POST /articles/{slug}/comments` (GetArticleComments, CreateArticleComment) and
//! `DELETE /articles/{slug}/comments/{id}` (DeleteArticleComment). Creating a comment
//! answers 200, as the spec says.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use quire_app::NewCommentInput;
use serde::Deserialize;

use crate::extract::{ApiJson, ApiPath, AuthUser, MaybeAuthUser};
use crate::views::{CommentBody, CommentView, CommentsBody};
use crate::{ApiError, AppState};

/// The `{"comment": {...}}` envelope.
#[derive(Deserialize)]
struct CommentEnvelope<T> {
    comment: T,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/articles/{slug}/comments",
            get(get_article_comments).post(create_article_comment),
        )
        .route(
            "/articles/{slug}/comments/{id}",
            delete(delete_article_comment),
        )
}

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

async fn delete_article_comment(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath((slug, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.app.delete_comment(&viewer, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
