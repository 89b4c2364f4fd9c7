//! `GET /profiles/{username}` (GetProfileByUsername), `POST` and `DELETE
//! /profiles/{username}/follow` (FollowUserByUsername, UnfollowUserByUsername). A request
//! body on follow/unfollow is ignored.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use quire_app::Profile;

use crate::extract::{ApiPath, AuthUser, MaybeAuthUser};
use crate::views::{ArticleView, ProfileBody, ProfileView};
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/profiles/{username}", get(get_profile_by_username))
        .route("/profiles/{username}/dashboard", get(get_profile_dashboard))
        .route(
            "/profiles/{username}/follow",
            post(follow_user_by_username).delete(unfollow_user_by_username),
        )
}

type ProfileResult = Result<Response, ApiError>;

fn respond(profile: Profile) -> ProfileResult {
    Ok(Json(ProfileBody::from(&profile)).into_response())
}

async fn get_profile_by_username(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    ApiPath(username): ApiPath<String>,
) -> ProfileResult {
    respond(state.app.profile(&username, viewer.as_ref()).await?)
}

async fn follow_user_by_username(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(username): ApiPath<String>,
) -> ProfileResult {
    respond(state.app.follow(&viewer, &username).await?)
}

async fn unfollow_user_by_username(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(username): ApiPath<String>,
) -> ProfileResult {
    respond(state.app.unfollow(&viewer, &username).await?)
}

/// `GET /profiles/{username}/dashboard` (an extension of the spec): the profile, its numbers
/// and its five latest articles.
async fn get_profile_dashboard(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    ApiPath(username): ApiPath<String>,
) -> ProfileResult {
    let dashboard = state.app.dashboard(&username, viewer.as_ref()).await?;
    let body = serde_json::json!({"dashboard": {
        "profile": ProfileView::from(&dashboard.profile),
        "stats": {
            "articles": dashboard.articles,
            "favoritesReceived": dashboard.favorites_received,
            "followers": dashboard.followers,
            "following": dashboard.following,
        },
        "latestArticles": dashboard.latest.iter().map(ArticleView::from).collect::<Vec<_>>(),
    }});
    Ok(Json(body).into_response())
}
