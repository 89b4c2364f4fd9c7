//! The blog people read and write: server-rendered HTML pages over the same `App` use cases as
//! the API (no second path to the store). Templates are askama's, compiled in, every value
//! HTML-escaped; article bodies and comments are Markdown rendered and sanitized once per
//! version (`markdown.rs`). Every action is a plain HTML form (POST, then a redirect), so the
//! pages work without scripts; one small same-origin script (`assets.rs`) adds live comments
//! and a new-articles notice. Strict security headers on every page
//! (`Content-Security-Policy` with `script-src 'self'`).
//!
//! - `session.rs`: the session cookie and CSRF protection of forms;
//! - `reading.rs`: home (global feed, your feed, tags), tag, profile and article pages;
//! - `account.rs`: sign up, sign in, sign out, settings;
//! - `writing.rs`: editor (new, edit, delete, image upload), comments, favorites, follows;
//! - `feeds.rs`: Atom feeds, `sitemap.xml`, `robots.txt`;
//! - `search.rs`: the search page;
//! - `views.rs`: what templates show, made from records.

mod account;
mod assets;
mod feeds;
mod forms;
mod markdown;
mod reading;
mod search;
mod session;
mod views;
mod writing;

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use quire_app::AppError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{ApiError, AppState};

pub use session::WebSession;

/// Settings of the web pages.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Mark cookies `Secure` (quire serves TLS itself, or sits behind a TLS proxy).
    pub secure_cookies: bool,
    /// The site's public origin (`https://blog.example.com`) for canonical links, feeds and
    /// the sitemap; `None`: taken from each request's `Host` (and TLS).
    pub public_url: Option<String>,
}

/// Articles per page.
pub(crate) const PAGE_SIZE: u64 = 20;

/// Every page and form of the web UI. The two entry pages (home, article) are described in
/// the OpenAPI document, as they were before the UI grew; the rest are for browsers only.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(reading::home))
        .routes(routes!(reading::article))
        .route("/search", get(search::search))
        .route("/tag/{tag}", get(reading::tag))
        .route("/profile/{username}", get(reading::profile))
        .route("/login", get(account::login_page).post(account::login))
        .route(
            "/register",
            get(account::register_page).post(account::register),
        )
        .route("/logout", post(account::logout))
        .route(
            "/settings",
            get(account::settings_page).post(account::settings),
        )
        .route("/editor", get(writing::new_page).post(writing::create))
        .route("/editor/upload", post(writing::upload))
        .route(
            "/editor/{slug}",
            get(writing::edit_page).post(writing::update),
        )
        .route("/articles/{slug}/delete", post(writing::delete))
        .route("/articles/{slug}/favorite", post(writing::favorite))
        .route("/articles/{slug}/comments", post(writing::comment))
        .route(
            "/articles/{slug}/comments/{id}/delete",
            post(writing::delete_comment),
        )
        .route("/profile/{username}/follow", post(writing::follow))
        .route("/feed.atom", get(feeds::site))
        .route("/tag/{tag}/feed.atom", get(feeds::tag))
        .route("/profile/{username}/feed.atom", get(feeds::author))
        .route("/sitemap.xml", get(feeds::sitemap))
        .route("/robots.txt", get(feeds::robots))
        .route("/assets/{name}", get(assets::serve))
}

/// A link to an Atom feed, for the page's head.
pub(crate) struct FeedLink {
    pub title: String,
    pub href: String,
}

/// Open Graph and Twitter card fields of an article page.
pub(crate) struct OpenGraph {
    pub title: String,
    pub description: String,
    pub published: String,
    pub author: String,
    pub image: Option<String>,
}

/// The signed-in user, as the header shows them.
pub(crate) struct Me {
    pub username: String,
}

/// What every page's frame (`base.html`) shows.
pub(crate) struct Layout {
    pub title: String,
    pub description: String,
    /// The site's origin, for absolute links (canonical, Open Graph).
    pub base: String,
    /// This page's path and query, as the canonical link names it.
    pub path: String,
    pub asset_version: &'static str,
    pub viewer: Option<Me>,
    pub csrf: String,
    pub feeds: Vec<FeedLink>,
    pub open_graph: Option<OpenGraph>,
    /// Whether the page loads the live-updates script.
    pub live: bool,
}

