//! `GET /tags` (GetTags): every tag in use, sorted.

use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::CommonErrors;
use crate::views::TagsBody;
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_tags))
}

#[utoipa::path(get, path = "/api/tags", tag = "Tags", operation_id = "GetTags",
    responses((status = 200, body = TagsBody<'static>), CommonErrors))]
async fn get_tags(State(state): State<AppState>) -> Result<Response, ApiError> {
    let tags = state.app.tags().await?;
    Ok(state.tags_json.response(tags))
}
