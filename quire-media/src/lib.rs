//! quire's media bytes: a [`BlobStore`] streams uploads into content-addressed blobs (named by
//! their SHA-256, computed while streaming) and streams them back, whole or by byte range.
//!
//! Knows nothing of users, HTTP or the database: metadata (who uploaded what, content types)
//! lives in the store; this crate only keeps bytes safe. [`FsBlobStore`] keeps them on the local
//! filesystem, [`S3BlobStore`] in an S3-compatible bucket.

pub mod copy;
mod fs;
mod parts;
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
    /// What the last chunk brought beyond the block it completed: the start of the next one.
    carried: Option<Bytes>,
    block: usize,
    max_bytes: u64,
    size: u64,
}

impl Blocks {
    pub(crate) fn new(body: ByteStream, block: usize, max_bytes: u64) -> Self {
        use futures_util::StreamExt as _;
        Self {
            body: body.fuse(),
            carried: None,
            block,
            max_bytes,
            size: 0,
        }
    }

    /// Appends the body's next bytes to `buf` until it holds one block or the body ends;
    /// whether any were added. Room for a block is made only once bytes arrive, and the buffer
    /// never grows past one block.
    pub(crate) async fn fill(&mut self, buf: &mut Vec<u8>) -> Result<bool, MediaError> {
        use futures_util::StreamExt as _;
        let start = buf.len();
        while buf.len() < self.block {
            let chunk = match self.carried.take() {
                Some(chunk) => chunk,
                None => {
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
                    chunk
                }
            };
            if buf.capacity() < self.block {
                buf.reserve_exact(self.block - buf.len());
            }
            let room = self.block - buf.len();
            if chunk.len() > room {
                buf.extend_from_slice(&chunk[..room]);
                self.carried = Some(chunk.slice(room..));
            } else {
                buf.extend_from_slice(&chunk);
            }
        }
        Ok(buf.len() > start)
    }

    /// The next block (exactly one block's size, but for the last), `None` at the end.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, MediaError> {
        let mut buf = Vec::new();
        Ok(self.fill(&mut buf).await?.then(|| Bytes::from(buf)))
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

    #[tokio::test]
    async fn blocks_are_exactly_one_block_and_never_grow() {
        let chunks: Vec<io::Result<Bytes>> = [7usize, 5, 9, 1]
            .iter()
            .map(|n| Ok(Bytes::from(vec![*n as u8; *n])))
            .collect();
        let mut blocks = Blocks::new(Box::pin(futures_util::stream::iter(chunks)), 6, 100);
        let mut sizes = Vec::new();
        let mut all = Vec::new();
        while let Some(block) = blocks.next().await.unwrap() {
            sizes.push(block.len());
            all.extend_from_slice(&block);
        }
        assert_eq!(sizes, [6, 6, 6, 4]);
        assert_eq!(all.len(), 22);
        assert_eq!(&all[..8], &[7, 7, 7, 7, 7, 7, 7, 5]);
        assert_eq!(blocks.size(), 22);
    }

    #[test]
    fn blob_names() {
        assert!(is_blob_name(&"a".repeat(64)));
        assert!(!is_blob_name(&"A".repeat(64)));
        assert!(!is_blob_name(&"a".repeat(63)));
        assert!(!is_blob_name("../../etc/passwd"));
        assert!(!is_blob_name(&format!("{}/..", "a".repeat(61))));
    }
}
