//! `POST /users/login` (Login), `POST /users` (CreateUser), `GET /user` (GetCurrentUser),
//! `PUT /user` (UpdateCurrentUser).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use quire_app::{LoginInput, NewUserInput, SignedInUser, UpdateUserInput};
use serde::Deserialize;

use crate::client_ip::ClientIp;
use crate::extract::{ApiJson, AuthUser};
use crate::openapi::CommonErrors;
use crate::sign_in_guard::SignInError;
use crate::views::UserBody;
use crate::{ApiError, AppState};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The `{"user": {...}}` envelope of every users request.
#[derive(Deserialize, ToSchema)]
struct UserEnvelope<T> {
    user: T,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(create_user))
        .routes(routes!(get_current_user, update_current_user))
}

fn user_response(status: StatusCode, user: &SignedInUser) -> Response {
    (status, Json(UserBody::from(user))).into_response()
}

#[utoipa::path(post, path = "/api/users/login", tag = "User and Authentication", operation_id = "Login",
    request_body = UserEnvelope<LoginInput>,
    responses((status = 200, body = UserBody<'static>), CommonErrors))]
async fn login(
    State(state): State<AppState>,
    client: Option<Extension<ClientIp>>,
    ApiJson(body): ApiJson<UserEnvelope<LoginInput>>,
) -> Result<Response, ApiError> {
    let ip = client.map(|Extension(ClientIp(ip))| ip);
    match state
        .rate_limits
        .sign_in
        .sign_in(&state.app, ip, body.user)
        .await
    {
        Ok(user) => Ok(user_response(StatusCode::OK, &user)),
        Err(SignInError::TooMany(wait)) => Err(ApiError::too_many_requests(wait.as_secs().max(1))),
        Err(SignInError::App(error)) => Err(error.into()),
    }
}

#[utoipa::path(post, path = "/api/users", tag = "User and Authentication", operation_id = "CreateUser",
    request_body = UserEnvelope<NewUserInput>,
    responses((status = 201, body = UserBody<'static>), CommonErrors))]
async fn create_user(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<UserEnvelope<NewUserInput>>,
) -> Result<Response, ApiError> {
    let user = state.app.register(body.user).await?;
    Ok(user_response(StatusCode::CREATED, &user))
}

#[utoipa::path(get, path = "/api/user", tag = "User and Authentication", operation_id = "GetCurrentUser",
    security(("Token" = [])),
    responses((status = 200, body = UserBody<'static>), CommonErrors))]
async fn get_current_user(AuthUser(viewer): AuthUser) -> Response {
    let user = SignedInUser {
        user: viewer.user,
        token: viewer.token,
    };
    user_response(StatusCode::OK, &user)
}

#[utoipa::path(put, path = "/api/user", tag = "User and Authentication", operation_id = "UpdateCurrentUser",
    security(("Token" = [])), request_body = UserEnvelope<UpdateUserInput>,
    responses((status = 200, body = UserBody<'static>), CommonErrors))]
async fn update_current_user(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiJson(body): ApiJson<UserEnvelope<UpdateUserInput>>,
) -> Result<Response, ApiError> {
    let user = state.app.update_user(viewer, body.user).await?;
    Ok(user_response(StatusCode::OK, &user))
}
