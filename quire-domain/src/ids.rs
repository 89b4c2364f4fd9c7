//! Row identifiers. Distinct types so a user id can never be passed where an article id is meant.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user's primary key.
    UserId
);
id_type!(
    /// An article's primary key (clients address articles by [`crate::Slug`]).
    ArticleId
);
id_type!(
    /// A comment's primary key, exposed to clients as the comment `id`.
    CommentId
);
