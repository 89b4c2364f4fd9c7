//! `quire media copy --from STORE --to STORE`: moves every media blob between the filesystem
//! store and a bucket (either way, or between two directories or two prefixes), with a
//! progress bar on standard error and a summary of what was copied and verified. The copying
//! itself is quire-media's `copy` module; this is its command line.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::ProgressBar;
use quire_media::copy::{CopyProgress, copy_blobs};
use quire_media::{BlobStore, FsBlobStore};

use crate::{MediaCopyArgs, Settings};

/// Runs the copy and prints what was copied.
pub async fn run(settings: &Settings, args: &MediaCopyArgs) -> anyhow::Result<()> {
    let from = open_store(settings, &args.from, false)
        .await
        .context("--from")?;
    let to = open_store(settings, &args.to, true).await.context("--to")?;
    let bar = Arc::new(Bar::new());
    let started = Instant::now();
    let report = copy_blobs(from, to, usize::from(args.jobs), bar.clone())
        .await
        .context("media copy stopped; what was copied before stays, and a new run resumes")?;
    bar.0.finish_and_clear();
    println!(
        "copied {} blobs ({:.1} MB) in {:.1} s, each verified by its SHA-256; {} blobs ({:.1} MB) were already there",
        report.copied,
        report.copied_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        report.present,
        report.present_bytes as f64 / 1e6,
    );
    Ok(())
}

/// The store `spec` names: `s3://bucket[/prefix]` (with the --s3-* settings) or a media
/// directory. Opened without removing anything, since quire may be serving on it.
async fn open_store(
    settings: &Settings,
    spec: &str,
    create: bool,
) -> anyhow::Result<Arc<dyn BlobStore>> {
    if spec.starts_with("s3://") {
        return Ok(Arc::new(crate::connect_bucket(settings, spec).await?));
    }
    let dir = std::path::PathBuf::from(spec);
    if !create {
        let exists = tokio::fs::try_exists(dir.join("blobs"))
            .await
            .unwrap_or(false);
        anyhow::ensure!(exists, "{spec} is not a media directory (it has no blobs/)");
    }
    let store = FsBlobStore::attach(&dir)
        .await
        .with_context(|| format!("cannot open media directory {spec}"))?;
    Ok(Arc::new(store))
}

/// A bar of bytes, redrawn in place; hidden when standard error is not a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Self {
        Self(crate::progress::bar(
            "{prefix} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        ))
    }
}

impl CopyProgress for Bar {
    fn listed(&self, blobs: u64, bytes: u64) {
        self.0.set_prefix(format!("{blobs} blobs"));
        self.0.set_length(bytes);
    }

    fn moved(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}
