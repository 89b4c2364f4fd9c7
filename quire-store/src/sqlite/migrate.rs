//! Embedded schema migrations for SQLite, applied in order on open.
//!
//! The applied version is SQLite's `user_version`. Each migration runs in its own transaction
//! together with the version bump, so a crash mid-migration leaves the previous version intact.
//! Files are numbered `NNNN_name.sql`; the PostgreSQL backend carries the same numbers (a test
//! in `postgres/migrate.rs` checks it).

use rusqlite::Connection;

use crate::StoreError;

/// `(version, sql)` in order; versions are consecutive from 1.
pub const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_initial.sql")),
    (2, include_str!("../../migrations/sqlite/0002_media.sql")),
    (3, include_str!("../../migrations/sqlite/0003_counts.sql")),
    (4, include_str!("../../migrations/sqlite/0004_secrets.sql")),
    (5, include_str!("../../migrations/sqlite/0005_search.sql")),
    (6, include_str!("../../migrations/sqlite/0006_admin.sql")),
];

/// Brings the database to the newest schema. Refuses a database newer than this binary.
pub fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(StoreError::Config(format!(
            "database schema version {current} is newer than this binary's {newest}; upgrade quire"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive() {
        for (i, (version, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, i + 1);
        }
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        let newest = MIGRATIONS.len() as u32;
        assert_eq!(migrate(&mut conn).unwrap(), newest);
        assert_eq!(migrate(&mut conn).unwrap(), newest);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        // Eleven tables, SQLite's own `sqlite_sequence` (admin_changes is AUTOINCREMENT),
        // and the search index with its four shadow tables.
        assert_eq!(tables, 17);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(migrate(&mut conn), Err(StoreError::Config(_))));
    }
}
