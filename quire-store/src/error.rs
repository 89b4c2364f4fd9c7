//! The store's error type. Callers match on the variant; messages are lowercase, without a
//! trailing period, and never meant for clients verbatim (the HTTP layer hides internals).

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Unique fields already held by another row, by client-facing field name
    /// (`"username"`, `"email"`).
    #[error("already taken: {}", .0.join(", "))]
    Conflict(Vec<&'static str>),
    /// The bounded queue in front of the database is full: shed load rather than queue forever.
    #[error("store is overloaded")]
    Overloaded,
    /// The database server cannot be reached right now (PostgreSQL down or restarting);
    /// callers shed the request and may retry shortly.
    #[error("store is unavailable: {0}")]
    Unavailable(String),
    /// The store has been shut down (only seen during process exit).
    #[error("store is closed")]
    Closed,
    /// A bad database URL or option.
    #[error("configuration: {0}")]
    Config(String),
    /// Anything the database itself reported: I/O, corruption, a bug in a query.
    #[error("database: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Database(error.to_string())
    }
}
