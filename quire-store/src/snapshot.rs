//! Online snapshots of a SQLite database (what `quire backup` takes while quire serves) and
//! the facts a backup's manifest records and a restore checks: schema version, row counts,
//! integrity and the media blobs the rows name.
//!
//! A snapshot is SQLite's backup API run inside one read transaction on the source: in WAL
//! mode the server keeps writing meanwhile, and every page copied belongs to the same instant
//! (the transaction's snapshot), so the copy is consistent however long it takes. Pages are
//! copied a step at a time so progress can be reported. Everything here blocks: callers run
//! it on the blocking pool.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::copy::TABLES;
use crate::{StoreError, StoreResult};

/// Pages copied per backup step (4 MiB of 4 KiB pages).
const PAGES_PER_STEP: i32 = 1024;

/// What a snapshot or a database file holds, as a manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// SQLite's `user_version`: the last migration applied.
    pub schema_version: u32,
    /// Rows of every base table, in [`TABLES`] order.
    pub tables: Vec<(String, u64)>,
    /// Every distinct media blob the rows name: (sha256, size), sorted.
    pub media: Vec<(String, u64)>,
}

/// The schema version this binary's SQLite migrations end at.
pub fn newest_schema_version() -> u32 {
    crate::sqlite::migrate::MIGRATIONS
        .last()
        .map_or(0, |(v, _)| *v)
}

/// Copies the database at `source` into a new file `target` (which must not exist) while
/// others may write to it; `progress(done, total)` after each step, in pages.
pub fn snapshot(source: &Path, target: &Path, progress: &dyn Fn(u64, u64)) -> StoreResult<()> {
    if target.exists() {
        return Err(StoreError::Config(format!(
            "{} already exists",
            target.display()
        )));
    }
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    from.busy_timeout(Duration::from_secs(10))?;
    // The read transaction every step copies from: one instant for the whole copy.
    from.execute_batch("BEGIN DEFERRED")?;
    from.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    let mut to = Connection::open(target)?;
    {
        let backup = rusqlite::backup::Backup::new(&from, &mut to)?;
        loop {
            let step = backup.step(PAGES_PER_STEP)?;
            let p = backup.progress();
            let total = p.pagecount.max(0) as u64;
            progress(total - p.remaining.max(0) as u64, total);
            match step {
                rusqlite::backup::StepResult::Done => break,
                // Busy or locked: the target is ours alone and the source is read in WAL
                // mode, so this is a short wait on a checkpoint. This runs on the blocking
                // pool (see the module documentation), where waiting is allowed.
                rusqlite::backup::StepResult::More => {}
                _ => {
                    #[allow(clippy::disallowed_methods)]
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    from.execute_batch("COMMIT")?;
    // The copy is a database of its own: one file, no WAL beside it, synced.
    to.pragma_update(None, "journal_mode", "DELETE")?;
    drop(to);
    std::fs::File::open(target)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::Database(format!("cannot sync {}: {e}", target.display())))?;
    Ok(())
}

/// Reads what the database file at `path` holds, after checking its integrity. Opened read
/// only: nothing is migrated or changed.
pub fn inspect(path: &Path) -> StoreResult<Inspection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        return Err(StoreError::Database(format!(
            "{} fails SQLite's integrity check: {integrity}",
            path.display()
        )));
    }
    let schema_version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut tables = Vec::new();
    for table in TABLES {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", table.name), [], |r| {
            r.get(0)
        })?;
        tables.push((table.name.to_owned(), n.max(0) as u64));
    }
    let mut statement = conn.prepare("SELECT DISTINCT sha256, size FROM media ORDER BY sha256")?;
    let media = statement
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Inspection {
        schema_version,
        tables,
        media,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_taken_while_another_connection_writes_is_one_instant() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("live.db");
        let mut conn = Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        crate::sqlite::migrate::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, email, password_hash, created_at, updated_at)
             VALUES (1, 'a', 'a@x.org', 'h', 0, 0)",
        )
        .unwrap();
        // Enough articles for several backup steps.
        let tx = conn.transaction().unwrap();
        for i in 0..10_000 {
            tx.execute(
                "INSERT INTO articles (slug, author_id, title, description, body, favorites_count, created_at, updated_at)
                 VALUES (?1, 1, 't', 'd', ?2, 0, 0, 0)",
                rusqlite::params![format!("s{i}"), "b".repeat(2000)],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let target = dir.path().join("copy.db");
        let writes = std::cell::Cell::new(0);
        snapshot(&db, &target, &|_, _| {
            // Another connection commits between the steps: none of it may show.
            conn.execute(
                "INSERT INTO articles (slug, author_id, title, description, body, favorites_count, created_at, updated_at)
                 VALUES (?1, 1, 't', 'd', 'b', 0, 0, 0)",
                rusqlite::params![format!("late{}", writes.get())],
            )
            .unwrap();
            writes.set(writes.get() + 1);
        })
        .unwrap();
        assert!(writes.get() > 3, "the copy took several steps");
        let seen = inspect(&target).unwrap();
        assert_eq!(seen.schema_version, newest_schema_version());
        assert_eq!(seen.tables[2], ("articles".to_owned(), 10_000));
        assert!(!dir.path().join("copy.db-wal").exists());
    }
}
