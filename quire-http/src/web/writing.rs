//! Writing: the editor (new, edit, delete; an image upload whose Markdown goes into the body),
//! comments (add, delete), favorites and follows. Every action is a form POST answered with a
//! redirect (303); a refused one shows its page again with what was typed and the errors.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt as _;
use quire_app::{AppError, MediaUpload, NewArticleInput, NewCommentInput, UpdateArticleInput};
use serde::Deserialize;

use super::forms::{Field, FormPage};
use super::reading::article_page;
use super::session::{PostForm, csrf_matches};
use super::views::segment;
use super::{Layout, WebError, WebSession, local_path, page, see_other};
use crate::AppState;

#[derive(Deserialize, Default)]
pub(crate) struct ArticleForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    tags: String,
}

/// `rust, web  async` → `["rust", "web", "async"]`.
fn tag_list(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn editor_form(
    state: &AppState,
    headers: &HeaderMap,
    session: &WebSession,
    values: &ArticleForm,
    editing: Option<&str>,
) -> FormPage {
    let (title, action, path) = match editing {
        Some(slug) => (
            "Edit article",
            format!("/editor/{}", segment(slug)),
            format!("/editor/{}", segment(slug)),
        ),
        None => ("New article", "/editor".to_owned(), "/editor".to_owned()),
    };
    let tags = Field::input("tags", "Tags", "text")
        .value(&values.tags)
        .hint("Separated by spaces or commas.");
    let mut layout = Layout::new(state, headers, session, title, path);
    layout.live = true;
    let fields = vec![
        Field::input("title", "Title", "text")
            .value(&values.title)
            .required(),
        Field::input("description", "What is it about?", "text")
            .value(&values.description)
            .required(),
        Field::text_area("body", "Article (Markdown)", 16)
            .value(&values.body)
            .required()
            .hint("Markdown: # headings, **bold**, `code`, ```code blocks```, [links](https://…), ![images](/media/…)."),
        tags,
    ];
    FormPage {
        layout,
        heading: title.to_owned(),
        intro: None,
        form_error: None,
        action,
        fields,
        submit: if editing.is_some() {
            "Save changes"
        } else {
            "Publish article"
        },
        has_upload: true,
        danger: None,
    }
}

pub(crate) async fn new_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
) -> Result<Response, WebError> {
    session.require("/editor")?;
    let form = editor_form(&state, &headers, &session, &ArticleForm::default(), None);
    Ok(page(StatusCode::OK, &form, session))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
    PostForm(form): PostForm<ArticleForm>,
) -> Result<Response, WebError> {
    let viewer = session.require("/editor")?;
    let input = NewArticleInput {
        title: Some(form.title.clone()),
        description: Some(form.description.clone()),
        body: Some(form.body.clone()),
        tag_list: Some(tag_list(&form.tags)),
    };
    match state.app.create_article(viewer, input).await {
        Ok(article) => Ok(see_other(
            &format!("/articles/{}", segment(&article.slug)),
            session,
        )),
        Err(AppError::Validation(errors)) => {
            let form = editor_form(&state, &headers, &session, &form, None).with_errors(&errors);
            Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &form, session))
        }
        Err(other) => Err(other.into()),
    }
}

pub(crate) async fn edit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let viewer = session.require(&format!("/editor/{}", segment(&slug)))?;
    let seen = state.app.article(&slug, Some(viewer)).await?;
    let article = seen.record();
    if article.author.username != viewer.user.username {
        return Err(AppError::Forbidden("article").into());
    }
    let values = ArticleForm {
        title: article.title.clone(),
        description: article.description.clone(),
        body: article.body.clone().unwrap_or_default(),
        tags: article.tags.join(" "),
    };
    let mut form = editor_form(&state, &headers, &session, &values, Some(&article.slug));
    form.danger = Some(delete_form(&article.slug, &session.csrf));
    Ok(page(StatusCode::OK, &form, session))
}

/// The delete button under the editor (its own form; the slug and token are escaped here).
fn delete_form(slug: &str, csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/articles/{}/delete\" class=\"upload\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" class=\"danger\">Delete this article</button></form>",
        segment(slug),
        askama::filters::escape(csrf, askama::filters::Html)
            .map(|e| e.to_string())
            .unwrap_or_default()
    )
}

