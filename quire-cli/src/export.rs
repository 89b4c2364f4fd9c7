//! `quire export --to FILE`: the whole blog as a portable archive that any quire (SQLite or
//! PostgreSQL, this version or a later one) imports with `quire import`. Read from one snapshot
//! of the database (a read transaction), so it is consistent while quire serves; streamed, so
//! memory stays flat whatever the blog's size.
//!
//! The format (version 1, documented in docs/export-format.md): a tar archive (gzip when
//! FILE ends in `.gz`) of
//! - `quire-export.json`: `{"format": "quire-export", "version": 1, "quire": ..., "created_at": ...}`;
//! - `tables/<table>/<n>.jsonl`: every row of every base table, parents before children, one
//!   JSON object per line keyed by column name, in files of about 8 MiB;
//! - `media/<sha256>`: each media blob's bytes (unless `--no-media`);
//! - `manifest.json`, last: per table its row count, checksum and columns; the blobs.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context as _;
use quire_store::DatabaseUrl;
use quire_store::copy::{Checksum, Kind, TABLES, Table, Value};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::archive::ArchiveWriter;
use crate::backup::{MediaFacts, unix_now};
use crate::outcome::{Failure, print};
use crate::progress::{Meter, Unit};
use crate::{ExportArgs, Settings};

/// `quire-export.json`'s and the manifest's `format`.
pub const FORMAT: &str = "quire-export";
/// The newest format version this binary writes and reads.
pub const VERSION: u32 = 1;
/// The archive's first entry.
pub const HEADER_ENTRY: &str = "quire-export.json";
/// The archive's last entry.
pub const MANIFEST_ENTRY: &str = "manifest.json";
/// A table file is cut once it holds this many bytes.
const TABLE_FILE_BYTES: usize = 8 * 1024 * 1024;
/// Rows read from the database at a time.
const BATCH: usize = 1000;

/// The first entry: what the archive is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub quire: String,
    pub created_at: u64,
}

/// The last entry: what the archive holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub tables: Vec<TableFacts>,
    /// The blobs included, or `None` when exported with `--no-media`.
    pub media: Option<MediaFacts>,
}

/// One table in an export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableFacts {
    pub table: String,
    pub rows: u64,
    /// The order-independent row checksum `quire copy` uses, as 32 hex digits.
    pub checksum: String,
    pub columns: Vec<String>,
}

/// A checksum as the manifest writes it.
pub fn checksum_hex(sum: &Checksum) -> String {
    format!("{:032x}", sum.sum)
}

/// A row as one JSON object keyed by column name.
fn row_json(table: &Table, row: &[Value]) -> serde_json::Value {
    let mut object = serde_json::Map::with_capacity(row.len());
    for (column, value) in table.columns.iter().zip(row) {
        let value = match value {
            Value::Null => serde_json::Value::Null,
            Value::Int(n) => json!(n),
            Value::Text(s) => json!(s),
        };
        object.insert(column.name.to_owned(), value);
    }
    serde_json::Value::Object(object)
}

/// Reads one line of a table file back into a row, checking every column's type.
pub fn row_from_json(table: &Table, line: &str) -> Result<Vec<Value>, String> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    if let Some(extra) = object
        .keys()
        .find(|k| !table.columns.iter().any(|c| c.name == k.as_str()))
    {
        return Err(format!("unknown column {extra}"));
    }
    table
        .columns
        .iter()
        .map(|column| match (object.get(column.name), column.kind) {
            (None | Some(serde_json::Value::Null), _) if column.nullable => Ok(Value::Null),
            (Some(serde_json::Value::Number(n)), Kind::Int) => n
                .as_i64()
                .map(Value::Int)
                .ok_or_else(|| format!("{} is not a 64-bit integer", column.name)),
            (Some(serde_json::Value::String(s)), Kind::Text) => Ok(Value::Text(s.clone())),
            (None, _) => Err(format!("{} is missing", column.name)),
            (Some(_), _) => Err(format!("{} has the wrong type", column.name)),
        })
        .collect()
}

