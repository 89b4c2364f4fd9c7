//! quire's API tests: one binary driving a real server over real HTTP on port 0, each test
//! with its own SQLite file. Grouped by resource; `support` has the harness.

mod articles;
mod cache;
mod comments;
mod copy;
mod durability;
mod errors;
mod limits;
mod live;
mod live_memory;
mod logs;
mod media;
mod openapi;
mod profiles;
mod restart;
mod serving;
mod slow_clients;
mod support;
mod tls;
mod users;
mod web;
