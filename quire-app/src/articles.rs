//! Articles: lists, the feed, one article, create, update, delete, favorites, tags.

use quire_domain::{
    ArticleBody, Description, FieldError, FieldErrors, Page, Slug, Tag, TagList, Title,
};
use quire_store::{ArticleChanges, ArticleFilter, ArticleRecord, NewArticle};

use std::sync::Arc;

use quire_events::{Event, EventKind};

use crate::cache::{FEED_CACHED, Invalidation};
use crate::live::topics_of;
use crate::{
    App, AppError, AppResult, ArticlePage, ArticleQuery, NewArticleInput, SeenArticle,
    UpdateArticleInput, Viewer,
};

/// A slug from a URL; one that cannot exist is simply not found.
pub(crate) fn slug_in_path(raw: &str) -> AppResult<Slug> {
    Slug::parse(raw).ok_or(AppError::NotFound("article"))
}

/// An empty filter value (`?tag=`) filters nothing, as if it were absent.
fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl App {
    pub async fn list_articles(
        &self,
        query: ArticleQuery,
        viewer: Option<&Viewer>,
    ) -> AppResult<ArticlePage> {
        let page = Page::parse(query.limit.as_deref(), query.offset.as_deref())?;
        let filter = ArticleFilter {
            tag: non_empty(query.tag),
            author: non_empty(query.author),
            favorited_by: non_empty(query.favorited),
        };
        let ids = self.cached_article_ids(filter, page).await?;
        let articles = self.cached_articles(&ids.0).await?;
        Ok(ArticlePage {
            articles: self.seen_by(viewer, articles).await?,
            total: ids.1,
        })
    }

    pub async fn feed(
        &self,
        viewer: &Viewer,
        limit: Option<&str>,
        offset: Option<&str>,
    ) -> AppResult<ArticlePage> {
        let page = Page::parse(limit, offset)?;
        let end = page.offset.saturating_add(u64::from(page.limit));
        if end > u64::from(FEED_CACHED) {
            let list = self.store.feed(viewer.id(), page).await?;
            return Ok(ArticlePage {
                articles: list.articles.into_iter().map(SeenArticle::from).collect(),
                total: list.total,
            });
        }
        let head = self.cached_feed(viewer.id()).await?;
        let ids: Vec<_> = head
            .0
            .iter()
            .skip(page.offset as usize)
            .take(page.limit as usize)
            .copied()
            .collect();
        let articles = self.cached_articles(&ids).await?;
        Ok(ArticlePage {
            articles: self.seen_by(Some(viewer), articles).await?,
            total: head.1,
        })
    }

    pub async fn article(&self, slug: &str, viewer: Option<&Viewer>) -> AppResult<SeenArticle> {
        let slug = slug_in_path(slug)?;
        let id = self
            .cached_article_id(&slug)
            .await?
            .ok_or(AppError::NotFound("article"))?;
        let article = self
            .cached_articles(&[id])
            .await?
            .pop()
            .ok_or(AppError::NotFound("article"))?;
        let mut seen = self.seen_by(viewer, vec![article]).await?;
        seen.pop().ok_or(AppError::NotFound("article"))
    }

    pub async fn create_article(
        &self,
        viewer: &Viewer,
        input: NewArticleInput,
    ) -> AppResult<ArticleRecord> {
        let mut errors = FieldErrors::new();
        let mut required = |field, raw: Option<String>| {
            if raw.is_none() {
                errors.push(FieldError::blank(field));
            }
            raw
        };
        let title = required("title", input.title);
        let description = required("description", input.description);
        let body = required("body", input.body);
        let title = title.and_then(|t| errors.check(Title::parse(&t)));
        let description = description.and_then(|d| errors.check(Description::parse(&d)));
        let body = body.and_then(|b| errors.check(ArticleBody::parse(&b)));
        let tags = errors.check(TagList::parse(
            input.tag_list.as_deref().unwrap_or_default(),
        ));
        let (Some(title), Some(description), Some(body), Some(tags)) =
            (title, description, body, tags)
        else {
            return Err(errors.into());
        };
        let article = self
            .store
            .create_article(NewArticle {
                author: viewer.id(),
                title,
                description,
                body,
                tags,
            })
            .await?;
        self.forget(&[
            Invalidation::Slug(article.slug.clone()),
            Invalidation::ListsAndTags,
            Invalidation::stats(&[viewer.id()]),
        ])
        .await?;
        self.publish_article(EventKind::ArticleCreated, &article)
            .await;
        Ok(article)
    }

    /// Loads an article that `viewer` may change: 404 if absent, 403 if not theirs.
    async fn own_article(&self, viewer: &Viewer, slug: &str) -> AppResult<ArticleRecord> {
        let article = self.article(slug, Some(viewer)).await?;
        if article.record().author.id != viewer.id() {
            return Err(AppError::Forbidden("article"));
        }
        Ok(article.to_record())
    }

    pub async fn update_article(
        &self,
        viewer: &Viewer,
        slug: &str,
        input: UpdateArticleInput,
    ) -> AppResult<ArticleRecord> {
        let mut errors = FieldErrors::new();
        let changes = ArticleChanges {
            title: input.title.and_then(|t| errors.check(Title::parse(&t))),
            description: input
                .description
                .and_then(|d| errors.check(Description::parse(&d))),
            body: input
                .body
                .and_then(|b| errors.check(ArticleBody::parse(&b))),
            tags: input
                .tag_list
                .and_then(|tags| errors.check(TagList::parse(&tags))),
        };
        errors.into_result()?;
        let article = self.own_article(viewer, slug).await?;
        if changes.title.is_none()
            && changes.description.is_none()
            && changes.body.is_none()
            && changes.tags.is_none()
        {
            return Err(
                FieldError::new("article", "must contain at least one field to change").into(),
            );
        }
        let retagged = changes.tags.is_some();
        let updated = self
            .store
            .update_article(article.id, changes, viewer.id())
            .await;
        let mut changes = vec![Invalidation::article(&article)];
        if let Ok(Some(renamed)) = &updated {
            changes.push(Invalidation::Slug(renamed.slug.clone()));
        }
        if retagged {
            // Tag-filtered lists and the tag list itself.
            changes.push(Invalidation::ListsAndTags);
        }
        self.forget(&changes).await?;
        let article = updated?.ok_or(AppError::NotFound("article"))?;
        self.publish_article(EventKind::ArticleUpdated, &article)
            .await;
        Ok(article)
    }

    pub async fn delete_article(&self, viewer: &Viewer, slug: &str) -> AppResult<()> {
        let article = self.own_article(viewer, slug).await?;
        let deleted = self.store.delete_article(article.id).await;
        self.forget(&[
            Invalidation::article(&article),
            Invalidation::ListsAndTags,
            // Its favorites went with it.
            Invalidation::stats(&[article.author.id]),
        ])
        .await?;
        if !deleted? {
            return Err(AppError::NotFound("article"));
        }
        self.publish(Event::bare(EventKind::ArticleDeleted, topics_of(&article)))
            .await;
        Ok(())
    }

    pub async fn favorite(&self, viewer: &Viewer, slug: &str) -> AppResult<ArticleRecord> {
        let slug = slug_in_path(slug)?;
        let article = self.store.favorite(viewer.id(), &slug).await?;
        self.favorite_changed(viewer, article).await
    }

    pub async fn unfavorite(&self, viewer: &Viewer, slug: &str) -> AppResult<ArticleRecord> {
        let slug = slug_in_path(slug)?;
        let article = self.store.unfavorite(viewer.id(), &slug).await?;
        self.favorite_changed(viewer, article).await
    }

    /// After a favorite or unfavorite: forget the stale count and flags, tell live clients.
    async fn favorite_changed(
        &self,
        viewer: &Viewer,
        article: Option<ArticleRecord>,
    ) -> AppResult<ArticleRecord> {
        let article = article.ok_or(AppError::NotFound("article"))?;
        self.forget(&[
            Invalidation::ArticleText(article.id.0),
            Invalidation::Viewer(viewer.id().0),
            Invalidation::stats(&[article.author.id]),
        ])
        .await?;
        self.publish_article(EventKind::FavoriteChanged, &article)
            .await;
        Ok(article)
    }

    pub async fn tags(&self) -> AppResult<Arc<Vec<Tag>>> {
        self.cached_tags().await
    }
}
