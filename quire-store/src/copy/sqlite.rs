//! The SQLite side of `quire copy`: one connection of its own, driven on the blocking pool one
//! call at a time (never on an async worker thread). As a target it writes everything in one
//! `BEGIN IMMEDIATE` transaction with foreign keys enforced.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, params_from_iter};

use super::{Checksum, Kind, Row, Source, Table, Target, Value};
use crate::sqlite::migrate::migrate;
use crate::{StoreError, StoreResult};

pub(crate) struct SqliteSide {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// A secret to write beside the target database once the copy has committed, and
    /// whether it replaces one already there.
    pending_secret: Option<(String, bool)>,
}

impl SqliteSide {
    /// Opens (a target: creating) the database at `path` and brings it to this binary's schema.
    pub(crate) async fn open(path: &Path) -> StoreResult<Self> {
        let path = path.to_owned();
        let opened = path.clone();
        let conn = blocking(move || {
            let mut conn = Connection::open_with_flags(
                &opened,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", true)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            migrate(&mut conn)?;
            Ok(conn)
        })
        .await?;
        Ok(Self {
            path,
            conn: Arc::new(Mutex::new(conn)),
            pending_secret: None,
        })
    }

    /// Runs `work` with the connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = self.conn.clone();
        blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| StoreError::Database("copy connection poisoned".into()))?;
            work(&mut conn)
        })
        .await
    }

    fn secret_file(&self) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(".jwt-secret");
        name.into()
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Database(format!("copy task failed: {e}")))?
}

fn to_sql(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Int(n) => SqlValue::Integer(*n),
        Value::Text(s) => SqlValue::Text(s.clone()),
    }
}

fn read_row(table: &Table, row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            Ok(match (column.kind, column.nullable) {
                (Kind::Int, false) => Value::Int(row.get(i)?),
                (Kind::Text, false) => Value::Text(row.get(i)?),
                (Kind::Int, true) => row
                    .get::<_, Option<i64>>(i)?
                    .map_or(Value::Null, Value::Int),
                (Kind::Text, true) => row
                    .get::<_, Option<String>>(i)?
                    .map_or(Value::Null, Value::Text),
            })
        })
        .collect()
}

