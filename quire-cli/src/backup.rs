//! `quire backup --to FILE`: an online, consistent copy of the SQLite database while quire
//! serves, with its token secret and, with `--with-media`, every media blob its rows name,
//! in one archive ending with a manifest (schema version, row counts, the database file's
//! SHA-256, the blobs). `quire restore` (restore.rs) checks all of it before using any.
//!
//! Archive layout (tar, gzip when FILE ends in `.gz`):
//! `database/quire.db`, `token-secret` (if the database has one), `media/<sha256>` (with
//! `--with-media`), then `manifest.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use quire_store::DatabaseUrl;
use quire_store::snapshot::{self, Inspection};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::archive::{ArchiveWriter, file_stream};
use crate::outcome::{Failure, print};
use crate::progress::{Meter, Unit};
use crate::{BackupArgs, Settings};

/// The manifest's `format`.
pub const FORMAT: &str = "quire-backup";
/// The newest archive version this binary writes and reads.
pub const VERSION: u32 = 1;
/// The database's entry in the archive.
pub const DATABASE_ENTRY: &str = "database/quire.db";
/// The token secret's entry.
pub const SECRET_ENTRY: &str = "token-secret";
/// The manifest's entry: the archive's last.
pub const MANIFEST_ENTRY: &str = "manifest.json";

/// What a backup holds, written last into it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// The quire version that took it.
    pub quire: String,
    /// When it was taken (Unix seconds).
    pub created_at: u64,
    pub database: DatabaseFacts,
    /// Whether `token-secret` is in the archive.
    pub token_secret: bool,
    /// The blobs in the archive, when taken `--with-media`.
    pub media: Option<MediaFacts>,
}

/// The database file in a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseFacts {
    pub bytes: u64,
    pub sha256: String,
    pub schema_version: u32,
    /// Rows per base table.
    pub tables: Vec<TableRows>,
}

/// One table's row count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    pub table: String,
    pub rows: u64,
}

/// The media blobs in a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MediaFacts {
    pub blobs: u64,
    pub bytes: u64,
}

pub fn table_rows(inspection: &Inspection) -> Vec<TableRows> {
    inspection
        .tables
        .iter()
        .map(|(table, rows)| TableRows {
            table: table.clone(),
            rows: *rows,
        })
        .collect()
}

/// The SQLite file `--database` names, or why there is none to back up.
pub fn sqlite_path(settings: &Settings, command: &str) -> anyhow::Result<PathBuf> {
    let url = DatabaseUrl::parse(&settings.database)
        .map_err(|e| Failure::Invalid(format!("--database: {e}")))?;
    match url {
        DatabaseUrl::Sqlite(path) => Ok(path),
        DatabaseUrl::Postgres(_) => Err(Failure::Invalid(format!(
            "quire {command} works on SQLite databases; back PostgreSQL up with its own tools: \
             `pg_dump --format=custom --file=quire.dump URL` and restore with \
             `pg_restore --clean --if-exists --dbname=URL quire.dump` (README, Operations)"
        ))
        .into()),
    }
}

/// Takes the backup and prints what it holds.
pub async fn run(settings: &Settings, args: &BackupArgs) -> anyhow::Result<()> {
    let db = sqlite_path(settings, "backup")?;
    if !tokio::fs::try_exists(&db).await.unwrap_or(false) {
        return Err(Failure::Invalid(format!("no database at {}", db.display())).into());
    }
    if tokio::fs::try_exists(&args.to).await.unwrap_or(false) {
        return Err(Failure::Refused(format!(
            "{} exists already; give a new file name",
            args.to.display()
        ))
        .into());
    }
    let started = Instant::now();
    let snapshot_file = Staged(sibling(&args.to, ".snapshot"));
    let _ = std::fs::remove_file(&snapshot_file.0);

    // 1. The snapshot: one instant of the live database.
    let meter = Arc::new(Meter::new("snapshot", 0, Unit::Pages));
    let inspection = {
        let (db, copy, meter) = (db.clone(), snapshot_file.0.clone(), meter.clone());
        tokio::task::spawn_blocking(move || {
            snapshot::snapshot(&db, &copy, &|done, total| {
                meter.set_total(total);
                meter.set(done);
            })?;
            snapshot::inspect(&copy)
        })
        .await?
        .context("cannot take a snapshot of the database")?
    };
    meter.finish();
    let snapshot_secs = started.elapsed().as_secs_f64();

    // 2. The archive.
    let mut archive = ArchiveWriter::create(&args.to).await?;
    let bytes = tokio::fs::metadata(&snapshot_file.0).await?.len();
    let meter = Meter::new("database", bytes, Unit::Bytes);
    let sha256 = archive
        .streamed(
            DATABASE_ENTRY,
            bytes,
            file_stream(&snapshot_file.0).await?,
            &|n| meter.inc(n),
        )
        .await?;
    meter.finish();
    let secret = read_secret(&db).await?;
    if let Some(secret) = &secret {
        archive
            .whole(SECRET_ENTRY, secret.as_bytes().to_vec())
            .await?;
    }
    let media = if args.with_media {
        let url = DatabaseUrl::Sqlite(db.clone());
        let blobs = crate::attach_media(settings, &url).await?;
        Some(
            crate::media_archive::write_blobs(&mut archive, blobs.as_ref(), &inspection.media)
                .await?,
        )
    } else {
        None
    };
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        version: VERSION,
        quire: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: unix_now(),
        database: DatabaseFacts {
            bytes,
            sha256,
            schema_version: inspection.schema_version,
            tables: table_rows(&inspection),
        },
        token_secret: secret.is_some(),
        media,
    };
    archive
        .whole(MANIFEST_ENTRY, serde_json::to_vec_pretty(&manifest)?)
        .await?;
    let archive_bytes = archive.finish().await?;
    let seconds = started.elapsed().as_secs_f64();
    print(
        settings.json,
        &json!({
            "backup": args.to.display().to_string(),
            "archive_bytes": archive_bytes,
            "seconds": seconds,
            "snapshot_seconds": snapshot_secs,
            "manifest": manifest,
        }),
        || {
            let mut out = format!(
                "backup {} written in {seconds:.1} s ({} of archive; snapshot {snapshot_secs:.1} s)\n",
                args.to.display(),
                indicatif::HumanBytes(archive_bytes)
            );
            out += &describe(&manifest);
            out
        },
    );
    Ok(())
}

/// The lines that tell a person what a backup holds.
pub fn describe(manifest: &Manifest) -> String {
    let mut out = format!(
        "database: {} bytes, schema version {}, sha256 {}\n",
        manifest.database.bytes, manifest.database.schema_version, manifest.database.sha256
    );
    for t in &manifest.database.tables {
        out += &format!("  {:<14} {:>10} rows\n", t.table, t.rows);
    }
    out += &format!(
        "token secret: {}\n",
        if manifest.token_secret {
            "included"
        } else {
            "none"
        }
    );
    match &manifest.media {
        Some(m) => out += &format!("media: {} blobs, {} bytes\n", m.blobs, m.bytes),
        None => out += "media: not included (--with-media)\n",
    }
    out
}

/// The signing secret kept beside the database, if any.
pub async fn read_secret(db: &Path) -> anyhow::Result<Option<String>> {
    let path = crate::secret::secret_path(db);
    match tokio::fs::read_to_string(&path).await {
        Ok(secret) => Ok(Some(secret.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// `path` with `suffix` appended to its name.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A working file removed when dropped.
pub struct Staged(pub PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
