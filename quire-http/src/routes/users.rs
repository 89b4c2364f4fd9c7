//! `POST /users/login` (Login), `POST /users` (CreateUser), `GET /user` (GetCurrentUser),
//! `PUT /user` (UpdateCurrentUser).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use quire_app::{LoginInput, NewUserInput, SignedInUser, UpdateUserInput};
use serde::Deserialize;

use crate::extract::{ApiJson, AuthUser};
use crate::views::UserBody;
use crate::{ApiError, AppState};

/// The `{"user": {...}}` envelope of every users request.
#[derive(Deserialize)]
struct UserEnvelope<T> {
    user: T,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/login", post(login))
        .route("/users", post(create_user))
        .route("/user", get(get_current_user).put(update_current_user))
}

fn user_response(status: StatusCode, user: &SignedInUser) -> Response {
    (status, Json(UserBody::from(user))).into_response()
}

async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<UserEnvelope<LoginInput>>,
) -> Result<Response, ApiError> {
    let user = state.app.login(body.user).await?;
    Ok(user_response(StatusCode::OK, &user))
}

async fn create_user(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<UserEnvelope<NewUserInput>>,
) -> Result<Response, ApiError> {
    let user = state.app.register(body.user).await?;
    Ok(user_response(StatusCode::CREATED, &user))
}

async fn get_current_user(AuthUser(viewer): AuthUser) -> Response {
    let user = SignedInUser {
        user: viewer.user,
        token: viewer.token,
    };
    user_response(StatusCode::OK, &user)
}

async fn update_current_user(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiJson(body): ApiJson<UserEnvelope<UpdateUserInput>>,
) -> Result<Response, ApiError> {
    let user = state.app.update_user(viewer, body.user).await?;
    Ok(user_response(StatusCode::OK, &user))
}
