//! Moving blobs between two stores (`quire media copy`): every blob of one store is streamed
//! into the other, verified by its SHA-256 (the target names what it received by the hash of
//! the bytes it received, which must be the source's name), skipping blobs the target already
//! holds. Safe while quire serves on either store: blobs are immutable, a blob appears whole
//! or not at all, and nothing is deleted.

use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};

use crate::{BlobStore, MediaError, StoredBlob};

/// What a copy is told of its progress (a progress bar, or nothing).
pub trait CopyProgress: Send + Sync + 'static {
    /// The source holds `blobs` blobs of `bytes` bytes in all.
    fn listed(&self, blobs: u64, bytes: u64);
    /// `bytes` more bytes were moved (or found already present).
    fn moved(&self, bytes: u64);
}

/// What a finished copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Blobs streamed into the target and verified.
    pub copied: u64,
    pub copied_bytes: u64,
    /// Blobs the target already held (same name and size), left as they were.
    pub present: u64,
    pub present_bytes: u64,
}

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Store(#[from] MediaError),
    /// The source's bytes do not hash to the source's name: the blob is damaged there.
    #[error(
        "blob {name} is damaged in the source: its {size} bytes hash to {actual} (the target \
         holds them under that name, referenced by no media)"
    )]
    Damaged {
        name: String,
        actual: String,
        size: u64,
    },
    /// A listed blob was gone when its turn came (removed meanwhile by its uploader).
    #[error("blob {0} was listed but is no longer in the source")]
    Vanished(String),
}

/// Copies every blob of `from` into `to`, `jobs` at a time.
pub async fn copy_blobs(
    from: Arc<dyn BlobStore>,
    to: Arc<dyn BlobStore>,
    jobs: usize,
    progress: Arc<dyn CopyProgress>,
) -> Result<CopyReport, CopyError> {
    let blobs = from.list().await?;
    progress.listed(blobs.len() as u64, blobs.iter().map(|b| b.size).sum());
    let outcomes = futures_util::stream::iter(blobs)
        .map(|blob| {
            let (from, to, progress) = (from.clone(), to.clone(), progress.clone());
            async move { copy_one(&*from, &*to, blob, progress).await }
        })
        .buffer_unordered(jobs.max(1));
    outcomes
        .try_fold(
            CopyReport::default(),
            |mut report, (blob, copied)| async move {
                if copied {
                    report.copied += 1;
                    report.copied_bytes += blob.size;
                } else {
                    report.present += 1;
                    report.present_bytes += blob.size;
                }
                Ok(report)
            },
        )
        .await
}

/// Copies one blob unless the target holds it; whether it was copied.
async fn copy_one(
    from: &dyn BlobStore,
    to: &dyn BlobStore,
    blob: StoredBlob,
    progress: Arc<dyn CopyProgress>,
) -> Result<(StoredBlob, bool), CopyError> {
    if let Some(existing) = to.open(&blob.sha256).await?
        && existing.size() == blob.size
    {
        progress.moved(blob.size);
        return Ok((blob, false));
    }
    let reader = from
        .open(&blob.sha256)
        .await?
        .ok_or_else(|| CopyError::Vanished(blob.sha256.clone()))?;
    let size = reader.size();
    let body = reader
        .stream(0..size)
        .inspect_ok(move |chunk| progress.moved(chunk.len() as u64));
    let stored = to.put(Box::pin(body), size).await?;
    if stored.sha256 != blob.sha256 || stored.size != size {
        // The target keeps those bytes under their own hash, referenced by no media row
        // (removing them could remove a real blob that happens to hold the same bytes).
        return Err(CopyError::Damaged {
            name: blob.sha256,
            actual: stored.sha256,
            size: stored.size,
        });
    }
    Ok((stored, true))
}
