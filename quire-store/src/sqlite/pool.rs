//! The threads that own SQLite connections, and group commit.
//!
//! SQLite allows one writer at a time, and every durable commit costs an fsync. So one writer
//! thread owns the only write connection and drains its queue in batches: each job runs inside
//! its own SAVEPOINT (a failing job rolls back alone), and the whole batch commits in one
//! transaction with one fsync. Callers are answered only after that commit, so an acknowledged
//! write is durable. A fixed set of reader threads, each with a read-only connection, serves
//! queries concurrently (WAL mode lets readers run beside the writer).
//!
//! Both queues are bounded: when full, callers get [`StoreError::Overloaded`] at once instead
//! of waiting in an unbounded line. No SQLite call ever runs on an async worker thread.
//!
//! Every job is one `sqlite.read` or `sqlite.write` span (DEBUG level, so free unless logs
//! at that level or trace export want it), from being queued to being answered.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::thread;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;
use tracing::Instrument;

use super::migrate;
use crate::{StoreError, StoreResult};

/// Most write jobs committed in one transaction.
const MAX_BATCH: usize = 256;

/// Sizing of the connection threads and their queues.
#[derive(Debug, Clone, Copy)]
pub struct SqliteOptions {
    /// Reader threads, each with its own connection.
    pub readers: usize,
    /// Jobs that may wait for a reader, and separately for the writer, before callers are
    /// turned away with [`StoreError::Overloaded`].
    pub queue_depth: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            readers: 4,
            queue_depth: 1024,
        }
    }
}

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;
/// Receives the batch's commit outcome and answers the caller.
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
/// Runs inside the batch transaction; says whether it succeeded (to release or roll back its
/// savepoint) and returns how to answer its caller once the batch has committed.
type WriteJob = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

/// Handles to the reader and writer threads; dropping the last handle stops them after they
/// finish the jobs already queued.
pub struct Pool {
    readers: Sender<ReadJob>,
    writer: Sender<WriteJob>,
}

impl Pool {
    /// Opens the database (creating it), migrates it and starts the threads. Blocking.
    pub fn start(path: &Path, options: SqliteOptions) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Config(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let mut write_conn = open_connection(path, false)?;
        let version = migrate::migrate(&mut write_conn)?;
        tracing::debug!(path = %path.display(), version, "sqlite store open");

        let (writer, write_jobs) = crossbeam_channel::bounded::<WriteJob>(options.queue_depth);
        thread::Builder::new()
            .name("quire-sqlite-writer".into())
            .spawn(move || run_writer(write_conn, write_jobs))
            .map_err(|e| StoreError::Database(format!("cannot start writer thread: {e}")))?;

        let (readers, read_jobs) = crossbeam_channel::bounded::<ReadJob>(options.queue_depth);
        for i in 0..options.readers.max(1) {
            let conn = open_connection(path, true)?;
            let jobs = read_jobs.clone();
            thread::Builder::new()
                .name(format!("quire-sqlite-reader-{i}"))
                .spawn(move || {
                    for job in jobs.iter() {
                        job(&conn);
                    }
                })
                .map_err(|e| StoreError::Database(format!("cannot start reader thread: {e}")))?;
        }
        Ok(Self { readers, writer })
    }

    /// Runs a query on a reader thread. If the caller stops waiting before a reader picks the
    /// query up, it is not run at all.
    pub async fn read<T, F>(&self, query: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let queued = Instant::now();
        let job: ReadJob = Box::new(move |conn| {
            if tx.is_closed() {
                // The caller stopped waiting (its client went away): skip the work.
                metrics::counter!("store_reads_cancelled_total").increment(1);
                return;
            }
            let started = Instant::now();
            metrics::histogram!("store_queue_wait_seconds", "queue" => "read")
                .record((started - queued).as_secs_f64());
            let result = run_guarded(query, conn);
            metrics::histogram!("store_query_seconds", "queue" => "read")
                .record(started.elapsed().as_secs_f64());
            let _ = tx.send(result);
        });
        let span = tracing::debug_span!("sqlite.read", db.system = "sqlite");
        self.readers.try_send(job).map_err(queue_error)?;
        metrics::gauge!("store_queue_depth", "queue" => "read").set(self.readers.len() as f64);
        rx.instrument(span).await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a change on the writer thread; answers once it is durably committed.
    ///
    /// The change runs even if the caller stops waiting (a client that disconnects cannot leave
    /// a write half done: it is either wholly committed or wholly rolled back).
    pub async fn write<T, F>(&self, change: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let result = run_guarded(change, conn);
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let answer = match (result, commit) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(e)) => Err(StoreError::Database(e)),
                    (Err(e), _) => Err(e),
                };
                let _ = tx.send(answer);
            });
            (ok, finish)
        });
        let span = tracing::debug_span!("sqlite.write", db.system = "sqlite");
        self.writer.try_send(job).map_err(queue_error)?;
        metrics::gauge!("store_queue_depth", "queue" => "write").set(self.writer.len() as f64);
        rx.instrument(span).await.map_err(|_| StoreError::Closed)?
    }
}