pub(crate) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
    Path(slug): Path<String>,
    PostForm(form): PostForm<ArticleForm>,
) -> Result<Response, WebError> {
    let viewer = session.require(&format!("/editor/{}", segment(&slug)))?;
    let input = UpdateArticleInput {
        title: Some(form.title.clone()),
        description: Some(form.description.clone()),
        body: Some(form.body.clone()),
        tag_list: Some(tag_list(&form.tags)),
    };
    match state.app.update_article(viewer, &slug, input).await {
        Ok(article) => Ok(see_other(
            &format!("/articles/{}", segment(&article.slug)),
            session,
        )),
        Err(AppError::Validation(errors)) => {
            let form =
                editor_form(&state, &headers, &session, &form, Some(&slug)).with_errors(&errors);
            Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &form, session))
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct Nothing {}

pub(crate) async fn delete(
    State(state): State<AppState>,
    session: WebSession,
    Path(slug): Path<String>,
    PostForm(_): PostForm<Nothing>,
) -> Result<Response, WebError> {
    let viewer = session.require(&format!("/articles/{}", segment(&slug)))?;
    state.app.delete_article(viewer, &slug).await?;
    Ok(see_other("/", session))
}

/// A toggle button's form: `action` says which way, `back` where to return.
#[derive(Deserialize)]
pub(crate) struct Toggle {
    #[serde(default)]
    action: String,
    back: Option<String>,
}

pub(crate) async fn favorite(
    State(state): State<AppState>,
    session: WebSession,
    Path(slug): Path<String>,
    PostForm(form): PostForm<Toggle>,
) -> Result<Response, WebError> {
    let here = format!("/articles/{}", segment(&slug));
    let viewer = session.require(&here)?;
    if form.action == "unfavorite" {
        state.app.unfavorite(viewer, &slug).await?;
    } else {
        state.app.favorite(viewer, &slug).await?;
    }
    Ok(see_other(&here, session))
}

pub(crate) async fn follow(
    State(state): State<AppState>,
    session: WebSession,
    Path(username): Path<String>,
    PostForm(form): PostForm<Toggle>,
) -> Result<Response, WebError> {
    let back = form.back.as_deref().map_or_else(
        || format!("/profile/{}", segment(&username)),
        |b| local_path(Some(b)),
    );
    let viewer = session.require(&back)?;
    if form.action == "unfollow" {
        state.app.unfollow(viewer, &username).await?;
    } else {
        state.app.follow(viewer, &username).await?;
    }
    Ok(see_other(&back, session))
}

#[derive(Deserialize)]
pub(crate) struct CommentForm {
    #[serde(default)]
    body: String,
}

pub(crate) async fn comment(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
    Path(slug): Path<String>,
    PostForm(form): PostForm<CommentForm>,
) -> Result<Response, WebError> {
    let here = format!("/articles/{}", segment(&slug));
    let viewer = session.require(&here)?;
    let input = NewCommentInput {
        body: Some(form.body.clone()),
    };
    match state.app.add_comment(viewer, &slug, input).await {
        Ok(comment) => Ok(see_other(
            &format!("{here}#comment-{}", comment.id.0),
            session,
        )),
        Err(AppError::Validation(errors)) => {
            let message = errors
                .iter()
                .map(|(_, messages)| format!("Your comment {}", messages.join(", ")))
                .collect::<Vec<_>>()
                .join("; ");
            let page_data =
                article_page(&state, &headers, &session, &slug, form.body, Some(message)).await?;
            Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &page_data, session))
        }
        Err(other) => Err(other.into()),
    }
}

pub(crate) async fn delete_comment(
    State(state): State<AppState>,
    session: WebSession,
    Path((slug, id)): Path<(String, String)>,
    PostForm(_): PostForm<Nothing>,
) -> Result<Response, WebError> {
    let here = format!("/articles/{}", segment(&slug));
    let viewer = session.require(&here)?;
    state.app.delete_comment(viewer, &slug, &id).await?;
    Ok(see_other(&format!("{here}#comments-title"), session))
}

#[derive(Template)]
#[template(path = "web/uploaded.html")]
struct UploadedPage {
    layout: Layout,
    url: String,
    markdown: String,
}

/// An image uploaded from the editor (`multipart/form-data`: the CSRF field, then the file).
/// Answers a page showing the Markdown to paste, or JSON `{url, markdown}` to the editor's
/// script, which inserts it into the body.
pub(crate) async fn upload(
    State(state): State<AppState>,
    session: WebSession,
    request: Request,
) -> Result<Response, WebError> {
    let viewer = session.require("/editor")?.clone();
    let headers = request.headers().clone();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary =
        multer::parse_boundary(content_type).map_err(|e| WebError::BadForm(e.to_string()))?;
    let mut multipart = multer::Multipart::new(request.into_body().into_data_stream(), boundary);
    let bad = |e: multer::Error| WebError::BadForm(e.to_string());
    let csrf_field = multipart.next_field().await.map_err(bad)?;
    let csrf = match csrf_field {
        Some(field) if field.name() == Some("csrf") => field.text().await.map_err(bad)?,
        _ => return Err(WebError::Csrf),
    };
    if !csrf_matches(&headers, &csrf) {
        return Err(WebError::Csrf);
    }
    let Some(file) = multipart.next_field().await.map_err(bad)? else {
        return Err(WebError::BadForm("choose a file to upload".to_owned()));
    };
    let name = file.file_name().unwrap_or("image").to_owned();
    let upload = MediaUpload {
        content_type: file
            .content_type()
            .map_or_else(|| "application/octet-stream".to_owned(), |m| m.to_string()),
        declared_length: None,
        body: Box::pin(file.map_err(std::io::Error::other)),
    };
    let media = state.app.upload_media(&viewer, upload).await?;
    let url = format!("/media/{}", media.id);
    let alt: String = name
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | '(' | ')' | '\n' | '\r'))
        .collect();
    let markdown = format!("![{alt}]({url})");
    if wants_json {
        let body = serde_json::json!({ "url": url, "markdown": markdown });
        return Ok(session.finish((StatusCode::CREATED, axum::Json(body)).into_response()));
    }
    let page_data = UploadedPage {
        layout: Layout::new(&state, &headers, &session, "Uploaded", "/editor"),
        url,
        markdown,
    };
    Ok(page(StatusCode::CREATED, &page_data, session))
}
