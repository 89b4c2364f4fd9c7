//! `quire copy --from URL --to URL`: moves every row between databases (the way from SQLite to
//! PostgreSQL, and back), with a progress bar on standard error and a per-table summary of what
//! was verified. The copying itself is quire-store's `copy` module; this is its command line.

use std::time::Instant;

use anyhow::Context as _;
use indicatif::ProgressBar;
use quire_store::DatabaseUrl;
use quire_store::copy::{CopyOptions, Progress};

use crate::CopyArgs;

/// Runs the copy and prints what was copied.
pub async fn run(args: &CopyArgs) -> anyhow::Result<()> {
    let from = DatabaseUrl::parse(&args.from).context("--from")?;
    let to = DatabaseUrl::parse(&args.to).context("--to")?;
    let bar = Bar::new();
    let started = Instant::now();
    let copied = quire_store::copy::copy(
        &from,
        &to,
        CopyOptions {
            replace: args.replace,
            batch: args.batch,
        },
        &bar,
    )
    .await
    .context("copy failed; the target was left as it was")?;
    bar.done();
    for table in &copied {
        println!(
            "{:<14} {:>10} rows  checksum {:032x}  (same on both sides)",
            table.table, table.checksum.rows, table.checksum.sum
        );
    }
    let rows: u64 = copied.iter().map(|t| t.checksum.rows).sum();
    println!(
        "copied {rows} rows in {:.1} s, committed",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One bar per table, redrawn in place; hidden when standard error is not a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Self {
        Self(crate::progress::bar(
            "{prefix:>14} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta} left)",
        ))
    }

    fn done(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn table(&self, table: &str, rows: u64) {
        self.0.set_prefix(table.to_owned());
        self.0.set_length(rows);
        self.0.set_position(0);
    }

    fn rows(&self, rows: u64) {
        self.0.inc(rows);
    }
}