fn queue_error<T>(error: TrySendError<T>) -> StoreError {
    match error {
        TrySendError::Full(_) => StoreError::Overloaded,
        TrySendError::Disconnected(_) => StoreError::Closed,
    }
}

/// Runs a job, turning a panic into an error so one bad query cannot kill a connection thread.
fn run_guarded<T>(
    job: impl FnOnce(&Connection) -> StoreResult<T>,
    conn: &Connection,
) -> StoreResult<T> {
    catch_unwind(AssertUnwindSafe(|| job(conn))).unwrap_or_else(|_| {
        tracing::error!("a store query panicked");
        Err(StoreError::Database("query panicked".into()))
    })
}

fn open_connection(path: &Path, read_only: bool) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    // WAL: readers never block the writer nor each other. synchronous=FULL: every commit
    // fsyncs the WAL, so an acknowledged write survives power loss, not just a crash.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "busy_timeout", 5_000)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -16_000)?;
    conn.set_prepared_statement_cache_capacity(64);
    if read_only {
        conn.pragma_update(None, "query_only", true)?;
    }
    Ok(conn)
}

/// The writer thread: takes what is queued, runs it as one transaction, answers everyone.
fn run_writer(conn: Connection, jobs: Receiver<WriteJob>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("store_write_batch_size").record(batch.len() as f64);
        let started = Instant::now();
        commit_batch(&conn, batch);
        metrics::histogram!("store_query_seconds", "queue" => "write")
            .record(started.elapsed().as_secs_f64());
    }
    tracing::debug!("sqlite writer stopped");
}

fn commit_batch(conn: &Connection, batch: Vec<WriteJob>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let message = e.to_string();
        tracing::error!(error = %message, "cannot begin write transaction");
        // Dropping the jobs drops their answer channels: each caller sees `Closed`.
        drop(batch);
        return;
    }
    let mut finishes = Vec::with_capacity(batch.len());
    let mut failure: Option<String> = None;
    for job in batch {
        if failure.is_some() {
            // Dropping the job drops its answer channel: the caller sees `Closed`. Only reached
            // when SQLite itself fails mid-batch.
            continue;
        }
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            failure = Some(e.to_string());
            continue;
        }
        let (ok, finish) = job(conn);
        let end = if ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = conn.execute_batch(end) {
            failure = Some(e.to_string());
        }
        finishes.push(finish);
    }
    let outcome = match failure {
        Some(e) => Err(e),
        None => conn.execute_batch("COMMIT").map_err(|e| e.to_string()),
    };
    if let Err(e) = &outcome {
        tracing::error!(error = %e, "write batch failed; rolled back");
        let _ = conn.execute_batch("ROLLBACK");
    }
    for finish in finishes {
        finish(outcome.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn abandoned_reads_are_skipped_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Arc::new(
            Pool::start(
                &dir.path().join("t.db"),
                SqliteOptions {
                    readers: 1,
                    queue_depth: 8,
                },
            )
            .unwrap(),
        );
        // Occupy the only reader until released.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.read(move |_| {
                    gate.recv().ok();
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // Queue a read, then abandon it (as a dropped request future does).
        let ran = Arc::new(AtomicBool::new(false));
        let queued = {
            let (pool, ran) = (pool.clone(), ran.clone());
            tokio::spawn(async move {
                pool.read(move |_| {
                    ran.store(true, Ordering::SeqCst);
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        queued.abort();
        let _ = queued.await;
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // A later read runs after the abandoned one would have.
        pool.read(|_| Ok(())).await.unwrap();
        assert!(!ran.load(Ordering::SeqCst), "the abandoned read still ran");
    }
}
