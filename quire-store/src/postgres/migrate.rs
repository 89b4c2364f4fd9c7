//! Embedded schema migrations for PostgreSQL, with the same numbers as SQLite's
//! (`migrations/postgres/NNNN_name.sql` next to `migrations/sqlite/NNNN_name.sql`).
//!
//! The applied version is the one row of `schema_version`. Everything runs in one transaction
//! that first takes a transaction-level advisory lock, so instances starting at once on an
//! empty database migrate it once: the others wait for the lock, then find nothing to do. A
//! failure rolls back every step (PostgreSQL's DDL is transactional), never half a migration.
//! A database newer than this binary is refused. This file runs only migrations; it must not
//! hold the SQL of the store's queries.

use deadpool_postgres::Object;

use crate::StoreError;

/// `(version, sql)` in order; versions are consecutive from 1 and match
/// [`crate::sqlite::MIGRATIONS`]'s.
pub const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (2, include_str!("../../migrations/postgres/0002_media.sql")),
    (3, include_str!("../../migrations/postgres/0003_counts.sql")),
    (
        4,
        include_str!("../../migrations/postgres/0004_secrets.sql"),
    ),
    (5, include_str!("../../migrations/postgres/0005_search.sql")),
    (6, include_str!("../../migrations/postgres/0006_admin.sql")),
];

/// Key of the advisory lock held while migrating ("quire" in ASCII).
const MIGRATION_LOCK: i64 = 0x71_75_69_72_65;

/// Brings the database to the newest schema; returns the version it is at.
pub async fn migrate(client: &mut Object) -> Result<u32, StoreError> {
    let tx = client.transaction().await?;
    // Migrations may take longer than a request's statement timeout.
    tx.batch_execute("SET LOCAL statement_timeout = 0").await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             id      integer PRIMARY KEY CHECK (id = 1),
             version integer NOT NULL
         )",
    )
    .await?;
    let current: i32 = tx
        .query_opt("SELECT version FROM schema_version WHERE id = 1", &[])
        .await?
        .map_or(0, |row| row.get(0));
    let current = u32::try_from(current).unwrap_or(0);
    let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(StoreError::Config(format!(
            "database schema version {current} is newer than this binary's {newest}; upgrade quire"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await?;
        tracing::info!(version, "applied schema migration");
    }
    if current < newest {
        tx.execute(
            "INSERT INTO schema_version (id, version) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
            &[&(newest as i32)],
        )
        .await?;
    }
    tx.commit().await?;
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

    /// Both dialects carry the same numbered migrations under the same names.
    #[test]
    fn both_dialects_have_the_same_versions() {
        let names = |dir: &str| {
            let mut names: Vec<String> =
                std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
            names.sort();
            names
        };
        let sqlite = names("migrations/sqlite");
        let postgres = names("migrations/postgres");
        assert_eq!(sqlite, postgres);
        assert_eq!(sqlite.len(), MIGRATIONS.len());
        let versions = |m: &[(u32, &str)]| m.iter().map(|(v, _)| *v).collect::<Vec<_>>();
        assert_eq!(versions(MIGRATIONS), versions(crate::sqlite::MIGRATIONS));
    }
}