/// Writes the export and prints what it holds.
pub async fn run(settings: &Settings, args: &ExportArgs) -> anyhow::Result<()> {
    let url = DatabaseUrl::parse(&settings.database)
        .map_err(|e| Failure::Invalid(format!("--database: {e}")))?;
    if tokio::fs::try_exists(&args.to).await.unwrap_or(false) {
        return Err(Failure::Refused(format!(
            "{} exists already; give a new file name",
            args.to.display()
        ))
        .into());
    }
    if let DatabaseUrl::Sqlite(path) = &url
        && !tokio::fs::try_exists(path).await.unwrap_or(false)
    {
        return Err(Failure::Invalid(format!("no database at {}", path.display())).into());
    }
    let started = Instant::now();
    let mut source = quire_store::copy::open_source(&url).await?;
    source.snapshot().await?;
    let mut archive = ArchiveWriter::create(&args.to).await?;
    let header = Header {
        format: FORMAT.to_owned(),
        version: VERSION,
        quire: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: unix_now(),
    };
    archive
        .whole(HEADER_ENTRY, serde_json::to_vec_pretty(&header)?)
        .await?;
    let mut tables = Vec::new();
    // Every blob the media rows name, with its size (about a hundred bytes each).
    let mut blobs: BTreeMap<String, u64> = BTreeMap::new();
    for table in TABLES {
        let meter = Meter::new(table.name, source.count(table).await?, Unit::Rows);
        let mut sum = Checksum::default();
        let (mut file, mut files) = (Vec::with_capacity(TABLE_FILE_BYTES + 64 * 1024), 0u32);
        let mut after = None;
        loop {
            let rows = source.page(table, after.take(), BATCH).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last[..table.key_len].to_vec());
            for row in &rows {
                sum.add(row);
                serde_json::to_writer(&mut file, &row_json(table, row))?;
                file.push(b'\n');
                if table.name == "media"
                    && let (Some(Value::Text(sha)), Some(Value::Int(size))) =
                        (row.get(1), row.get(2))
                {
                    blobs.insert(sha.clone(), (*size).max(0) as u64);
                }
            }
            meter.inc(rows.len() as u64);
            if file.len() >= TABLE_FILE_BYTES {
                files += 1;
                let full =
                    std::mem::replace(&mut file, Vec::with_capacity(TABLE_FILE_BYTES + 64 * 1024));
                archive
                    .whole(&format!("tables/{}/{files:06}.jsonl", table.name), full)
                    .await?;
            }
        }
        if !file.is_empty() {
            files += 1;
            archive
                .whole(&format!("tables/{}/{files:06}.jsonl", table.name), file)
                .await?;
        }
        meter.finish();
        tables.push(TableFacts {
            table: table.name.to_owned(),
            rows: sum.rows,
            checksum: checksum_hex(&sum),
            columns: table.columns.iter().map(|c| c.name.to_owned()).collect(),
        });
    }
    drop(source); // ends the snapshot's read transaction
    let media = if args.no_media {
        None
    } else {
        let store = crate::attach_media(settings, &url).await?;
        let blobs: Vec<(String, u64)> = blobs.into_iter().collect();
        Some(crate::media_archive::write_blobs(&mut archive, store.as_ref(), &blobs).await?)
    };
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        version: VERSION,
        tables,
        media,
    };
    archive
        .whole(MANIFEST_ENTRY, serde_json::to_vec_pretty(&manifest)?)
        .await?;
    let bytes = archive
        .finish()
        .await
        .context("cannot complete the export")?;
    let seconds = started.elapsed().as_secs_f64();
    let rows: u64 = manifest.tables.iter().map(|t| t.rows).sum();
    print(
        settings.json,
        &json!({
            "export": args.to.display().to_string(),
            "archive_bytes": bytes,
            "seconds": seconds,
            "rows": rows,
            "manifest": manifest,
        }),
        || {
            let mut out = format!(
                "exported {rows} rows to {} in {seconds:.1} s ({})\n",
                args.to.display(),
                indicatif::HumanBytes(bytes)
            );
            for t in &manifest.tables {
                out += &format!(
                    "  {:<14} {:>10} rows  checksum {}\n",
                    t.table, t.rows, t.checksum
                );
            }
            match &manifest.media {
                Some(m) => out += &format!("media: {} blobs, {} bytes\n", m.blobs, m.bytes),
                None => out += "media: not included (--no-media)\n",
            }
            out
        },
    );
    Ok(())
}
