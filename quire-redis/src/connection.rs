//! The connection to Redis every part shares: one multiplexed connection, remade on the next
//! use after an error (so quire reconnects by itself), with bounded connect and response
//! times; and dedicated connections for blocking stream reads. Every round trip is timed and
//! counted (`redis_command_seconds`, `redis_errors_total` by command), and each shared round
//! trip is a `redis` span, a child of the request it serves when there is one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, FromRedisValue, RedisResult};
use tracing::Instrument;

use crate::stream::{Entry, StreamId, xread_entries};

/// Longest a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest one command may take on the shared connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A Redis server and the key prefix under which this quire deployment keeps its keys.
pub struct Redis {
    client: Client,
    shared: Mutex<Option<MultiplexedConnection>>,
    prefix: String,
    /// The URL without its password, for logs.
    pub name: String,
}

impl Redis {
    /// Connects once (so a wrong URL or an unreachable server stops the start with one
    /// clear error); later errors are retried by reconnecting on the next use.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, String> {
        let client = Client::open(url).map_err(|e| format!("bad Redis URL: {e}"))?;
        let name = redact(url);
        let redis = Self {
            client,
            shared: Mutex::new(None),
            prefix: prefix.to_owned(),
            name,
        };
        let mut connection = redis
            .connection()
            .await
            .map_err(|e| format!("cannot connect to Redis at {}: {e}", redis.name))?;
        redis::cmd("PING")
            .query_async::<()>(&mut connection)
            .await
            .map_err(|e| format!("Redis at {} does not answer: {e}", redis.name))?;
        Ok(redis)
    }

    /// `prefix` + `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The shared connection, made if there is none.
    async fn connection(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(connection) = self.shared.lock().unwrap().clone() {
            return Ok(connection);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *self.shared.lock().unwrap() = Some(connection.clone());
        Ok(connection)
    }

    /// A connection of its own, for a blocking read that waits up to `block`.
    pub(crate) async fn dedicated(&self, block: Duration) -> RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(block + RESPONSE_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Runs `command` on the shared connection; `what` names it in metrics.
    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        command: &redis::Cmd,
        what: &'static str,
    ) -> RedisResult<T> {
        self.on_shared(what, |mut connection| async move {
            command.query_async(&mut connection).await
        })
        .await
    }

    /// Sends `pipeline` (its commands in order, one round trip) on the shared connection.
    pub(crate) async fn pipeline(
        &self,
        pipeline: &redis::Pipeline,
        what: &'static str,
    ) -> RedisResult<()> {
        self.on_shared(what, |mut connection| async move {
            pipeline.query_async(&mut connection).await
        })
        .await
    }

    /// Runs `script` with `keys` and `args` on the shared connection.
    pub(crate) async fn script<T: FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[&[u8]],
        what: &'static str,
    ) -> RedisResult<T> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        self.on_shared(what, |mut connection| async move {
            invocation.invoke_async(&mut connection).await
        })
        .await
    }

    /// Runs one round trip on the shared connection, timed and counted under `what`, in a
    /// `redis` span (DEBUG level) naming it; after an error the connection is made again on
    /// the next use.
    async fn on_shared<T, Fut>(
        &self,
        what: &'static str,
        run: impl FnOnce(MultiplexedConnection) -> Fut,
    ) -> RedisResult<T>
    where
        Fut: std::future::Future<Output = RedisResult<T>>,
    {
        let started = Instant::now();
        let span = tracing::debug_span!("redis", db.system = "redis", db.operation = what);
        let result = async {
            match self.connection().await {
                Ok(connection) => run(connection).await,
                Err(e) => Err(e),
            }
        }
        .instrument(span)
        .await;
        self.record(what, started, result.is_ok());
        if result.is_err() {
            self.shared.lock().unwrap().take();
        }
        result
    }

    /// Up to `count` entries of `stream` after `after`, waiting up to `block` for one, on a
    /// dedicated connection.
    pub(crate) async fn read_stream(
        &self,
        connection: &mut MultiplexedConnection,
        stream: &str,
        after: StreamId,
        count: usize,
        block: Duration,
    ) -> RedisResult<Vec<Entry>> {
        let started = Instant::now();
        let reply: RedisResult<redis::Value> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(stream)
            .arg(after.to_string())
            .query_async(connection)
            .await;
        if reply.is_err() {
            self.record("xread", started, false);
        }
        reply.map(|r| xread_entries(&r))
    }

    pub(crate) fn record(&self, what: &'static str, started: Instant, ok: bool) {
        metrics::histogram!("redis_command_seconds", "command" => what)
            .record(started.elapsed().as_secs_f64());
        if !ok {
            metrics::counter!("redis_errors_total", "command" => what).increment(1);
        }
    }

    /// Whether Redis answers now (readiness).
    pub async fn ping(&self) -> bool {
        self.query::<()>(&redis::cmd("PING"), "ping").await.is_ok()
    }
}

/// The URL with its password replaced by `***`.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
        _ => url.to_owned(),
    }
}
