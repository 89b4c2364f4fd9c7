//! Client input as it arrives, before parsing: every field optional, so that a missing field
//! is reported like an invalid one (422 "can't be blank") instead of as a JSON shape error.

use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

/// `POST /users`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NewUserInput {
    #[schema(value_type = String, required = true)]
    pub username: Option<String>,
    #[schema(value_type = String, required = true)]
    pub email: Option<String>,
    #[schema(value_type = String, required = true)]
    pub password: Option<String>,
}

/// `POST /users/login`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct LoginInput {
    #[schema(value_type = String, required = true)]
    pub email: Option<String>,
    #[schema(value_type = String, required = true)]
    pub password: Option<String>,
}

/// `PUT /user`. For `bio` and `image`, an explicit `null` (or `""`) clears the field.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateUserInput {
    #[schema(value_type = String, required = false)]
    pub username: Option<String>,
    #[schema(value_type = String, required = false)]
    pub email: Option<String>,
    #[schema(value_type = String, required = false)]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub bio: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub image: Option<Option<String>>,
}

/// `POST /articles`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NewArticleInput {
    #[schema(value_type = String, required = true)]
    pub title: Option<String>,
    #[schema(value_type = String, required = true)]
    pub description: Option<String>,
    #[schema(value_type = String, required = true)]
    pub body: Option<String>,
    #[serde(rename = "tagList")]
    #[schema(value_type = Vec<String>, required = false)]
    pub tag_list: Option<Vec<String>>,
}

/// `PUT /articles/{slug}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateArticleInput {
    #[schema(value_type = String, required = false)]
    pub title: Option<String>,
    #[schema(value_type = String, required = false)]
    pub description: Option<String>,
    #[schema(value_type = String, required = false)]
    pub body: Option<String>,
    /// The whole new tag list (an extension of the spec: its update has no tags).
    #[serde(rename = "tagList")]
    #[schema(value_type = Vec<String>, required = false)]
    pub tag_list: Option<Vec<String>>,
}

/// `POST /articles/{slug}/comments`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NewCommentInput {
    #[schema(value_type = String, required = true)]
    pub body: Option<String>,
}

/// `GET /articles` query parameters, unparsed.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArticleQuery {
    /// Only articles with this tag.
    pub tag: Option<String>,
    /// Only articles by this username.
    pub author: Option<String>,
    /// Only articles this username favorited.
    pub favorited: Option<String>,
    /// Articles per page, 1 to 100 (larger values count as 100); default 20.
    #[param(value_type = Option<u32>, minimum = 1)]
    pub limit: Option<String>,
    /// Articles to skip; default 0.
    #[param(value_type = Option<u32>)]
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
