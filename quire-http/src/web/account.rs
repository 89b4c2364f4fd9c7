//! Sign up, sign in, sign out and settings, as plain forms. A refused form comes back with
//! what was typed (never the password) and each error next to its field.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use quire_app::{AppError, AuthFailure, LoginInput, NewUserInput, UpdateUserInput};
use serde::Deserialize;

use super::forms::{Field, FormPage};
use super::session::PostForm;
use super::{Layout, WebError, WebSession, local_path, page, see_other};
use crate::AppState;
use crate::client_ip::ClientIp;
use crate::sign_in_guard::SignInError;

#[derive(Deserialize, Default)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

fn login_form(
    state: &AppState,
    headers: &HeaderMap,
    session: &WebSession,
    email: &str,
    next: Option<&str>,
) -> FormPage {
    let action = match next {
        Some(next) => format!(
            "/login?next={}",
            form_urlencoded::byte_serialize(local_path(Some(next)).as_bytes()).collect::<String>()
        ),
        None => "/login".to_owned(),
    };
    FormPage {
        layout: Layout::new(state, headers, session, "Sign in", "/login"),
        heading: "Sign in".to_owned(),
        intro: Some("No account yet? <a href=\"/register\">Sign up</a>."),
        form_error: None,
        action,
        fields: vec![
            Field::input("email", "Email", "email")
                .value(email)
                .required()
                .autocomplete("email"),
            Field::input("password", "Password", "password")
                .required()
                .autocomplete("current-password"),
        ],
        submit: "Sign in",
        has_upload: false,
        danger: None,
    }
}

pub(crate) async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
    Query(query): Query<NextQuery>,
) -> Response {
    let form = login_form(&state, &headers, &session, "", query.next.as_deref());
    page(StatusCode::OK, &form, session)
}

pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut session: WebSession,
    client: Option<Extension<ClientIp>>,
    Query(query): Query<NextQuery>,
    PostForm(form): PostForm<LoginForm>,
) -> Result<Response, WebError> {
    let next = form.next.or(query.next);
    let ip = client.map(|Extension(ClientIp(ip))| ip);
    let refused = |session: &WebSession, message: String| {
        let mut form = login_form(&state, &headers, session, &form.email, next.as_deref());
        form.form_error = Some(message);
        form
    };
    let input = LoginInput {
        email: Some(form.email.clone()),
        password: Some(form.password.clone()),
    };
    match state
        .rate_limits
        .sign_in
        .sign_in(&state.app, ip, input)
        .await
    {
        Ok(user) => {
            session.sign_in(&user.token, state.app.tokens.ttl());
            Ok(see_other(&local_path(next.as_deref()), session))
        }
        Err(SignInError::TooMany(wait)) => {
            let message = format!(
                "Too many failed sign-ins; try again in {} seconds.",
                wait.as_secs().max(1)
            );
            let form = refused(&session, message);
            Ok(page(StatusCode::TOO_MANY_REQUESTS, &form, session))
        }
        Err(SignInError::App(AppError::Unauthorized(AuthFailure::BadCredentials))) => {
            let form = refused(&session, "That email and password do not match.".to_owned());
            Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &form, session))
        }
        Err(SignInError::App(AppError::Validation(errors))) => {
            let form = refused(&session, String::new());
            let mut form = form.with_errors(&errors);
            form.form_error = form.form_error.filter(|e| !e.is_empty());
            Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &form, session))
        }
        Err(SignInError::App(other)) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct RegisterForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

fn register_form(
    state: &AppState,
    headers: &HeaderMap,
    session: &WebSession,
    username: &str,
    email: &str,
) -> FormPage {
    FormPage {
        layout: Layout::new(state, headers, session, "Sign up", "/register"),
        heading: "Sign up".to_owned(),
        intro: Some("Have an account? <a href=\"/login\">Sign in</a>."),
        form_error: None,
        action: "/register".to_owned(),
        fields: vec![
            Field::input("username", "Username", "text")
                .value(username)
                .required()
                .autocomplete("username"),
            Field::input("email", "Email", "email")
                .value(email)
                .required()
                .autocomplete("email"),
            Field::input("password", "Password", "password")
                .required()
                .autocomplete("new-password")
                .hint("At least 8 characters."),
        ],
        submit: "Sign up",
        has_upload: false,
        danger: None,
    }
}

