//! Conditional GETs: whether a client's `If-None-Match` names the version it would get (media
//! downloads, Atom feeds), compared weakly as RFC 9110 asks for GET.

use axum::http::{HeaderMap, header};

/// Whether an `If-None-Match` header matches `etag` (a quoted entity tag, without `W/`).
pub(crate) fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}