impl Layout {
    pub(crate) fn new(
        state: &AppState,
        headers: &HeaderMap,
        session: &WebSession,
        title: impl Into<String>,
        path: impl Into<String>,
    ) -> Self {
        Self {
            base: site_origin(state, headers),
            path: path.into(),
            viewer: session.viewer.as_ref().map(|viewer| Me {
                username: viewer.user.username.clone(),
            }),
            csrf: session.csrf.clone(),
            feeds: vec![FeedLink {
                title: "quire: all articles".to_owned(),
                href: "/feed.atom".to_owned(),
            }],
            ..Self::bare(
                title,
                "quire: articles, comments and the people who write them",
            )
        }
    }

    /// A frame that knows nothing of the request (error pages): no reader, no forms, no feeds.
    fn bare(title: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            description: description.into(),
            base: String::new(),
            path: "/".to_owned(),
            asset_version: assets::version(),
            viewer: None,
            csrf: String::new(),
            feeds: Vec::new(),
            open_graph: None,
            live: false,
        }
    }
}

/// The site's origin: `--public-url`, else the request's `Host` with the scheme quire serves.
pub(crate) fn site_origin(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.web.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|host| {
            host.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = if state.web.secure_cookies {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

/// The security headers of every HTML page.
fn secure_headers(headers: &mut HeaderMap) {
    let set = |v: &'static str| HeaderValue::from_static(v);
    headers.insert(header::CONTENT_TYPE, set("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        set("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, set("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, set("DENY"));
    headers.insert(header::REFERRER_POLICY, set("same-origin"));
    // Pages differ by viewer: never cached by shared caches.
    headers.insert(header::CACHE_CONTROL, set("private, no-cache"));
}

/// A rendered template as a page with `status`, the session's cookies set.
pub(crate) fn page(status: StatusCode, template: &impl Template, session: WebSession) -> Response {
    let mut response = match template.render() {
        Ok(html) => (status, html).into_response(),
        Err(error) => {
            tracing::error!(error = %error, "page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page failed").into_response()
        }
    };
    secure_headers(response.headers_mut());
    session.finish(response)
}

/// A redirect after a form (303: the browser follows with a GET), cookies set.
pub(crate) fn see_other(to: &str, session: WebSession) -> Response {
    session.finish(Redirect::to(to).into_response())
}

/// Where a `next`/`back` value may send the browser: a path on this site, else `/`.
pub(crate) fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// A page that only says something (errors, not found).
#[derive(Template)]
#[template(path = "web/message.html")]
struct MessagePage {
    layout: Layout,
    heading: String,
    text: String,
}

/// Why a page could not be shown; rendered as an HTML page (statuses come from `ApiError`,
/// the one place errors become statuses).
#[derive(Debug)]
pub enum WebError {
    /// The page needs a signed-in user: off to the sign-in page, and back to `next` after.
    SignIn {
        next: String,
    },
    /// A form without a matching CSRF token (or posted from another site).
    Csrf,
    /// A form body that does not parse.
    BadForm(String),
    App(AppError),
}

impl From<AppError> for WebError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Unauthorized(_) => Self::SignIn {
                next: "/".to_owned(),
            },
            other => Self::App(other),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, heading, text) = match self {
            Self::SignIn { next } => {
                let to = format!(
                    "/login?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                return Redirect::to(&to).into_response();
            }
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "Go back, reload the page and send it again.".to_owned(),
            ),
            Self::BadForm(why) => (StatusCode::BAD_REQUEST, "That form could not be read", why),
            Self::App(error) => {
                let api = ApiError::from(error);
                let status = api.status();
                let (heading, text) = match status {
                    StatusCode::NOT_FOUND => ("Not found", "There is nothing here.".to_owned()),
                    StatusCode::FORBIDDEN => {
                        ("Not yours", "Only its author may change this.".to_owned())
                    }
                    StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => (
                        "Busy",
                        "quire is busy right now; try again in a moment.".to_owned(),
                    ),
                    _ if status.is_client_error() => ("That did not work", api.summary()),
                    _ => (
                        "Something went wrong",
                        "The error was logged; try again later.".to_owned(),
                    ),
                };
                (status, heading, text)
            }
        };
        let page = MessagePage {
            layout: Layout::bare(heading, text.clone()),
            heading: heading.to_owned(),
            text,
        };
        let mut response = match page.render() {
            Ok(html) => (status, html).into_response(),
            Err(_) => status.into_response(),
        };
        secure_headers(response.headers_mut());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
