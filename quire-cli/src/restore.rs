//! `quire restore --from FILE`: puts a `quire backup` archive back, into an empty database
//! (a non-empty one only with `--replace`), after checking everything the manifest says: the
//! database file's SHA-256, SQLite's integrity check, every table's row count, a schema this
//! binary knows, and with `--with-media` every blob's hash.
//!
//! The database is staged beside the target and only then renamed over it, so a failed
//! restore leaves the target as it was. Into PostgreSQL, the staged file is copied with
//! `quire copy`'s machinery (one transaction, checksummed). quire must not be serving on the
//! target while it is restored.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use quire_store::DatabaseUrl;
use quire_store::copy::{CopyOptions, TABLES};
use quire_store::snapshot;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use crate::archive::{self, Entry, chunk_stream, hex};
use crate::backup::{
    self, DATABASE_ENTRY, FORMAT, MANIFEST_ENTRY, Manifest, SECRET_ENTRY, Staged, VERSION, sibling,
    table_rows,
};
use crate::media_archive::{blob_name, read_blob};
use crate::outcome::{Failure, print};
use crate::progress::{Meter, Unit};
use crate::{RestoreArgs, Settings};

/// What reading the archive found.
struct Read {
    manifest: Manifest,
    database_sha256: String,
    secret: Option<String>,
    blobs: u64,
}

