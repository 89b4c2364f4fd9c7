//! quire's media bytes: a [`BlobStore`] streams uploads into content-addressed blobs (named by
//! their SHA-256, computed while streaming) and streams them back, whole or by byte range.
//!
//! Knows nothing of users, HTTP or the database: metadata (who uploaded what, content types)
//! lives in the store; this crate only keeps bytes safe. [`FsBlobStore`] keeps them on the local
//! filesystem, [`S3BlobStore`] in an S3-compatible bucket.

pub mod copy;
mod fs;
mod s3;

use std::io;
use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

pub use fs::FsBlobStore;
pub use s3::{S3BlobStore, S3Settings};

/// A stream of body bytes, as uploads arrive and downloads leave.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A blob that has been written completely and durably.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// Lowercase hex SHA-256 of the bytes: the blob's name.
    pub sha256: String,
    pub size: u64,
}

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The upload grew past the allowed size; nothing was kept.
    #[error("upload exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The client's stream failed (for example, it disconnected); nothing was kept.
    #[error("upload aborted: {0}")]
    Aborted(String),
    /// The disk failed us.
    #[error("media storage: {0}")]
    Io(#[from] io::Error),
    /// The object store could not be reached, timed out or refused the request.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
}

/// An open blob, ready to stream.
pub trait BlobReader: Send {
    /// The blob's full size in bytes.
    fn size(&self) -> u64;
    /// Streams the bytes in `range` (already checked against `size`).
    fn stream(self: Box<Self>, range: Range<u64>) -> ByteStream;
}

/// Where media bytes live.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Streams `body` into a new blob. Succeeds only once the whole body is durably stored;
    /// a body past `max_bytes`, a failing stream or a crash leave nothing behind. Identical
    /// bytes are stored once.
    async fn put(&self, body: ByteStream, max_bytes: u64) -> Result<StoredBlob, MediaError>;
    /// Opens the blob named `sha256`, if present.
    async fn open(&self, sha256: &str) -> Result<Option<Box<dyn BlobReader>>, MediaError>;
    /// Removes the blob named `sha256` (no error if absent).
    async fn remove(&self, sha256: &str) -> Result<(), MediaError>;
    /// Every blob the store holds, sorted by name (for copying between stores): names and
    /// sizes only, about a hundred bytes per blob.
    async fn list(&self) -> Result<Vec<StoredBlob>, MediaError>;
    /// Whether the store answers now (readiness); the filesystem always does.
    async fn ready(&self) -> Result<(), MediaError> {
        Ok(())
    }
}

/// An upload's body read as blocks of a fixed size (the last one shorter), refusing it as
/// soon as it grows past its limit: how both stores consume an upload. Chunks are gathered
/// into a buffer of our own: holding the network's buffers instead would pin memory several
/// times their size.
pub(crate) struct Blocks {
    /// Fused: the last block is handed out after the body has ended, and a stream need not
    /// answer being polled again after its end.
    body: futures_util::stream::Fuse<ByteStream>,
    buffer: bytes::BytesMut,
    block: usize,
    max_bytes: u64,
    size: u64,
}

impl Blocks {
    pub(crate) fn new(body: ByteStream, block: usize, max_bytes: u64) -> Self {
        use futures_util::StreamExt as _;
        Self {
            body: body.fuse(),
            buffer: bytes::BytesMut::with_capacity(block),
            block,
            max_bytes,
            size: 0,
        }
    }

    /// The next block, `None` at the end of the body.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, MediaError> {
        use futures_util::StreamExt as _;
        while self.buffer.len() < self.block {
            let Some(chunk) = self.body.next().await else {
                break;
            };
            let chunk = chunk.map_err(|e| MediaError::Aborted(e.to_string()))?;
            self.size += chunk.len() as u64;
            if self.size > self.max_bytes {
                return Err(MediaError::TooLarge {
                    limit: self.max_bytes,
                });
            }
            self.buffer.extend_from_slice(&chunk);
        }
        Ok((!self.buffer.is_empty()).then(|| self.buffer.split().freeze()))
    }

    /// Bytes read so far.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

/// Whether `name` is a well-formed blob name (64 lowercase hex digits), so that names taken
/// from anywhere can never walk out of the store's directory.
pub fn is_blob_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_names() {
        assert!(is_blob_name(&"a".repeat(64)));
        assert!(!is_blob_name(&"A".repeat(64)));
        assert!(!is_blob_name(&"a".repeat(63)));
        assert!(!is_blob_name("../../etc/passwd"));
        assert!(!is_blob_name(&format!("{}/..", "a".repeat(61))));
    }
}