#[async_trait]
impl Source for SqliteSide {
    async fn snapshot(&mut self) -> StoreResult<()> {
        // A deferred transaction takes its snapshot at its first read; WAL lets the server
        // keep writing meanwhile.
        self.with(|conn| {
            conn.execute_batch("BEGIN DEFERRED")?;
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    async fn count(&mut self, table: &'static Table) -> StoreResult<u64> {
        self.with(move |conn| {
            let n: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {}", table.name), [], |r| {
                    r.get(0)
                })?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn page(
        &mut self,
        table: &'static Table,
        after: Option<Row>,
        limit: usize,
    ) -> StoreResult<Vec<Row>> {
        self.with(move |conn| {
            let keys = table.key_list();
            let (filter, mut params) = match &after {
                Some(key) => {
                    let marks = (1..=key.len())
                        .map(|i| format!("?{i}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    (
                        format!("WHERE ({keys}) > ({marks})"),
                        key.iter().map(to_sql).collect::<Vec<_>>(),
                    )
                }
                None => (String::new(), Vec::new()),
            };
            params.push(SqlValue::Integer(limit as i64));
            let sql = format!(
                "SELECT {} FROM {} {filter} ORDER BY {keys} LIMIT ?{}",
                table.column_list(),
                table.name,
                params.len()
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement
                .query_map(params_from_iter(params.iter()), |row| read_row(table, row))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn token_secret(&mut self) -> StoreResult<Option<String>> {
        match std::fs::read_to_string(self.secret_file()) {
            Ok(secret) => Ok(Some(secret.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Database(format!(
                "cannot read {}: {e}",
                self.secret_file().display()
            ))),
        }
    }
}

#[async_trait]
impl Target for SqliteSide {
    async fn begin(&mut self) -> StoreResult<()> {
        self.with(|conn| Ok(conn.execute_batch("BEGIN IMMEDIATE")?))
            .await
    }

    async fn holds_rows(&mut self, table: &'static Table) -> StoreResult<bool> {
        self.with(move |conn| {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", table.name);
            Ok(conn.query_row(&sql, [], |r| r.get(0))?)
        })
        .await
    }

    async fn empty(&mut self, table: &'static Table) -> StoreResult<()> {
        self.with(move |conn| {
            conn.execute(&format!("DELETE FROM {}", table.name), [])?;
            Ok(())
        })
        .await
    }

    async fn insert(
        &mut self,
        table: &'static Table,
        rows: Vec<Row>,
        skip_existing: bool,
    ) -> StoreResult<u64> {
        self.with(move |conn| {
            let marks = (1..=table.columns.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let conflict = table.on_conflict(skip_existing);
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({marks}){conflict}",
                table.name,
                table.column_list()
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let mut inserted = 0;
            for row in &rows {
                inserted += statement.execute(params_from_iter(row.iter().map(to_sql)))? as u64;
            }
            Ok(inserted)
        })
        .await
    }

    async fn checksum(&mut self, table: &'static Table) -> StoreResult<Checksum> {
        self.with(move |conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {} FROM {}",
                table.column_list(),
                table.name
            ))?;
            let mut rows = statement.query([])?;
            let mut sum = Checksum::default();
            while let Some(row) = rows.next()? {
                sum.add(&read_row(table, row)?);
            }
            Ok(sum)
        })
        .await
    }

    async fn finish(&mut self, token_secret: Option<String>, replace: bool) -> StoreResult<()> {
        // SQLite gives new rows ids past the largest one (no AUTOINCREMENT): nothing to move.
        self.pending_secret = token_secret.map(|secret| (secret, replace));
        Ok(())
    }

    async fn commit(&mut self) -> StoreResult<()> {
        self.with(|conn| Ok(conn.execute_batch("COMMIT")?)).await?;
        if let Some((secret, replace)) = self.pending_secret.take() {
            write_secret_file(&self.secret_file(), &secret, replace)?;
        }
        Ok(())
    }

    async fn rollback(&mut self) -> StoreResult<()> {
        self.with(|conn| Ok(conn.execute_batch("ROLLBACK")?)).await
    }
}

/// Writes the signing secret beside the target database (mode 0600, written whole under a
/// temporary name, then renamed). An existing target's secret is its users' sessions: it is
/// kept, unless the target is being replaced (`--replace`), which makes it the source's copy.
fn write_secret_file(path: &Path, secret: &str, replace: bool) -> StoreResult<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if path.exists() && !replace {
        return Ok(());
    }
    let failed =
        |e: std::io::Error| StoreError::Database(format!("cannot write {}: {e}", path.display()));
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".copying");
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(failed)?;
    file.write_all(secret.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

/// A statement of [`crate::admin::sql`] with SQLite's numbered placeholders.
fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

fn account_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<crate::admin::Account> {
    Ok(crate::admin::Account {
        id: row.get(0)?,
        username: row.get(1)?,
        email: row.get(2)?,
        disabled: row.get(3)?,
        created_at: row.get(4)?,
        articles: row.get::<_, i64>(5)?.max(0) as u64,
        comments: row.get::<_, i64>(6)?.max(0) as u64,
    })
}

impl SqliteSide {
    /// Runs `work` in one `BEGIN IMMEDIATE` transaction, recording `changes`.
    async fn change<T: Send + 'static>(
        &self,
        now: i64,
        changes: &str,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let changes = changes.to_owned();
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let done = work(&tx)?;
            tx.execute(
                &numbered(crate::admin::sql::RECORD),
                rusqlite::params![changes, now],
            )?;
            tx.commit()?;
            Ok(done)
        })
        .await
    }
}

#[async_trait]
impl crate::admin::Admin for SqliteSide {
    async fn accounts(&mut self) -> StoreResult<Vec<crate::admin::Account>> {
        self.with(|conn| {
            let sql = format!("{} ORDER BY u.id", crate::admin::sql::ACCOUNTS);
            let mut statement = conn.prepare(&sql)?;
            let rows = statement
                .query_map([], account_from)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn account(&mut self, name: &str) -> StoreResult<Option<crate::admin::Account>> {
        use rusqlite::OptionalExtension as _;
        let name = name.to_owned();
        self.with(move |conn| {
            let sql = format!(
                "{} WHERE u.username = ?1 OR lower(u.email) = lower(?1)",
                crate::admin::sql::ACCOUNTS
            );
            Ok(conn.query_row(&sql, [name], account_from).optional()?)
        })
        .await
    }

    async fn create(
        &mut self,
        username: &str,
        email: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<i64> {
        let values = (
            username.to_owned(),
            email.to_owned(),
            password_hash.to_owned(),
        );
        self.with(move |conn| {
            let (username, email, hash) = values;
            conn.query_row(
                &numbered(crate::admin::sql::CREATE),
                rusqlite::params![username, email, hash, now],
                |r| r.get(0),
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::Conflict(vec!["username or email"])
                }
                other => other.into(),
            })
        })
        .await
    }

    async fn set_password(
        &mut self,
        id: i64,
        password_hash: &str,
        now: i64,
        changes: &str,
    ) -> StoreResult<()> {
        let hash = password_hash.to_owned();
        self.change(now, changes, move |tx| {
            tx.execute(
                &numbered(crate::admin::sql::SET_PASSWORD),
                rusqlite::params![id, hash, now],
            )?;
            Ok(())
        })
        .await
    }

    async fn set_disabled(
        &mut self,
        id: i64,
        disabled_at: Option<i64>,
        now: i64,
        changes: &str,
    ) -> StoreResult<()> {
        self.change(now, changes, move |tx| {
            tx.execute(
                &numbered(crate::admin::sql::SET_DISABLED),
                rusqlite::params![id, disabled_at, now],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete(
        &mut self,
        id: i64,
        heir: Option<i64>,
        now: i64,
        changes: &str,
    ) -> StoreResult<crate::admin::Removed> {
        use crate::admin::sql;
        self.change(now, changes, move |tx| {
            let count = |sql: &str| -> StoreResult<u64> {
                Ok(tx
                    .query_row(&numbered(sql), [id], |r| r.get::<_, i64>(0))?
                    .max(0) as u64)
            };
            let mut removed = crate::admin::Removed {
                articles: count(sql::COUNT_ARTICLES)?,
                comments: count(sql::COUNT_COMMENTS)?,
                media: count(sql::COUNT_MEDIA)?,
            };
            if let Some(heir) = heir {
                for statement in sql::REASSIGN {
                    tx.execute(&numbered(statement), [id, heir])?;
                }
                removed = crate::admin::Removed {
                    articles: 0,
                    comments: 0,
                    media: 0,
                };
            }
            tx.execute(&numbered(sql::UNCOUNT_FAVORITES), [id])?;
            tx.execute(&numbered(sql::DELETE), [id])?;
            Ok(removed)
        })
        .await
    }

    async fn date_article(&mut self, id: i64, at: i64) -> StoreResult<()> {
        self.with(move |conn| {
            conn.execute(
                &numbered(crate::admin::sql::DATE_ARTICLE),
                rusqlite::params![id, at],
            )?;
            Ok(())
        })
        .await
    }

    async fn record(&mut self, now: i64, changes: &str) -> StoreResult<()> {
        self.change(now, changes, |_| Ok(())).await
    }
}
