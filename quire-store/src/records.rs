//! Plain data going into and coming out of the store. Fields hold already-validated values.

use quire_domain::{
    ArticleBody, ArticleId, Bio, CommentId, Description, Email, ImageUrl, TagList, Timestamp,
    Title, UserId, Username,
};

/// A user as stored, including the password hash (never serialized to clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    /// Disabled by `quire user disable`: signs nobody in, its tokens are refused.
    pub disabled: bool,
}

/// A user to create; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub password_hash: String,
}

/// Fields to change on a user; `None` leaves a field as it is. For `bio` and `image`,
/// `Some(None)` clears the field.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub password_hash: Option<String>,
    pub bio: Option<Option<Bio>>,
    pub image: Option<Option<ImageUrl>>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        self.username.is_none()
            && self.email.is_none()
            && self.password_hash.is_none()
            && self.bio.is_none()
            && self.image.is_none()
    }
}

/// A user as others see them; `following` is whether the viewer follows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: UserId,
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub following: bool,
}

/// An article with its author and the viewer's flags. `body` is `None` in lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleRecord {
    pub id: ArticleId,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub body: Option<String>,
    /// Sorted.
    pub tags: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub favorited: bool,
    pub favorites_count: u64,
    pub author: Profile,
}

/// One page of articles and the number of all articles matching.
#[derive(Debug, Clone, Default)]
pub struct ArticleList {
    pub articles: Vec<ArticleRecord>,
    pub total: u64,
}

/// Where a search snippet's match starts (a private-use character, never in stored text).
pub const MARK_START: char = '\u{E000}';
/// Where a search snippet's match ends.
pub const MARK_END: char = '\u{E001}';

/// One article a search found, with its text around the matches (each match between
/// [`MARK_START`] and [`MARK_END`]).
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub id: ArticleId,
    pub snippet: String,
}

/// One page of search hits, best first, and the number of all hits.
#[derive(Debug, Clone, Default)]
pub struct SearchHits {
    pub hits: Vec<SearchHit>,
    pub total: u64,
}

/// An article to create.
#[derive(Debug, Clone)]
pub struct NewArticle {
    pub author: UserId,
    pub title: Title,
    pub description: Description,
    pub body: ArticleBody,
    pub tags: TagList,
}

/// Fields to change on an article; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ArticleChanges {
    pub title: Option<Title>,
    pub description: Option<Description>,
    pub body: Option<ArticleBody>,
    /// The article's whole new tag list (an extension of the spec's update).
    pub tags: Option<TagList>,
}

/// Filters of the article list; all given filters must match. Unknown names match nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ArticleFilter {
    pub tag: Option<String>,
    pub author: Option<String>,
    pub favorited_by: Option<String>,
}

/// A comment with its author as the viewer sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentRecord {
    pub id: CommentId,
    pub body: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub author: Profile,
}

/// An uploaded file's metadata; its bytes are in the blob store under `sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    /// 32 lowercase hex characters.
    pub id: String,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    pub uploader: UserId,
    pub created_at: Timestamp,
}

/// A number the profile dashboard shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Count {
    /// Articles the user wrote.
    ArticlesBy(UserId),
    /// Favorites on all of the user's articles.
    FavoritesReceived(UserId),
    /// Users following the user.
    Followers(UserId),
    /// Users the user follows.
    Following(UserId),
}