pub(crate) async fn register_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
) -> Response {
    let form = register_form(&state, &headers, &session, "", "");
    page(StatusCode::OK, &form, session)
}

pub(crate) async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut session: WebSession,
    PostForm(form): PostForm<RegisterForm>,
) -> Result<Response, WebError> {
    let input = NewUserInput {
        username: Some(form.username.clone()),
        email: Some(form.email.clone()),
        password: Some(form.password),
    };
    match state.app.register(input).await {
        Ok(user) => {
            session.sign_in(&user.token, state.app.tokens.ttl());
            Ok(see_other("/", session))
        }
        Err(AppError::Validation(errors)) => {
            let form = register_form(&state, &headers, &session, &form.username, &form.email)
                .with_errors(&errors);
            Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &form, session))
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct Empty {}

pub(crate) async fn logout(mut session: WebSession, PostForm(_): PostForm<Empty>) -> Response {
    session.sign_out();
    see_other("/", session)
}

#[derive(Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    image: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    bio: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

fn settings_form(
    state: &AppState,
    headers: &HeaderMap,
    session: &WebSession,
    values: &SettingsForm,
) -> FormPage {
    FormPage {
        layout: Layout::new(state, headers, session, "Settings", "/settings"),
        heading: "Your settings".to_owned(),
        intro: None,
        form_error: None,
        action: "/settings".to_owned(),
        fields: vec![
            Field::input("image", "Picture URL", "url")
                .value(&values.image)
                .hint("A link to an image, for example one uploaded in the editor."),
            Field::input("username", "Username", "text")
                .value(&values.username)
                .required()
                .autocomplete("username"),
            Field::text_area("bio", "Short bio", 4).value(&values.bio),
            Field::input("email", "Email", "email")
                .value(&values.email)
                .required()
                .autocomplete("email"),
            Field::input("password", "New password", "password")
                .autocomplete("new-password")
                .hint("Leave empty to keep your password."),
        ],
        submit: "Save settings",
        has_upload: false,
        danger: None,
    }
}

pub(crate) async fn settings_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
) -> Result<Response, WebError> {
    let user = &session.require("/settings")?.user;
    let values = SettingsForm {
        image: user.image.clone().unwrap_or_default(),
        username: user.username.clone(),
        bio: user.bio.clone().unwrap_or_default(),
        email: user.email.clone(),
        password: String::new(),
    };
    let form = settings_form(&state, &headers, &session, &values);
    Ok(page(StatusCode::OK, &form, session))
}

pub(crate) async fn settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut session: WebSession,
    PostForm(form): PostForm<SettingsForm>,
) -> Result<Response, WebError> {
    let viewer = session.require("/settings")?.clone();
    let optional = |value: &str| Some(Some(value.trim().to_owned()).filter(|v| !v.is_empty()));
    let input = UpdateUserInput {
        username: Some(form.username.clone()),
        email: Some(form.email.clone()),
        password: Some(form.password.clone()).filter(|p| !p.is_empty()),
        bio: optional(&form.bio),
        image: optional(&form.image),
    };
    match state.app.update_user(viewer, input).await {
        Ok(user) => {
            session.sign_in(&user.token, state.app.tokens.ttl());
            Ok(see_other(
                &format!("/profile/{}", super::views::segment(&user.user.username)),
                session,
            ))
        }
        Err(AppError::Validation(errors)) => {
            let form = settings_form(
                &state,
                &headers,
                &session,
                &SettingsForm {
                    password: String::new(),
                    ..form
                },
            )
            .with_errors(&errors);
            Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &form, session))
        }
        Err(other) => Err(other.into()),
    }
}
