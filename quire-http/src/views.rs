//! The JSON shapes of `openapi.yml`, built from app records. Field names follow the spec
//! (camelCase); `bio` and `image` are always present, as `null` when unset; article lists
//! leave out `body`.

use quire_app::{ArticleList, ArticleRecord, CommentRecord, Profile, SignedInUser};
use quire_domain::Timestamp;
use serde::Serialize;

#[derive(Serialize)]
pub struct UserBody<'a> {
    pub user: UserView<'a>,
}

#[derive(Serialize)]
pub struct UserView<'a> {
    pub email: &'a str,
    pub token: &'a str,
    pub username: &'a str,
    pub bio: Option<&'a str>,
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

#[derive(Serialize)]
pub struct ProfileBody<'a> {
    pub profile: ProfileView<'a>,
}

#[derive(Serialize)]
pub struct ProfileView<'a> {
    pub username: &'a str,
    pub bio: Option<&'a str>,
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArticleView<'a> {
    pub slug: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<&'a str>,
    pub tag_list: &'a [String],
    pub created_at: Timestamp,
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

#[derive(Serialize)]
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArticlesBody<'a> {
    pub articles: Vec<ArticleView<'a>>,
    pub articles_count: u64,
}

impl<'a> From<&'a ArticleList> for ArticlesBody<'a> {
    fn from(list: &'a ArticleList) -> Self {
        Self {
            articles: list.articles.iter().map(ArticleView::from).collect(),
            articles_count: list.total,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentView<'a> {
    pub id: i64,
    pub created_at: Timestamp,
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

#[derive(Serialize)]
pub struct CommentBody<'a> {
    pub comment: CommentView<'a>,
}

#[derive(Serialize)]
pub struct CommentsBody<'a> {
    pub comments: Vec<CommentView<'a>>,
}
