//! The PostgreSQL connection pool: sizing and timeouts from [`PgOptions`], per-connection
//! settings (`statement_timeout`, `synchronous_commit`), the mapping of driver and pool errors
//! to [`StoreError`], pool metrics, and the upkeep task that retires idle and old connections.
//!
//! Waiting for a connection is bounded by the acquire timeout: past it callers get
//! [`StoreError::Overloaded`] (503 + `Retry-After` upstream), never an unbounded wait. All I/O
//! is async (tokio-postgres), so no async worker thread ever blocks here. No SQL lives here
//! beyond what a connection needs to be usable.

use std::str::FromStr;
use std::time::{Duration, Instant};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, Timeouts,
};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::{StoreError, StoreResult};

/// Longest quire waits for its first connection at start (an unreachable server whose
/// packets are dropped would otherwise hold the start forever).
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest [`get_quickly`] waits for a connection to be freed.
const QUICK_WAIT: Duration = Duration::from_millis(20);

/// Longest [`get_quickly`] waits for a new connection to be made.
const QUICK_CONNECT: Duration = Duration::from_millis(500);

/// Sizing and timeouts of the pool.
#[derive(Debug, Clone, Copy)]
pub struct PgOptions {
    /// Connections open at most.
    pub pool_size: usize,
    /// Longest a request waits for a free connection (or for a new one to be made).
    pub acquire_timeout: Duration,
    /// An idle connection unused for this long is closed.
    pub idle_timeout: Duration,
    /// A connection older than this is closed once it is idle.
    pub max_lifetime: Duration,
    /// Longest one statement may run on the server before it is cancelled.
    pub statement_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            acquire_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(1800),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

/// Parses a `postgres://` URL into the driver's configuration, adding quire's per-connection
/// settings: the statement timeout, and `synchronous_commit=on` so that a commit is on disk
/// (and on synchronous standbys) before quire acknowledges it, whatever the server's default.
pub fn connection_config(url: &str, options: &PgOptions) -> StoreResult<tokio_postgres::Config> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Config(format!("bad PostgreSQL URL {}: {e}", redact(url))))?;
    let mut settings = config.get_options().unwrap_or_default().to_owned();
    settings.push_str(&format!(
        " -c statement_timeout={} -c synchronous_commit=on",
        options.statement_timeout.as_millis()
    ));
    config.options(settings.trim());
    if config.get_connect_timeout().is_none() {
        // At run time the pool's create timeout (the acquire timeout) cuts in first; this
        // bounds the connections made at start, which may take longer.
        config.connect_timeout(START_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("quire");
    }
    Ok(config)
}

/// The pool and its upkeep task (stopped when the pool is dropped).
pub struct PgPool {
    pool: Pool,
    upkeep: tokio::task::AbortHandle,
    /// Whether this pool's status is the `store_pool_*` gauges (the primary's is; a
    /// replica's is reported as `store_replica_*` by the replica monitor).
    gauges: bool,
}

impl Drop for PgPool {
    fn drop(&mut self) {
        self.upkeep.abort();
        self.pool.close();
    }
}

impl PgPool {
    /// Builds the pool; connections are made on first use. `gauges`: publish its status as
    /// the `store_pool_*` gauges.
    pub fn new(
        config: tokio_postgres::Config,
        options: &PgOptions,
        gauges: bool,
    ) -> StoreResult<Self> {
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A connection that is not closed is usable: every query path either commits
                // or drops its transaction (which rolls it back).
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.acquire_timeout))
            .recycle_timeout(Some(options.acquire_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Config(format!("cannot build the PostgreSQL pool: {e}")))?;
        let upkeep = tokio::spawn(upkeep(
            pool.weak(),
            options.idle_timeout,
            options.max_lifetime,
            gauges,
        ))
        .abort_handle();
        Ok(Self {
            pool,
            upkeep,
            gauges,
        })
    }

    /// A connection for start-up work, which may wait longer than requests do.
    pub async fn get_for_start(&self) -> StoreResult<Object> {
        let timeouts = Timeouts {
            wait: Some(START_TIMEOUT),
            create: Some(START_TIMEOUT),
            recycle: Some(START_TIMEOUT),
        };
        self.pool.timeout_get(&timeouts).await.map_err(pool_error)
    }

    /// The pool itself, for a task that outlives a borrow of this (the replica monitor).
    pub fn shared(&self) -> Pool {
        self.pool.clone()
    }

    /// A connection if one is free or can be made soon; for work that has somewhere else
    /// to go (a replica read that the primary can serve instead).
    pub async fn get_quickly(&self) -> StoreResult<Object> {
        get_quickly(&self.pool).await
    }

    /// A connection, waiting at most the acquire timeout.
    pub async fn get(&self) -> StoreResult<Object> {
        let started = Instant::now();
        let result = self.pool.get().await;
        if self.gauges {
            metrics::histogram!("store_pool_acquire_seconds")
                .record(started.elapsed().as_secs_f64());
            record_status(&self.pool);
        }
        result.map_err(pool_error)
    }
}

