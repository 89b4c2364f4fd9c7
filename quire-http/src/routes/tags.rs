//! `GET /tags` (GetTags): every tag in use, sorted.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/tags", get(get_tags))
}

async fn get_tags(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let tags = state.app.tags().await?;
    let names: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
    Ok(Json(json!({ "tags": names })))
}
