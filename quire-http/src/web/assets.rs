//! The web pages' stylesheet, script and icon, compiled into the binary and served from quire's
//! own origin (no CDN, no third-party asset), cached for a year under a versioned URL.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const STYLESHEET: &str = include_str!("../../assets/quire.css");
const SCRIPT: &str = include_str!("../../assets/quire.js");
const ICON: &str = include_str!("../../assets/favicon.svg");

/// A digest of both assets, in their URLs (`?v=`): browsers fetch them again exactly when
/// they change.
pub(crate) fn version() -> &'static str {
    static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use sha2::Digest as _;
        let digest = sha2::Sha256::new()
            .chain_update(STYLESHEET)
            .chain_update(SCRIPT)
            .chain_update(ICON)
            .finalize();
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    });
    &VERSION
}

pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let (content_type, body) = match name.as_str() {
        "quire.css" => ("text/css; charset=utf-8", STYLESHEET),
        "quire.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "favicon.svg" => ("image/svg+xml", ICON),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
