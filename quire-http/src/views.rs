//! The JSON shapes of `openapi.yml`, built from app records. Field names follow the spec
//! (camelCase); `bio` and `image` are always present, as `null` when unset; article lists
//! leave out `body`. Article reads are written by [`crate::render`] in these same shapes.

use quire_app::{ArticleRecord, CommentRecord, MediaRecord, Profile, SignedInUser};
use quire_domain::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct UserBody<'a> {
    pub user: UserView<'a>,
}

#[derive(Serialize, ToSchema)]
pub struct UserView<'a> {
    pub email: &'a str,
    pub token: &'a str,
    pub username: &'a str,
    /// `null` when unset.
    #[schema(required = true)]
    pub bio: Option<&'a str>,
    /// `null` when unset.
    #[schema(required = true)]
    pub image: Option<&'a str>,
}

impl<'a> From<&'a SignedInUser> for UserBody<'a> {
    fn from(signed_in: &'a SignedInUser) -> Self {
        let user = &signed_in.user;
        Self {
            user: UserView {
                email: &user.email,
                token: &signed_in.token,
                username: &user.username,
                bio: user.bio.as_deref(),
                image: user.image.as_deref(),
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProfileBody<'a> {
    pub profile: ProfileView<'a>,
}

#[derive(Serialize, ToSchema)]
pub struct ProfileView<'a> {
    pub username: &'a str,
    /// `null` when unset.
    #[schema(required = true)]
    pub bio: Option<&'a str>,
    /// `null` when unset.
    #[schema(required = true)]
    pub image: Option<&'a str>,
    pub following: bool,
}

impl<'a> From<&'a Profile> for ProfileView<'a> {
    fn from(profile: &'a Profile) -> Self {
        Self {
            username: &profile.username,
            bio: profile.bio.as_deref(),
            image: profile.image.as_deref(),
            following: profile.following,
        }
    }
}

impl<'a> From<&'a Profile> for ProfileBody<'a> {
    fn from(profile: &'a Profile) -> Self {
        Self {
            profile: profile.into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArticleView<'a> {
    pub slug: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    /// Left out of article lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub body: Option<&'a str>,
    #[schema(value_type = Vec<String>)]
    pub tag_list: &'a [String],
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub favorited: bool,
    pub favorites_count: u64,
    pub author: ProfileView<'a>,
}

impl<'a> From<&'a ArticleRecord> for ArticleView<'a> {
    fn from(article: &'a ArticleRecord) -> Self {
        Self {
            slug: &article.slug,
            title: &article.title,
            description: &article.description,
            body: article.body.as_deref(),
            tag_list: &article.tags,
            created_at: article.created_at,
            updated_at: article.updated_at,
            favorited: article.favorited,
            favorites_count: article.favorites_count,
            author: (&article.author).into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ArticleBody<'a> {
    pub article: ArticleView<'a>,
}

impl<'a> From<&'a ArticleRecord> for ArticleBody<'a> {
    fn from(article: &'a ArticleRecord) -> Self {
        Self {
            article: article.into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArticlesBody<'a> {
    pub articles: Vec<ArticleView<'a>>,
    pub articles_count: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommentView<'a> {
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub body: &'a str,
    pub author: ProfileView<'a>,
}

impl<'a> From<&'a CommentRecord> for CommentView<'a> {
    fn from(comment: &'a CommentRecord) -> Self {
        Self {
            id: comment.id.0,
            created_at: comment.created_at,
            updated_at: comment.updated_at,
            body: &comment.body,
            author: (&comment.author).into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CommentBody<'a> {
    pub comment: CommentView<'a>,
}

#[derive(Serialize, ToSchema)]
pub struct CommentsBody<'a> {
    pub comments: Vec<CommentView<'a>>,
}

/// `GET /api/profiles/{username}/dashboard` (an extension of the spec).
#[derive(Serialize, ToSchema)]
pub struct DashboardBody<'a> {
    pub dashboard: DashboardView<'a>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DashboardView<'a> {
    pub profile: ProfileView<'a>,
    pub stats: DashboardStats,
    /// The five newest articles, without bodies.
    pub latest_articles: Vec<ArticleView<'a>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DashboardStats {
    pub articles: u64,
    pub favorites_received: u64,
    pub followers: u64,
    pub following: u64,
}

#[derive(Serialize, ToSchema)]
pub struct TagsBody<'a> {
    pub tags: Vec<&'a str>,
}

/// `POST /api/media` (an extension of the spec).
#[derive(Serialize, ToSchema)]
pub struct MediaBody<'a> {
    pub media: MediaView<'a>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaView<'a> {
    /// 32 lowercase hex characters.
    pub id: &'a str,
    /// Where the bytes are served: `/media/{id}`.
    pub url: String,
    pub size: u64,
    pub content_type: &'a str,
    /// Lowercase hex SHA-256 of the bytes (also the `ETag`).
    pub sha256: &'a str,
}

impl<'a> From<&'a MediaRecord> for MediaBody<'a> {
    fn from(media: &'a MediaRecord) -> Self {
        Self {
            media: MediaView {
                id: &media.id,
                url: format!("/media/{}", media.id),
                size: media.size,
                content_type: &media.content_type,
                sha256: &media.sha256,
            },
        }
    }
}

/// `GET /health/live` and `GET /health/ready`.
#[derive(Serialize, ToSchema)]
pub struct HealthBody {
    /// `live`, `ready` or `unavailable`.
    pub status: &'static str,
    /// Why the process is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}
