//! The pages people read: home (the global feed, "your feed" when signed in, popular tags),
//! tag pages, author pages (their articles, their favorites) and the article page (the body
//! rendered from Markdown, comments newest first, favorite and follow buttons).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use quire_app::ArticleQuery;
use serde::Deserialize;

use super::views::{ArticleView, CommentView, Pager, Tab, limit_offset, page_number, segment};
use super::{FeedLink, Layout, OpenGraph, WebError, WebSession, page};
use crate::AppState;
use crate::extract::ApiQuery;
use crate::openapi::CommonErrors;

/// `?page=` and, on the home page, `?feed=your`; on author pages, `?tab=favorites`.
#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    page: Option<String>,
    feed: Option<String>,
    tab: Option<String>,
}

#[derive(Template)]
#[template(path = "web/home.html")]
struct HomePage {
    layout: Layout,
    heading: String,
    tabs: Vec<Tab>,
    previews: Vec<std::sync::Arc<str>>,
    pager: Pager,
    tags: Vec<String>,
}

#[utoipa::path(get, path = "/", tag = "Web", operation_id = "HomePage",
    params(
        ("page" = Option<u32>, Query, minimum = 1, description = "page of 20 articles, from 1"),
        ("feed" = Option<String>, Query, description = "`your`: articles by the authors the signed-in reader follows"),
    ),
    responses(
        (status = 200, description = "the newest articles, popular tags (HTML)", content_type = "text/html", body = String),
        CommonErrors))]
pub(crate) async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, WebError> {
    let number = page_number(query.page.as_deref());
    let (limit, offset) = limit_offset(number);
    let yours = query.feed.as_deref() == Some("your");
    let (list, tags) = match (&session.viewer, yours) {
        (Some(viewer), true) => tokio::try_join!(
            state.app.feed(viewer, Some(&limit), Some(&offset)),
            state.app.tags()
        )?,
        _ => {
            let query = ArticleQuery {
                limit: Some(limit),
                offset: Some(offset),
                ..ArticleQuery::default()
            };
            tokio::try_join!(
                state.app.list_articles(query, session.viewer.as_ref()),
                state.app.tags()
            )?
        }
    };
    let yours = yours && session.viewer.is_some();
    let feed = if yours { "feed=your&" } else { "" };
    let tabs = match session.viewer {
        Some(_) => vec![
            Tab {
                label: "Your feed".to_owned(),
                href: "/?feed=your".to_owned(),
                current: yours,
            },
            Tab {
                label: "Global feed".to_owned(),
                href: "/".to_owned(),
                current: !yours,
            },
        ],
        None => Vec::new(),
    };
    let path = match (yours, number) {
        (false, 1) => "/".to_owned(),
        _ => format!("/?{feed}page={number}"),
    };
    let mut layout = Layout::new(&state, &headers, &session, "Home", path);
    layout.live = true;
    let page_data = HomePage {
        heading: if yours {
            "Your feed"
        } else {
            "Latest articles"
        }
        .to_owned(),
        tabs,
        previews: super::views::previews(&list.articles),
        pager: Pager::new(number, list.total, |n| format!("/?{feed}page={n}")),
        tags: tags
            .iter()
            .take(30)
            .map(|t| t.as_str().to_owned())
            .collect(),
        layout,
    };
    Ok(page(StatusCode::OK, &page_data, session))
}

#[derive(Template)]
#[template(path = "web/list.html")]
struct ListPage {
    layout: Layout,
    heading: String,
    intro: Option<String>,
    previews: Vec<std::sync::Arc<str>>,
    pager: Pager,
}