pub async fn run(settings: &Settings, args: &RestoreArgs) -> anyhow::Result<()> {
    let url = DatabaseUrl::parse(&settings.database)
        .map_err(|e| Failure::Invalid(format!("--database: {e}")))?;
    let started = Instant::now();
    // Refuse early, before reading a large archive, when the target holds data.
    if !args.replace && holds_rows(&url).await? {
        return Err(Failure::Refused(format!(
            "the database {url} is not empty; restore into an empty database, or give \
             --replace to overwrite it (stop quire first)"
        ))
        .into());
    }
    let staged_path = match &url {
        DatabaseUrl::Sqlite(path) => sibling(path, ".restoring"),
        DatabaseUrl::Postgres(_) => {
            std::env::temp_dir().join(format!("quire-restore-{}.db", std::process::id()))
        }
    };
    let staged = Staged(staged_path);
    let staged_secret = Staged(crate::secret::secret_path(&staged.0));
    let _ = std::fs::remove_file(&staged.0);

    let blobs = if args.with_media {
        Some(crate::attach_media(settings, &url).await?)
    } else {
        None
    };
    let read = read_archive(&args.from, &staged.0, blobs.as_deref()).await?;
    let manifest = &read.manifest;

    // Everything the manifest promises, checked before the target is touched.
    if read.database_sha256 != manifest.database.sha256 {
        bail!(
            "the database in the backup is damaged: sha256 {} where the manifest says {}",
            read.database_sha256,
            manifest.database.sha256
        );
    }
    if manifest.database.schema_version > snapshot::newest_schema_version() {
        return Err(Failure::Refused(format!(
            "the backup's schema version {} is newer than this quire's ({}): restore it with quire {} or newer",
            manifest.database.schema_version,
            snapshot::newest_schema_version(),
            manifest.quire
        ))
        .into());
    }
    let inspection = {
        let path = staged.0.clone();
        tokio::task::spawn_blocking(move || snapshot::inspect(&path)).await??
    };
    if table_rows(&inspection) != manifest.database.tables {
        bail!("the restored database's row counts differ from the backup's manifest");
    }
    if manifest.token_secret != read.secret.is_some() {
        bail!("the backup's manifest and its token-secret entry disagree");
    }
    if args.with_media {
        match &manifest.media {
            None => {
                return Err(Failure::Invalid(
                    "this backup holds no media (it was taken without --with-media)".into(),
                )
                .into());
            }
            Some(media) if media.blobs != read.blobs => bail!(
                "the backup holds {} media blobs where its manifest says {}",
                read.blobs,
                media.blobs
            ),
            Some(_) => {}
        }
    }
    if let Some(secret) = &read.secret {
        write_private(&staged_secret.0, secret).await?;
    }

    match &url {
        DatabaseUrl::Sqlite(target) => put_in_place(&staged.0, target, read.secret.is_some())?,
        DatabaseUrl::Postgres(_) => {
            let meter = TableMeter(Meter::new("copy", 0, Unit::Rows));
            quire_store::copy::copy(
                &DatabaseUrl::Sqlite(staged.0.clone()),
                &url,
                CopyOptions {
                    replace: args.replace,
                    batch: 1000,
                },
                &meter,
            )
            .await
            .context("cannot copy the backup into PostgreSQL; it was left as it was")?;
            meter.0.finish();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    print(
        settings.json,
        &json!({
            "restored": url.to_string(),
            "from": args.from.display().to_string(),
            "seconds": seconds,
            "media_blobs": args.with_media.then_some(read.blobs),
            "manifest": manifest,
        }),
        || {
            format!(
                "restored {} into {url} in {seconds:.1} s (checked: sha256, integrity, row counts{})\n{}",
                args.from.display(),
                if args.with_media {
                    ", media hashes"
                } else {
                    ""
                },
                backup::describe(manifest)
            )
        },
    );
    Ok(())
}

/// Whether the database at `url` exists and holds any row.
async fn holds_rows(url: &DatabaseUrl) -> anyhow::Result<bool> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            if !tokio::fs::try_exists(path).await.unwrap_or(false) {
                return Ok(false);
            }
            let path = path.clone();
            let seen = tokio::task::spawn_blocking(move || snapshot::inspect(&path)).await??;
            Ok(seen.tables.iter().any(|(_, rows)| *rows > 0))
        }
        DatabaseUrl::Postgres(_) => {
            let mut target = quire_store::copy::open_target(url).await?;
            for table in TABLES {
                if target.holds_rows(table).await? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

/// Reads the whole archive: the database into `staged`, blobs into `blobs` (skipped when
/// `None`), the secret and the manifest into memory.
async fn read_archive(
    from: &Path,
    staged: &Path,
    blobs: Option<&dyn quire_media::BlobStore>,
) -> anyhow::Result<Read> {
    let mut entries = archive::read(from).await?;
    let (mut manifest, mut database_sha256, mut secret, mut blob_count) = (None, None, None, 0);
    while let Some(entry) = entries.recv().await {
        let entry = entry.with_context(|| format!("{} is damaged", from.display()))?;
        if manifest.is_some() {
            bail!("{} has entries after its manifest", from.display());
        }
        match entry {
            Entry::Whole { path, bytes } if path == MANIFEST_ENTRY => {
                let parsed: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| Failure::Invalid(format!("not a quire backup: {e}")))?;
                if parsed.format != FORMAT || parsed.version > VERSION {
                    return Err(Failure::Invalid(format!(
                        "{} is a {} archive of version {}; this quire restores {FORMAT} up to version {VERSION}",
                        from.display(),
                        parsed.format,
                        parsed.version
                    ))
                    .into());
                }
                manifest = Some(parsed);
            }
            Entry::Whole { path, bytes } if path == SECRET_ENTRY => {
                secret = Some(String::from_utf8(bytes).context("the token secret is not text")?);
            }
            entry if entry.path() == DATABASE_ENTRY => {
                database_sha256 = Some(write_database(entry, staged).await?);
            }
            Entry::Streamed { path, chunks, .. } if blob_name(&path).is_some() => {
                blob_count += 1;
                if let (Some(store), Some(name)) = (blobs, blob_name(&path)) {
                    read_blob(store, name, chunks).await?;
                }
            }
            other => {
                return Err(Failure::Invalid(format!(
                    "{} is not a quire backup: unexpected entry {}",
                    from.display(),
                    other.path()
                ))
                .into());
            }
        }
    }
    let manifest = manifest.ok_or_else(|| {
        Failure::Invalid(format!(
            "{} has no manifest: not a quire backup, or cut short",
            from.display()
        ))
    })?;
    let database_sha256 = database_sha256.context("the backup holds no database")?;
    Ok(Read {
        manifest,
        database_sha256,
        secret,
        blobs: blob_count,
    })
}

/// Writes the database entry to `staged`, synced; returns its SHA-256.
async fn write_database(entry: Entry, staged: &Path) -> anyhow::Result<String> {
    let (size, mut body) = match entry {
        Entry::Whole { bytes, .. } => (
            bytes.len() as u64,
            Box::pin(futures_util::stream::iter([Ok(bytes::Bytes::from(bytes))]))
                as quire_media::ByteStream,
        ),
        Entry::Streamed { size, chunks, .. } => (size, chunk_stream(chunks)),
    };
    let meter = Meter::new("database", size, Unit::Bytes);
    let mut file = tokio::fs::File::create(staged)
        .await
        .with_context(|| format!("cannot create {}", staged.display()))?;
    let mut hash = Sha256::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        hash.update(&chunk);
        file.write_all(&chunk).await?;
        meter.inc(chunk.len() as u64);
    }
    file.sync_all().await?;
    meter.finish();
    Ok(hex(&hash.finalize()))
}

/// Moves the staged database (and its secret) over `target`, dropping the target's WAL.
fn put_in_place(staged: &Path, target: &Path, with_secret: bool) -> anyhow::Result<()> {
    for suffix in ["-wal", "-shm"] {
        match std::fs::remove_file(sibling(target, suffix)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context("cannot remove the old database's WAL"),
        }
    }
    std::fs::rename(staged, target)
        .with_context(|| format!("cannot move the restored database to {}", target.display()))?;
    if with_secret {
        std::fs::rename(
            crate::secret::secret_path(staged),
            crate::secret::secret_path(target),
        )
        .context("cannot put the token secret in place")?;
    }
    let parent: PathBuf = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => ".".into(),
    };
    std::fs::File::open(parent)?.sync_all()?;
    Ok(())
}

/// Writes `secret` to `path`, readable by its owner only.
async fn write_private(path: &Path, secret: &str) -> anyhow::Result<()> {
    let (path, secret) = (path.to_owned(), secret.to_owned());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let _ = std::fs::remove_file(&path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(secret.as_bytes())?;
        file.sync_all()
    })
    .await?
    .context("cannot write the token secret")
}

/// `quire copy`'s progress, on a [`Meter`].
struct TableMeter(Meter);

impl quire_store::copy::Progress for TableMeter {
    fn table(&self, _table: &str, rows: u64) {
        self.0.set_total(self.0.total() + rows);
    }

    fn rows(&self, rows: u64) {
        self.0.inc(rows);
    }
}
