//! Media (an extension of the spec): `POST /api/media` (raw body or `multipart/form-data` with
//! one file part) streams an upload to the blob store; `GET`/`HEAD /media/{id}` streams it
//! back with `ETag`, `If-None-Match` (304), single `Range` (206/416) and long-lived caching;
//! `DELETE /api/media/{id}` removes it (its uploader only).

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use quire_app::MediaUpload;

use crate::conditional::none_match;
use crate::extract::{ApiPath, AuthUser};
use crate::openapi::{CommonErrors, ErrorBody, Forbidden, NotFound, UnsupportedMediaType};
use crate::range::RangeRequest;
use crate::views::MediaBody;
use crate::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes under `/api` (upload, delete).
pub fn api_router() -> OpenApiRouter<AppState> {
    // The media size limit is enforced while streaming, not by the JSON body limit.
    let upload = OpenApiRouter::new()
        .routes(routes!(upload_media))
        .layer(DefaultBodyLimit::disable());
    OpenApiRouter::new()
        .merge(upload)
        .routes(routes!(delete_media))
}

/// Public routes (download; `HEAD` is answered by the same handler).
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_media))
}

fn to_io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

#[utoipa::path(post, path = "/api/media", tag = "Media", operation_id = "UploadMedia",
    description = "Streams the body (or the one file part of a `multipart/form-data` body) into content-addressed storage. Allowed types: images, PDF, plain text, octet-stream.",
    request_body(content(
        (Vec<u8> = "application/octet-stream"), (Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"),
        (Vec<u8> = "image/gif"), (Vec<u8> = "image/webp"), (Vec<u8> = "application/pdf"),
        (Vec<u8> = "text/plain"), (Vec<u8> = "multipart/form-data"),
    )),
    security(("Token" = [])),
    responses((status = 201, body = MediaBody<'static>), UnsupportedMediaType, CommonErrors))]
async fn upload_media(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());

    let upload = if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        let bad = |e: multer::Error| ApiError::new(StatusCode::BAD_REQUEST, "body", e.to_string());
        let boundary = multer::parse_boundary(&content_type).map_err(bad)?;
        let mut multipart =
            multer::Multipart::new(request.into_body().into_data_stream(), boundary);
        // The first part is the file; multer's parts own their stream, so it can outlive us.
        let field =
            multipart.next_field().await.map_err(bad)?.ok_or_else(|| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "file", "is missing")
            })?;
        MediaUpload {
            content_type: field
                .content_type()
                .map_or_else(|| "application/octet-stream".to_owned(), |m| m.to_string()),
            declared_length,
            body: Box::pin(field.map_err(to_io)),
        }
    } else {
        MediaUpload {
            content_type,
            declared_length,
            body: Box::pin(request.into_body().into_data_stream().map_err(to_io)),
        }
    };
    let media = state.app.upload_media(&viewer, upload).await?;
    Ok((StatusCode::CREATED, Json(MediaBody::from(&media))).into_response())
}

#[utoipa::path(delete, path = "/api/media/{id}", tag = "Media", operation_id = "DeleteMedia",
    params(("id" = String, Path, description = "the media id (32 lowercase hex characters)")), security(("Token" = [])),
    responses((status = 204, description = "deleted"), Forbidden, NotFound, CommonErrors))]
async fn delete_media(
    State(state): State<AppState>,
    AuthUser(viewer): AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.app.delete_media(&viewer, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/media/{id}", tag = "Media", operation_id = "GetMedia",
    description = "The stored bytes with their content type; `ETag` is the SHA-256; single `Range` requests; `HEAD` too.",
    params(("id" = String, Path, description = "the media id (32 lowercase hex characters)")),
    responses(
        (status = 200, description = "the whole media, with the content type it was uploaded with", content_type = "*/*", body = Vec<u8>),
        (status = 206, description = "the requested range", content_type = "*/*", body = Vec<u8>),
        (status = 304, description = "`If-None-Match` matched"),
        (status = 416, description = "the range lies outside the media", body = ErrorBody),
        NotFound, CommonErrors))]
async fn get_media(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let download = state.app.media(&id).await?;
    let media = &download.media;
    let size = download.blob.size();
    let etag = format!("\"{}\"", media.sha256);

    let mut response = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::ACCEPT_RANGES, "bytes");
    if none_match(&headers, &etag) {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(|e| ApiError::internal(&e.to_string()));
    }
    // If-Range with another validator means "the whole thing": our content never changes,
    // so anything but our ETag is stale.
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == etag));
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = if if_range_ok {
        RangeRequest::parse(range_header, size)
    } else {
        RangeRequest::Full
    };
    let bytes = match range {
        RangeRequest::Unsatisfiable => {
            let mut error = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range",
                format!("is outside the {size} bytes of this media"),
            )
            .into_response();
            let value = HeaderValue::from_str(&format!("bytes */{size}"))
                .map_err(|e| ApiError::internal(&e.to_string()))?;
            error.headers_mut().insert(header::CONTENT_RANGE, value);
            return Ok(error);
        }
        RangeRequest::Full => {
            response = response.status(StatusCode::OK);
            0..size
        }
        RangeRequest::Partial(range) => {
            response = response.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", range.start, range.end - 1, size),
            );
            range
        }
    };
    response = response
        .header(header::CONTENT_TYPE, &media.content_type)
        .header(header::CONTENT_LENGTH, bytes.end - bytes.start);
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(download.blob.stream(bytes))
    };
    response
        .body(body)
        .map_err(|e| ApiError::internal(&e.to_string()))
}
