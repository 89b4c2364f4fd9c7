//! One module per resource, each exposing `router()`; `crate::router` merges them in the
//! spec's order. Handler names follow the spec's operation ids.

pub mod articles;
pub mod comments;
pub mod fallback;
pub mod health;
pub mod media;
pub mod profiles;
pub mod search;
pub mod tags;
pub mod users;
