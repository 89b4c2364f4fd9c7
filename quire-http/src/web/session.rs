//! Browser sessions of the web pages. The signed-in user's token (the API's own JWT) lives
//! in an `HttpOnly`, `SameSite=Lax` cookie, `Secure` when quire serves TLS. Forms are
//! protected from cross-site requests twice: the session cookie is `SameSite=Lax` (a
//! cross-site POST does not carry it), and every form repeats a random token from a cookie of
//! its own in a hidden field (double submit): a POST whose field does not match is refused
//! before anything runs, and so is one whose `Origin` names another site.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use quire_app::{AppError, Viewer};
use serde::de::DeserializeOwned;

use super::WebError;
use crate::AppState;

const SESSION_COOKIE: &str = "quire_session";
const CSRF_COOKIE: &str = "quire_csrf";

/// The value of cookie `name` in a request, if sent.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether `token` looks like one of our CSRF tokens (32 lowercase hex digits).
fn is_csrf_token(token: &str) -> bool {
    token.len() == 32
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn new_csrf_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A `Set-Cookie` value: host-only, whole site, `HttpOnly`, `SameSite=Lax`.
fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// Who is reading a page (the signed-in user, if the session cookie holds a valid token) and
/// the CSRF token its forms carry.
pub struct WebSession {
    pub viewer: Option<Viewer>,
    pub csrf: String,
    /// Cookies the response must set: a new CSRF token, a stale session cleared.
    set_cookies: Vec<String>,
    secure: bool,
}

impl FromRequestParts<AppState> for WebSession {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let secure = state.web.secure_cookies;
        let mut set_cookies = Vec::new();
        let csrf = match cookie(&parts.headers, CSRF_COOKIE).filter(|t| is_csrf_token(t)) {
            Some(token) => token.to_owned(),
            None => {
                let token = new_csrf_token();
                set_cookies.push(set_cookie(CSRF_COOKIE, &token, None, secure));
                token
            }
        };
        let viewer = match cookie(&parts.headers, SESSION_COOKIE).filter(|t| !t.is_empty()) {
            None => None,
            Some(token) => match state.app.authenticate(token).await {
                Ok(viewer) => Some(viewer),
                // Expired or no longer valid: signed out, and the cookie goes.
                Err(AppError::Unauthorized(_)) => {
                    set_cookies.push(set_cookie(SESSION_COOKIE, "", Some(0), secure));
                    None
                }
                Err(other) => return Err(other.into()),
            },
        };
        Ok(Self {
            viewer,
            csrf,
            set_cookies,
            secure,
        })
    }
}

impl WebSession {
    /// The signed-in user, or a redirect to the sign-in page that comes back to `path`.
    pub fn require(&self, path: &str) -> Result<&Viewer, WebError> {
        self.viewer.as_ref().ok_or_else(|| WebError::SignIn {
            next: path.to_owned(),
        })
    }

    /// Signs `token` in: the response sets the session cookie (for the token's lifetime).
    pub fn sign_in(&mut self, token: &str, lifetime: std::time::Duration) {
        self.set_cookies.push(set_cookie(
            SESSION_COOKIE,
            token,
            Some(lifetime.as_secs()),
            self.secure,
        ));
    }

    /// Signs out: the response clears the session cookie.
    pub fn sign_out(&mut self) {
        self.set_cookies
            .push(set_cookie(SESSION_COOKIE, "", Some(0), self.secure));
        self.viewer = None;
    }

    /// `response` with this session's cookies set.
    pub fn finish(self, mut response: Response) -> Response {
        for cookie in self.set_cookies {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        response
    }
}

/// A posted form (`application/x-www-form-urlencoded`) whose CSRF field matched the CSRF
/// cookie and whose `Origin`, if sent, is this site. `T` holds the other fields.
pub struct PostForm<T>(pub T);

#[derive(serde::Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for PostForm<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WebError> {
        let headers = request.headers();
        if let (Some(origin), Some(host)) = (
            headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
            headers.get(header::HOST).and_then(|v| v.to_str().ok()),
        ) {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            if origin_host != host {
                return Err(WebError::Csrf);
            }
        }
        // The cookie's token, kept before the body consumes the request.
        let expected = cookie(headers, CSRF_COOKIE).map(str::to_owned);
        let axum::Form(form) = axum::Form::<WithCsrf<T>>::from_request(request, state)
            .await
            .map_err(|rejection| WebError::BadForm(rejection.body_text()))?;
        if !tokens_match(expected.as_deref(), &form.csrf) {
            return Err(WebError::Csrf);
        }
        Ok(Self(form.fields))
    }
}

/// Whether `given` (a form's CSRF field) matches the request's CSRF cookie.
pub(crate) fn csrf_matches(headers: &HeaderMap, given: &str) -> bool {
    tokens_match(cookie(headers, CSRF_COOKIE), given)
}

/// Whether `given` equals the CSRF cookie's token `expected` (compared in constant time).
fn tokens_match(expected: Option<&str>, given: &str) -> bool {
    expected.is_some_and(|expected| {
        is_csrf_token(expected) && constant_time_eq(expected.as_bytes(), given.as_bytes())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; quire_csrf=abc; quire_session=tok.en"),
        );
        assert_eq!(cookie(&headers, "quire_csrf"), Some("abc"));
        assert_eq!(cookie(&headers, "quire_session"), Some("tok.en"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn cookies_are_http_only_and_lax() {
        let cookie = set_cookie("quire_session", "t", Some(60), true);
        assert_eq!(
            cookie,
            "quire_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert!(is_csrf_token(&new_csrf_token()));
        assert!(!is_csrf_token("0123"));
    }
}
