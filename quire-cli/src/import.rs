//! `quire import --from FILE`: loads a `quire export` archive into the database, all or
//! nothing, and idempotently: rows whose key the database already holds are left alone, and
//! before committing every table must hold exactly what the archive's manifest says (row
//! count and checksum). So a second import of the same archive changes nothing and succeeds,
//! while an import into a database holding other data is refused and rolled back (unless
//! `--replace`, which empties it first in the same transaction). Media blobs are stored
//! content-addressed, each checked against its name.
//!
//! `--from DIR` imports a folder of Markdown files instead (markdown_import.rs).

use std::time::Instant;

use anyhow::{Context as _, bail};
use quire_store::DatabaseUrl;
use quire_store::copy::{Checksum, Row, TABLES, Table, Target};
use serde_json::json;

use crate::archive::{self, Entry};
use crate::export::{
    FORMAT, HEADER_ENTRY, Header, MANIFEST_ENTRY, Manifest, VERSION, checksum_hex, row_from_json,
};
use crate::media_archive::{blob_name, read_blob};
use crate::outcome::{Failure, print};
use crate::progress::{Meter, Unit};
use crate::{ImportArgs, Settings};

/// Rows inserted per statement.
const BATCH: usize = 500;

/// One table as the archive delivered it.
#[derive(Default)]
struct Seen {
    sum: Checksum,
    inserted: u64,
}

pub async fn run(settings: &Settings, args: &ImportArgs) -> anyhow::Result<()> {
    if tokio::fs::metadata(&args.from)
        .await
        .is_ok_and(|m| m.is_dir())
    {
        return crate::markdown_import::run(settings, args).await;
    }
    let url = DatabaseUrl::parse(&settings.database)
        .map_err(|e| Failure::Invalid(format!("--database: {e}")))?;
    let started = Instant::now();
    let mut target = quire_store::copy::open_target(&url).await?;
    target.begin().await?;
    let imported = import(settings, args, &url, target.as_mut()).await;
    let (manifest, seen, blobs) = match imported {
        Ok(done) => done,
        Err(error) => {
            let _ = target.rollback().await;
            return Err(error.context("nothing was imported"));
        }
    };
    target.commit().await?;
    let seconds = started.elapsed().as_secs_f64();
    let inserted: u64 = seen.iter().map(|s| s.inserted).sum();
    let rows: u64 = manifest.tables.iter().map(|t| t.rows).sum();
    print(
        settings.json,
        &json!({
            "imported": args.from.display().to_string(),
            "into": url.to_string(),
            "rows": rows,
            "rows_inserted": inserted,
            "media_blobs": blobs,
            "seconds": seconds,
            "tables": manifest.tables.iter().zip(&seen).map(|(t, s)| json!({
                "table": t.table, "rows": t.rows, "inserted": s.inserted, "checksum": t.checksum,
            })).collect::<Vec<_>>(),
        }),
        || {
            let mut out = format!(
                "imported {} into {url} in {seconds:.1} s: {rows} rows, {inserted} of them new; {blobs} media blobs\n",
                args.from.display()
            );
            for (t, s) in manifest.tables.iter().zip(&seen) {
                out += &format!(
                    "  {:<14} {:>10} rows ({} new)  checksum {} (same in the database)\n",
                    t.table, t.rows, s.inserted, t.checksum
                );
            }
            out
        },
    );
    Ok(())
}