pub(crate) async fn tag(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
    Path(tag): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, WebError> {
    let number = page_number(query.page.as_deref());
    let (limit, offset) = limit_offset(number);
    let list = state
        .app
        .list_articles(
            ArticleQuery {
                tag: Some(tag.clone()),
                limit: Some(limit),
                offset: Some(offset),
                ..ArticleQuery::default()
            },
            session.viewer.as_ref(),
        )
        .await?;
    let base = format!("/tag/{}", segment(&tag));
    let mut layout = Layout::new(
        &state,
        &headers,
        &session,
        format!("Tagged “{tag}”"),
        if number == 1 {
            base.clone()
        } else {
            format!("{base}?page={number}")
        },
    );
    layout.feeds.push(FeedLink {
        title: format!("quire: articles tagged {tag}"),
        href: format!("{base}/feed.atom"),
    });
    let page_data = ListPage {
        heading: format!("Tagged “{tag}”"),
        intro: None,
        previews: super::views::previews(&list.articles),
        pager: Pager::new(number, list.total, |n| format!("{base}?page={n}")),
        layout,
    };
    Ok(page(StatusCode::OK, &page_data, session))
}

#[derive(Template)]
#[template(path = "web/profile.html")]
struct ProfilePage {
    layout: Layout,
    username: String,
    bio: Option<String>,
    image: Option<String>,
    following: bool,
    is_me: bool,
    tabs: Vec<Tab>,
    previews: Vec<std::sync::Arc<str>>,
    pager: Pager,
}

pub(crate) async fn profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
    Path(username): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, WebError> {
    let number = page_number(query.page.as_deref());
    let (limit, offset) = limit_offset(number);
    let favorites = query.tab.as_deref() == Some("favorites");
    let viewer = session.viewer.as_ref();
    let profile = state.app.profile(&username, viewer).await?;
    let list_query = ArticleQuery {
        author: (!favorites).then(|| profile.username.clone()),
        favorited: favorites.then(|| profile.username.clone()),
        limit: Some(limit),
        offset: Some(offset),
        ..ArticleQuery::default()
    };
    let list = state.app.list_articles(list_query, viewer).await?;
    let base = format!("/profile/{}", segment(&profile.username));
    let tab = if favorites { "tab=favorites&" } else { "" };
    let mut layout = Layout::new(
        &state,
        &headers,
        &session,
        profile.username.clone(),
        match (favorites, number) {
            (false, 1) => base.clone(),
            _ => format!("{base}?{tab}page={number}"),
        },
    );
    layout.feeds.push(FeedLink {
        title: format!("quire: articles by {}", profile.username),
        href: format!("{base}/feed.atom"),
    });
    if let Some(bio) = &profile.bio {
        layout.description = bio.clone();
    }
    let page_data = ProfilePage {
        is_me: viewer.is_some_and(|v| v.user.username == profile.username),
        following: profile.following,
        tabs: vec![
            Tab {
                label: "Articles".to_owned(),
                href: base.clone(),
                current: !favorites,
            },
            Tab {
                label: "Favorites".to_owned(),
                href: format!("{base}?tab=favorites"),
                current: favorites,
            },
        ],
        previews: super::views::previews(&list.articles),
        pager: Pager::new(number, list.total, |n| format!("{base}?{tab}page={n}")),
        username: profile.username.clone(),
        bio: profile.bio.clone(),
        image: profile.image.clone(),
        layout,
    };
    Ok(page(StatusCode::OK, &page_data, session))
}

#[derive(Template)]
#[template(path = "web/article.html")]
pub(crate) struct ArticlePage {
    pub layout: Layout,
    pub a: ArticleView,
    pub body_html: std::sync::Arc<str>,
    pub is_author: bool,
    pub following: bool,
    pub favorited: bool,
    pub comments: Vec<CommentView>,
    pub comment_draft: String,
    pub comment_error: Option<String>,
}

/// The article page, with a comment draft and its error when a comment was refused.
pub(crate) async fn article_page(
    state: &AppState,
    headers: &HeaderMap,
    session: &WebSession,
    slug: &str,
    comment_draft: String,
    comment_error: Option<String>,
) -> Result<ArticlePage, WebError> {
    let viewer = session.viewer.as_ref();
    let (seen, mut comments) = tokio::try_join!(
        state.app.article(slug, viewer),
        state.app.comments(slug, viewer)
    )?;
    // Newest first.
    comments.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.0.cmp(&a.id.0)));
    let record = seen.record();
    let reader = viewer.map(|v| v.user.username.as_str());
    let mut layout = Layout::new(
        state,
        headers,
        session,
        record.title.clone(),
        format!("/articles/{}", segment(&record.slug)),
    );
    layout.description = record.description.clone();
    layout.live = true;
    layout.open_graph = Some(OpenGraph {
        title: record.title.clone(),
        description: record.description.clone(),
        published: record.created_at.to_rfc3339(),
        author: record.author.username.clone(),
        image: record.author.image.clone(),
    });
    layout.feeds.push(FeedLink {
        title: format!("quire: articles by {}", record.author.username),
        href: format!("/profile/{}/feed.atom", segment(&record.author.username)),
    });
    Ok(ArticlePage {
        body_html: crate::render::article_html(&seen, super::markdown::to_html),
        is_author: reader == Some(record.author.username.as_str()),
        following: seen.following,
        favorited: seen.favorited,
        comments: comments
            .iter()
            .map(|comment| CommentView::of(comment, reader))
            .collect(),
        comment_draft,
        comment_error,
        a: ArticleView::of(record),
        layout,
    })
}

#[utoipa::path(get, path = "/articles/{slug}", tag = "Web", operation_id = "ArticlePage",
    params(("slug" = String, Path, description = "the article's slug")),
    responses(
        (status = 200, description = "the article, rendered from Markdown, and its comments (HTML)", content_type = "text/html", body = String),
        (status = 404, description = "no such article (an HTML page)", content_type = "text/html", body = String),
        CommonErrors))]
pub(crate) async fn article(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: WebSession,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let page_data = article_page(&state, &headers, &session, &slug, String::new(), None).await?;
    Ok(page(StatusCode::OK, &page_data, session))
}
