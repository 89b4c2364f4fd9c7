//! `GET /profiles/{username}` (GetProfileByUsername), `POST` and `DELETE
//! /profiles/{username}/follow` (FollowUserByUsername, UnfollowUserByUsername). A request
//! body on follow/unfollow is ignored.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use quire_app::Profile;

use crate::extract::{ApiPath, AuthUser, MaybeAuthUser};
use crate::openapi::{CommonErrors, NotFound};
use crate::views::{DashboardBody, ProfileBody};
use crate::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_profile_by_username))
        .routes(routes!(get_profile_dashboard))
        .routes(routes!(follow_user_by_username, unfollow_user_by_username))
}

type ProfileResult = Result<Response, ApiError>;

fn respond(profile: Profile) -> ProfileResult {
    Ok(Json(ProfileBody::from(&profile)).into_response())
}

#[utoipa::path(get, path = "/api/profiles/{username}", tag = "Profile", operation_id = "GetProfileByUsername",
    params(("username" = String, Path, description = "the profile's username")), security((), ("Token" = [])),
    responses((status = 200, body = ProfileBody<'static>), NotFound, CommonErrors))]
async fn get_profile_by_username(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    ApiPath(username): ApiPath<String>,
) -> ProfileResult {
    respond(state.app.profile(&username, viewer.as_ref()).await?)
}

#[utoipa::path(post, path = "/api/profiles/{username}/follow", tag = "Profile", operation_id = "FollowUserByUsername",
    params(("username" = String, Path, description = "the profile's username")), security(("Token" = [])),
    responses((status = 200, body = ProfileBody<'static>), NotFound, CommonErrors))]
async fn follow_user_by_username(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(username): ApiPath<String>,
) -> ProfileResult {
    respond(state.app.follow(&viewer, &username).await?)
}

#[utoipa::path(delete, path = "/api/profiles/{username}/follow", tag = "Profile", operation_id = "UnfollowUserByUsername",
    params(("username" = String, Path, description = "the profile's username")), security(("Token" = [])),
    responses((status = 200, body = ProfileBody<'static>), NotFound, CommonErrors))]
async fn unfollow_user_by_username(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(username): ApiPath<String>,
) -> ProfileResult {
    respond(state.app.unfollow(&viewer, &username).await?)
}

/// `GET /profiles/{username}/dashboard` (an extension of the spec): the profile, its numbers
/// and its five latest articles.
#[utoipa::path(get, path = "/api/profiles/{username}/dashboard", tag = "Profile", operation_id = "GetProfileDashboard",
    params(("username" = String, Path, description = "the profile's username")), security((), ("Token" = [])),
    responses((status = 200, body = DashboardBody<'static>), NotFound, CommonErrors))]
async fn get_profile_dashboard(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    ApiPath(username): ApiPath<String>,
) -> ProfileResult {
    let dashboard = state.app.dashboard(&username, viewer.as_ref()).await?;
    Ok(crate::render::dashboard(&dashboard))
}
