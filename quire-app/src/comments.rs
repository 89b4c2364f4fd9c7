//! Comments on articles: list, add, delete (by their author only).

use quire_domain::{CommentBody, CommentId, FieldError};
use quire_store::CommentRecord;

use quire_events::Event;

use crate::articles::slug_in_path;
use crate::live::{comment_snapshot, topics_of};
use crate::{App, AppError, AppResult, NewCommentInput, Viewer};

impl App {
    pub async fn comments(
        &self,
        slug: &str,
        viewer: Option<&Viewer>,
    ) -> AppResult<Vec<CommentRecord>> {
        let slug = slug_in_path(slug)?;
        self.store
            .comments(&slug, viewer.map(Viewer::id))
            .await?
            .ok_or(AppError::NotFound("article"))
    }

    pub async fn add_comment(
        &self,
        viewer: &Viewer,
        slug: &str,
        input: NewCommentInput,
    ) -> AppResult<CommentRecord> {
        let body = match input.body {
            None => return Err(FieldError::blank("body").into()),
            Some(raw) => CommentBody::parse(&raw)?,
        };
        let slug = slug_in_path(slug)?;
        let comment = self
            .store
            .add_comment(viewer.id(), &slug, body)
            .await?
            .ok_or(AppError::NotFound("article"))?;
        // The article may be deleted meanwhile; then nobody needs the event.
        if let Ok(article) = self.article(slug.as_str(), None).await {
            self.publish(Event::comment_created(
                topics_of(article.record()),
                comment_snapshot(&comment),
            ))
            .await;
        }
        Ok(comment)
    }

    /// Deletes a comment: 404 if the article or comment is absent, 403 if not the viewer's.
    pub async fn delete_comment(&self, viewer: &Viewer, slug: &str, id: &str) -> AppResult<()> {
        let slug = slug_in_path(slug)?;
        let id = id
            .parse::<i64>()
            .map(CommentId)
            .map_err(|_| AppError::NotFound("comment"))?;
        let article = self.article(slug.as_str(), None).await?;
        let comment = self
            .store
            .comment(&slug, id, None)
            .await?
            .ok_or(AppError::NotFound("comment"))?;
        if comment.author.id != viewer.id() {
            return Err(AppError::Forbidden("comment"));
        }
        if self.store.delete_comment(id).await? {
            self.publish(Event::comment_deleted(topics_of(article.record()), id.0))
                .await;
        }
        Ok(())
    }
}
