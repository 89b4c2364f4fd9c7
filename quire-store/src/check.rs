//! What `quire check` asks the database, without changing it (nothing is migrated): the
//! schema version against this binary's, SQLite's integrity and foreign-key checks, whether
//! the counters kept by triggers and by writes (favorites, tags, the article total) agree with
//! the rows, and which media blobs the rows name.

use std::time::Duration;

use crate::postgres::{PgOptions, connection_config};
use crate::{DatabaseUrl, StoreError, StoreResult};

/// What the database says.
#[derive(Debug, Clone, Default)]
pub struct DatabaseReport {
    /// The applied migration, and the newest this binary has.
    pub schema_version: u32,
    pub newest_schema_version: u32,
    /// Problems found, each a sentence.
    pub problems: Vec<String>,
    /// Every distinct blob a media row names: (sha256, size).
    pub blobs: Vec<(String, u64)>,
}

/// Counters that must equal what the rows say: (what, SQL counting the rows that disagree).
const CONSISTENCY: &[(&str, &str)] = &[
    (
        "articles whose favorites count differs from their favorites",
        "SELECT count(*) FROM articles a
         WHERE a.favorites_count <> (SELECT count(*) FROM favorites f WHERE f.article_id = a.id)",
    ),
    (
        "tags whose article count differs from their articles",
        "SELECT count(*) FROM (
            SELECT tag, count(*) AS n FROM article_tags GROUP BY tag
         ) t FULL OUTER JOIN tag_counts c ON c.tag = t.tag
         WHERE t.n IS NULL OR c.articles IS NULL OR t.n <> c.articles",
    ),
    (
        "article totals that differ from the articles",
        "SELECT count(*) FROM article_total WHERE value <> (SELECT count(*) FROM articles)",
    ),
];

const BLOBS: &str = "SELECT DISTINCT sha256, size FROM media ORDER BY sha256";

/// Checks the database at `url`.
pub async fn check(url: &DatabaseUrl) -> StoreResult<DatabaseReport> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            crate::existing_sqlite(path)?;
            let path = path.clone();
            tokio::task::spawn_blocking(move || check_sqlite(&path))
                .await
                .map_err(|e| StoreError::Database(format!("check task failed: {e}")))?
        }
        DatabaseUrl::Postgres(url) => check_postgres(url).await,
    }
}

fn check_sqlite(path: &std::path::Path) -> StoreResult<DatabaseReport> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mut report = DatabaseReport {
        schema_version: conn.query_row("PRAGMA user_version", [], |r| r.get(0))?,
        newest_schema_version: crate::snapshot::newest_schema_version(),
        ..DatabaseReport::default()
    };
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        report
            .problems
            .push(format!("SQLite's integrity check: {integrity}"));
    }
    let broken: i64 = conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    if broken > 0 {
        report.problems.push(format!(
            "{broken} rows name a parent row that does not exist"
        ));
    }
    if report.schema_version >= 3 {
        // SQLite has no FULL OUTER JOIN before 3.39; the bundled one has it.
        for (what, sql) in CONSISTENCY {
            let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
            if n > 0 {
                report.problems.push(format!("{n} {what}"));
            }
        }
    }
    if report.schema_version >= 2 {
        let mut statement = conn.prepare(BLOBS)?;
        report.blobs = statement
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?
            .collect::<Result<Vec<_>, _>>()?;
    }
    Ok(report)
}

async fn check_postgres(url: &str) -> StoreResult<DatabaseReport> {
    let (client, connection) = connection_config(url, &PgOptions::default())?
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot connect: {e}")))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let result = async {
        let version = match client
            .query_opt("SELECT version FROM schema_version WHERE id = 1", &[])
            .await
        {
            Ok(row) => row.map_or(0, |r| r.get::<_, i32>(0).max(0) as u32),
            // No table yet: nothing was ever migrated.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => 0,
            Err(e) => return Err(e.into()),
        };
        let mut report = DatabaseReport {
            schema_version: version,
            newest_schema_version: crate::postgres::migrate::MIGRATIONS
                .last()
                .map_or(0, |(v, _)| *v),
            ..DatabaseReport::default()
        };
        if version >= 3 {
            for (what, sql) in CONSISTENCY {
                let n: i64 = client.query_one(*sql, &[]).await?.get(0);
                if n > 0 {
                    report.problems.push(format!("{n} {what}"));
                }
            }
        }
        if version >= 2 {
            report.blobs = client
                .query(BLOBS, &[])
                .await?
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64))
                .collect();
        }
        Ok(report)
    }
    .await;
    driver.abort();
    result
}