/// A connection from `pool`, waiting at most [`QUICK_WAIT`] for a free one and
/// [`QUICK_CONNECT`] for a new one.
pub async fn get_quickly(pool: &Pool) -> StoreResult<Object> {
    let timeouts = Timeouts {
        wait: Some(QUICK_WAIT),
        create: Some(QUICK_CONNECT),
        recycle: Some(QUICK_CONNECT),
    };
    pool.timeout_get(&timeouts).await.map_err(pool_error)
}

/// Publishes the pool's gauges.
fn record_status(pool: &Pool) {
    let status = pool.status();
    let idle = status.available;
    let in_use = status.size.saturating_sub(idle);
    metrics::gauge!("store_pool_connections", "state" => "in_use").set(in_use as f64);
    metrics::gauge!("store_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("store_pool_waiting").set(status.waiting as f64);
}

/// Every second: close idle connections past the idle timeout or the maximum lifetime, and
/// refresh the gauges. Ends when the pool is gone.
async fn upkeep(
    pool: deadpool_postgres::WeakPool,
    idle: Duration,
    lifetime: Duration,
    gauges: bool,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        pool.retain(|_, metrics| metrics.last_used() < idle && metrics.age() < lifetime);
        if gauges {
            record_status(&pool);
        }
    }
}

fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Timeout(_) => StoreError::Overloaded,
        PoolError::Backend(e) => StoreError::Unavailable(describe(&e)),
        PoolError::Closed => StoreError::Closed,
        other => StoreError::Database(other.to_string()),
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        if error.is_closed() {
            return Self::Unavailable(describe(&error));
        }
        match error.code() {
            // The statement ran past --pg-statement-timeout: the database is too slow right
            // now; shed the request instead of reporting a bug.
            Some(&SqlState::QUERY_CANCELED) => Self::Overloaded,
            Some(code)
                if code.code().starts_with("08")
                    || *code == SqlState::ADMIN_SHUTDOWN
                    || *code == SqlState::CRASH_SHUTDOWN
                    || *code == SqlState::CANNOT_CONNECT_NOW =>
            {
                Self::Unavailable(describe(&error))
            }
            _ => Self::Database(describe(&error)),
        }
    }
}

/// The server's message and code when there is one (the driver's `Display` says only "db
/// error"), else the driver's message with its cause ("error connecting to server: Connection
/// refused").
pub fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// The unique constraint a statement violated, if that is why it failed.
pub fn unique_violation(error: &tokio_postgres::Error) -> Option<&str> {
    let db = error.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION)
        .then(|| db.constraint())
        .flatten()
}

/// The URL with its password replaced by `***`, for logs and error messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
    }

    #[test]
    fn connections_carry_the_statement_timeout_and_synchronous_commit() {
        let config = connection_config("postgres://u@localhost/x", &PgOptions::default()).unwrap();
        let options = config.get_options().unwrap();
        assert!(options.contains("statement_timeout=10000"), "{options}");
        assert!(options.contains("synchronous_commit=on"), "{options}");
        assert!(
            connection_config("postgres://u@localhost:notaport/x", &PgOptions::default()).is_err()
        );
    }
}
