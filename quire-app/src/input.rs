//! Client input as it arrives, before parsing: every field optional, so that a missing field
//! is reported like an invalid one (422 "can't be blank") instead of as a JSON shape error.

use serde::{Deserialize, Deserializer};

/// `POST /users`.
#[derive(Debug, Default, Deserialize)]
pub struct NewUserInput {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

/// `POST /users/login`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginInput {
    pub email: Option<String>,
    pub password: Option<String>,
}

/// `PUT /user`. For `bio` and `image`, an explicit `null` (or `""`) clears the field.
#[derive(Debug, Default, Deserialize)]
pub struct UpdateUserInput {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub bio: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub image: Option<Option<String>>,
}

/// `POST /articles`.
#[derive(Debug, Default, Deserialize)]
pub struct NewArticleInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub body: Option<String>,
    #[serde(rename = "tagList")]
    pub tag_list: Option<Vec<String>>,
}

/// `PUT /articles/{slug}`.
#[derive(Debug, Default, Deserialize)]
pub struct UpdateArticleInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub body: Option<String>,
}

/// `POST /articles/{slug}/comments`.
#[derive(Debug, Default, Deserialize)]
pub struct NewCommentInput {
    pub body: Option<String>,
}

/// `GET /articles` query parameters, unparsed.
#[derive(Debug, Default, Deserialize)]
pub struct ArticleQuery {
    pub tag: Option<String>,
    pub author: Option<String>,
    pub favorited: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
