//! quire's API tests: one binary driving a real server over real HTTP on port 0. Grouped by
//! resource; `support` has the harness.
//!
//! Every test written with [`api_test!`] runs twice, as `<name>::sqlite` (its own SQLite file)
//! and `<name>::postgres` (its own fresh PostgreSQL database, created for it and dropped after),
//! like ripgrep's tests run under two regex engines. PostgreSQL must answer at
//! `postgres://root@127.0.0.1:5432/test` (or `QUIRE_TEST_POSTGRES_URL`); if it does not, the
//! postgres tests fail, they never skip. The few plain `#[tokio::test]`s left say why they
//! are about one backend only.

/// Turns `async fn name() { body }` into a module `name` with two tests, `sqlite` and
/// `postgres`, each running `body` with that backend chosen for every `TestApp` and `quire`
/// process it starts. Tokio test arguments go first, in brackets:
/// `api_test! { [flavor = "multi_thread"] async fn name() { ... } }`.
macro_rules! api_test {
    ([$($args:tt)*] $(#[$attr:meta])* async fn $name:ident() $body:block) => {
        $(#[$attr])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test($($args)*)]
            async fn sqlite() {
                crate::support::Backend::Sqlite.run(async $body).await
            }

            #[tokio::test($($args)*)]
            async fn postgres() {
                crate::support::Backend::Postgres.run(async $body).await
            }
        }
    };
    ($(#[$attr:meta])* async fn $name:ident() $body:block) => {
        api_test!([] $(#[$attr])* async fn $name() $body);
    };
}

mod articles;
mod backup;
mod browser;
mod cache;
mod cache_audit;
mod check;
mod cli;
mod cluster;
mod comments;
mod copy;
mod dashboards;
mod durability;
mod errors;
mod export;
mod limits;
mod live;
mod live_memory;
mod logs;
mod media;
mod media_copy;
mod media_faults;
mod openapi;
mod pg_faults;
mod pg_replicas;
mod pg_server;
mod postgres;
mod profiles;
mod restart;
mod search;
mod serving;
mod slow_clients;
mod support;
mod tls;
mod tracing;
mod user_admin;
mod users;
mod web;
mod web_ui;
