//! Media blobs in archives (`quire backup --with-media`, `quire export`): written as
//! `media/<sha256>` entries streamed from the blob store, and read back into a blob store. Both
//! ways every blob's bytes are hashed as they pass and must match its name, so a damaged blob
//! stops the command instead of spreading.

use anyhow::{Context as _, bail};
use quire_media::BlobStore;

use crate::archive::{ArchiveWriter, chunk_stream};
use crate::backup::MediaFacts;
use crate::progress::{Meter, Unit};

/// Appends every blob of `blobs` (name, size) to `archive`, reading them from `store`.
pub async fn write_blobs(
    archive: &mut ArchiveWriter,
    store: &dyn BlobStore,
    blobs: &[(String, u64)],
) -> anyhow::Result<MediaFacts> {
    let total: u64 = blobs.iter().map(|(_, size)| size).sum();
    let meter = Meter::new("media", total, Unit::Bytes);
    for (sha256, size) in blobs {
        let reader = store
            .open(sha256)
            .await
            .with_context(|| format!("cannot read media blob {sha256}"))?
            .with_context(|| {
                format!("media blob {sha256} is named by a row but missing from the store")
            })?;
        if reader.size() != *size {
            bail!(
                "media blob {sha256} holds {} bytes where its row says {size}",
                reader.size()
            );
        }
        let body = reader.stream(0..*size);
        let got = archive
            .streamed(&format!("media/{sha256}"), *size, body, &|n| meter.inc(n))
            .await?;
        if &got != sha256 {
            bail!("media blob {sha256} is damaged: its bytes hash to {got}");
        }
    }
    meter.finish();
    Ok(MediaFacts {
        blobs: blobs.len() as u64,
        bytes: total,
    })
}

/// The blob name of a `media/<sha256>` entry, if `path` is one.
pub fn blob_name(path: &str) -> Option<&str> {
    let name = path.strip_prefix("media/")?;
    (name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(name)
}

/// Stores a `media/<sha256>` entry's bytes in `store`, checking they hash to `name`.
pub async fn read_blob(
    store: &dyn BlobStore,
    name: &str,
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> anyhow::Result<u64> {
    let stored = store
        .put(chunk_stream(chunks), u64::MAX)
        .await
        .with_context(|| format!("cannot store media blob {name}"))?;
    if stored.sha256 != name {
        // Content-addressed: what was stored is a different, valid blob; the named one is not.
        bail!(
            "media blob {name} in the archive is damaged: its bytes hash to {}",
            stored.sha256
        );
    }
    Ok(stored.size)
}
