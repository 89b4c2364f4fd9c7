//! quire's domain values: small types that can only hold valid data.
//!
//! Every input from a client passes through a `parse` constructor here before it reaches the
//! application or the store ("parse, don't validate"). This crate does no I/O and knows nothing of
//! HTTP, SQL or async runtimes; it is the bottom of the dependency graph.

mod error;
mod ids;
mod page;
mod slug;
mod text;
mod time;
mod user;

pub use error::{FieldError, FieldErrors};
pub use ids::{ArticleId, CommentId, UserId};
pub use page::{MAX_LIMIT, Page};
pub use slug::Slug;
pub use text::{ArticleBody, CommentBody, Description, Tag, TagList, Title};
pub use time::Timestamp;
pub use user::{Bio, Email, ImageUrl, Password, Username};