/// Everything between `begin` and `commit`.
async fn import(
    settings: &Settings,
    args: &ImportArgs,
    url: &DatabaseUrl,
    target: &mut dyn Target,
) -> anyhow::Result<(Manifest, Vec<Seen>, u64)> {
    if args.replace {
        quire_store::copy::clear(target, true).await?;
    }
    let not_an_export = |why: String| {
        Failure::Invalid(format!(
            "{} is not a quire export: {why}",
            args.from.display()
        ))
    };
    let mut entries = archive::read(&args.from).await?;
    let mut seen: Vec<Seen> = TABLES.iter().map(|_| Seen::default()).collect();
    let (mut header_read, mut manifest, mut current, mut blobs) = (false, None, 0usize, 0u64);
    let mut store = None;
    let meter = Meter::new("import", 0, Unit::Rows);
    while let Some(entry) = entries.recv().await {
        let entry = entry.with_context(|| format!("{} is damaged", args.from.display()))?;
        if manifest.is_some() {
            return Err(not_an_export("entries follow its manifest".into()).into());
        }
        if !header_read {
            let Entry::Whole { path, bytes } = &entry else {
                return Err(
                    not_an_export("it does not start with quire-export.json".into()).into(),
                );
            };
            if path != HEADER_ENTRY {
                return Err(not_an_export(format!("its first entry is {path}")).into());
            }
            let header: Header =
                serde_json::from_slice(bytes).map_err(|e| not_an_export(e.to_string()))?;
            if header.format != FORMAT || header.version > VERSION {
                return Err(Failure::Invalid(format!(
                    "{} is a {} archive of version {} (from quire {}); this quire imports {FORMAT} up to version {VERSION}",
                    args.from.display(),
                    header.format,
                    header.version,
                    header.quire
                ))
                .into());
            }
            header_read = true;
            continue;
        }
        match entry {
            Entry::Whole { path, bytes } if path == MANIFEST_ENTRY => {
                manifest = Some(
                    serde_json::from_slice::<Manifest>(&bytes)
                        .map_err(|e| not_an_export(format!("its manifest: {e}")))?,
                );
            }
            Entry::Whole { path, bytes } if path.starts_with("tables/") => {
                let name = path.split('/').nth(1).unwrap_or_default();
                let index = TABLES
                    .iter()
                    .position(|t| t.name == name)
                    .ok_or_else(|| not_an_export(format!("unknown table {name}")))?;
                if index < current {
                    return Err(not_an_export(format!("{path} comes after its children")).into());
                }
                current = index;
                let table = &TABLES[index];
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| not_an_export(format!("{path} is not UTF-8")))?;
                let mut rows: Vec<Row> = Vec::with_capacity(BATCH);
                for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
                    let row = row_from_json(table, line)
                        .map_err(|why| not_an_export(format!("{path} line {}: {why}", n + 1)))?;
                    seen[index].sum.add(&row);
                    rows.push(row);
                    if rows.len() == BATCH {
                        insert(
                            target,
                            table,
                            std::mem::take(&mut rows),
                            &mut seen[index],
                            &meter,
                        )
                        .await?;
                    }
                }
                insert(target, table, rows, &mut seen[index], &meter).await?;
            }
            Entry::Streamed { path, chunks, .. } if blob_name(&path).is_some() => {
                let name = blob_name(&path).unwrap_or_default();
                if store.is_none() {
                    store = Some(crate::attach_media(settings, url).await?);
                }
                if let Some(store) = &store {
                    read_blob(store.as_ref(), name, chunks).await?;
                }
                blobs += 1;
            }
            other => {
                return Err(not_an_export(format!("unexpected entry {}", other.path())).into());
            }
        }
    }
    meter.finish();
    let manifest =
        manifest.ok_or_else(|| not_an_export("it has no manifest (cut short?)".into()))?;
    // The archive is whole: what it delivered is what its manifest says.
    for (table, seen) in TABLES.iter().zip(&seen) {
        let Some(facts) = manifest.tables.iter().find(|t| t.table == table.name) else {
            return Err(not_an_export(format!("its manifest lacks table {}", table.name)).into());
        };
        if facts.rows != seen.sum.rows || facts.checksum != checksum_hex(&seen.sum) {
            bail!(
                "{} is damaged: table {} delivered {} rows (checksum {}) where its manifest says {} ({})",
                args.from.display(),
                table.name,
                seen.sum.rows,
                checksum_hex(&seen.sum),
                facts.rows,
                facts.checksum
            );
        }
    }
    if let Some(media) = &manifest.media
        && media.blobs != blobs
    {
        bail!(
            "{} is damaged: {blobs} media blobs where its manifest says {}",
            args.from.display(),
            media.blobs
        );
    }
    // And the database now holds exactly the archive: nothing else, nothing different.
    for table in TABLES {
        let held = target.checksum(table).await?;
        let facts = manifest
            .tables
            .iter()
            .find(|t| t.table == table.name)
            .context("manifest checked above")?;
        if held.rows != facts.rows || checksum_hex(&held) != facts.checksum {
            return Err(Failure::Refused(format!(
                "the database holds other data than the archive (table {}: {} rows where the archive has {}); \
                 import into an empty database, or give --replace to empty it first",
                table.name, held.rows, facts.rows
            ))
            .into());
        }
    }
    target.finish(None, args.replace).await?;
    Ok((manifest, seen, blobs))
}

async fn insert(
    target: &mut dyn Target,
    table: &'static Table,
    rows: Vec<Row>,
    seen: &mut Seen,
    meter: &Meter,
) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len() as u64;
    seen.inserted += target
        .insert(table, rows, true)
        .await
        .with_context(|| format!("cannot insert into {}", table.name))?;
    meter.set_total(meter.total() + n);
    meter.inc(n);
    Ok(())
}
