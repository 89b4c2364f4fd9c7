//! [`S3BlobStore`]: blobs in an S3-compatible bucket (AWS S3, R2, B2, MinIO, Garage, Ceph),
//! through the `object_store` crate, with exactly the behaviour of the filesystem store.
//!
//! **Uploads** stream into a multipart upload under `<prefix>tmp/<random>`: the body is gathered
//! into parts of [`S3Settings::part_size`] bytes, each part hashed on the blocking pool and sent
//! (by a task of its own) while the next one arrives: at most two parts of an upload in memory,
//! however large the file, and at most [`S3Settings::upload_buffer`] bytes of parts for all
//! uploads together, in buffers that are reused (`parts.rs`; past the budget, uploads wait
//! for a buffer, reading nothing). A body past
//! its limit, a failing client or a failing bucket aborts the multipart upload, so nothing is
//! left behind. A complete upload is copied, server side, to `<prefix>blobs/<sha256>` (unless
//! those bytes are already stored) and the temporary object is deleted.
//!
//! **Downloads** ask the bucket for exactly the range wanted (a ranged GET) and stream it.
//!
//! Every call has a timeout and a bounded number of retries (object_store's client), and runs
//! on the async threads as network I/O; the hashing runs on the blocking pool.

use std::future::Future;
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, MultipartUpload, ObjectStore, ObjectStoreExt as _, PutPayload,
    RetryConfig,
};
use sha2::{Digest as _, Sha256};
use tokio::task::spawn_blocking;

use crate::parts::PartPool;
use crate::{BlobReader, BlobStore, Blocks, ByteStream, MediaError, StoredBlob, is_blob_name};

/// Where the bucket is and how to reach it.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// Key prefix inside the bucket (empty, or ending in `/`).
    pub prefix: String,
    /// `None`: AWS itself (the region's endpoint).
    pub endpoint: Option<String>,
    pub region: String,
    /// `None`: from the standard `AWS_*` environment (or the instance's role).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub path_style: bool,
    /// Bytes per multipart part (S3 wants at least 5 MiB for all but the last).
    pub part_size: usize,
    /// Longest any one request to the bucket may take.
    pub timeout: Duration,
    /// Bytes of parts held in memory by all uploads together (each part counts from when its
    /// first byte is read until it is sent); uploads past it wait their turn.
    pub upload_buffer: usize,
}

/// Blobs in an S3-compatible bucket (see the module doc).
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    store: Arc<AmazonS3>,
    prefix: String,
    part_size: usize,
    /// As many part buffers as fit in [`S3Settings::upload_buffer`].
    parts: Arc<PartPool>,
}

impl S3BlobStore {
    /// Builds the client (no request is made: see [`Self::check`]).
    pub fn new(settings: &S3Settings) -> Result<Self, MediaError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_virtual_hosted_style_request(!settings.path_style)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(settings.timeout)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_allow_http(true),
            )
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: settings.timeout,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build().map_err(unavailable)?;
        let part_size = settings.part_size.max(5 * 1024 * 1024);
        Ok(Self {
            store: Arc::new(store),
            prefix: settings.prefix.clone(),
            part_size,
            parts: PartPool::new(settings.upload_buffer / part_size, part_size),
        })
    }

    fn blob_path(&self, sha256: &str) -> Path {
        Path::from(format!("{}blobs/{sha256}", self.prefix))
    }

    /// Whether the bucket answers: a HEAD of a key that need not exist (found or not found
    /// both mean the bucket is reachable and lets us in).
    pub async fn check(&self) -> Result<(), MediaError> {
        let probe = Path::from(format!("{}ready-probe", self.prefix));
        match timed("head", self.store.head(&probe)).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Deletes temporary objects that a crash left behind, those last written more than
    /// `older_than` ago: the bucket is shared, and a younger one may belong to an upload
    /// another instance is finishing.
    pub async fn clean_leftovers(&self, older_than: Duration) -> Result<usize, MediaError> {
        let tmp = Path::from(format!("{}tmp", self.prefix));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let cutoff = now.saturating_sub(older_than).as_secs() as i64;
        let paths: Vec<Path> = self
            .store
            .list(Some(&tmp))
            .try_filter(|meta| std::future::ready(meta.last_modified.timestamp() < cutoff))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(unavailable)?;
        for path in &paths {
            let _ = self.store.delete(path).await;
        }
        Ok(paths.len())
    }
}

/// A bucket error: the bucket is unreachable or refused us.
fn unavailable(error: object_store::Error) -> MediaError {
    MediaError::Unavailable(error.to_string())
}

/// Runs one request to the bucket, timing it and counting its failure (a missing key is an
/// answer, not a failure).
async fn timed<T>(
    operation: &'static str,
    request: impl Future<Output = object_store::Result<T>>,
) -> object_store::Result<T> {
    let started = Instant::now();
    let result = request.await;
    metrics::histogram!("media_store_request_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    if let Err(error) = &result
        && !matches!(error, object_store::Error::NotFound { .. })
    {
        metrics::counter!("media_store_errors_total", "operation" => operation).increment(1);
    }
    result
}

/// An upload in flight: the multipart upload, the running hash, the part being sent.
struct Upload {
    multipart: Box<dyn MultipartUpload>,
    hasher: Option<Sha256>,
    /// The part being sent, as a task of its own (so it progresses while the next part
    /// arrives), holding its pooled buffer until it is sent.
    sending: Option<tokio::task::JoinHandle<object_store::Result<()>>>,
}

impl Upload {
    /// Hashes `part` off the async threads, waits for the previous part to be sent, then
    /// starts sending this one (its pooled buffer goes back once it is sent).
    async fn part(&mut self, part: Bytes) -> Result<(), MediaError> {
        let hasher = self.hasher.take().unwrap_or_default();
        let hashed = part.clone();
        let hasher = spawn_blocking(move || {
            let mut hasher = hasher;
            hasher.update(&hashed);
            hasher
        })
        .await
        .map_err(|e| MediaError::Io(io::Error::other(e.to_string())))?;
        self.hasher = Some(hasher);
        self.sent().await?;
        let sending = self.multipart.put_part(PutPayload::from_bytes(part));
        self.sending = Some(tokio::spawn(timed("put_part", sending)));
        Ok(())
    }

    /// Waits for the part in flight, if any.
    async fn sent(&mut self) -> Result<(), MediaError> {
        if let Some(sending) = self.sending.take() {
            sending
                .await
                .map_err(|e| MediaError::Io(io::Error::other(e.to_string())))?
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Gives the upload up: no part stays behind in the bucket.
    async fn abort(mut self) {
        if let Some(sending) = self.sending.take() {
            sending.abort();
            let _ = sending.await;
        }
        if let Err(error) = timed("abort", self.multipart.abort()).await {
            tracing::warn!(error = %error, "could not abort a multipart upload; the bucket's lifecycle rule must remove it");
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, body: ByteStream, max_bytes: u64) -> Result<StoredBlob, MediaError> {
        let tmp = Path::from(format!(
            "{}tmp/{:032x}",
            self.prefix,
            rand::random::<u128>()
        ));
        let mut upload = Upload {
            multipart: timed("create_multipart", self.store.put_multipart(&tmp))
                .await
                .map_err(unavailable)?,
            hasher: Some(Sha256::new()),
            sending: None,
        };
        let mut blocks = Blocks::new(body, self.part_size, max_bytes);
        let received: Result<(), MediaError> = async {
            loop {
                // A part's buffer (its share of the budget) is taken before its bytes are read.
                let mut part = self.parts.take().await?;
                let got = blocks.fill(&mut part.buf).await?;
                // A multipart upload needs one part, even an empty one.
                if got || blocks.size() == 0 {
                    upload.part(Bytes::from_owner(part)).await?;
                }
                if !got {
                    break;
                }
            }
            upload.sent().await
        }
        .await;
        if let Err(error) = received {
            upload.abort().await;
            return Err(error);
        }
        timed("complete_multipart", upload.multipart.complete())
            .await
            .map_err(unavailable)?;
        let sha256: String = upload
            .hasher
            .take()
            .unwrap_or_default()
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let target = self.blob_path(&sha256);
        // Same bytes already stored: keep them. Otherwise copy ours into place.
        let placed = match timed("head", self.store.head(&target)).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                timed("copy", self.store.copy(&tmp, &target)).await
            }
            Err(error) => Err(error),
        };
        let _ = timed("delete", self.store.delete(&tmp)).await;
        placed.map_err(unavailable)?;
        Ok(StoredBlob {
            sha256,
            size: blocks.size(),
        })
    }

    async fn open(&self, sha256: &str) -> Result<Option<Box<dyn BlobReader>>, MediaError> {
        if !is_blob_name(sha256) {
            return Ok(None);
        }
        let path = self.blob_path(sha256);
        match timed("head", self.store.head(&path)).await {
            Ok(meta) => Ok(Some(Box::new(S3Blob {
                store: self.store.clone(),
                path,
                size: meta.size,
            }))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn ready(&self) -> Result<(), MediaError> {
        self.check().await
    }

    async fn list(&self) -> Result<Vec<StoredBlob>, MediaError> {
        let blobs = Path::from(format!("{}blobs", self.prefix));
        let listing = self
            .store
            .list(Some(&blobs))
            .try_filter_map(|meta| {
                let blob = meta
                    .location
                    .filename()
                    .filter(|name| is_blob_name(name))
                    .map(|name| StoredBlob {
                        sha256: name.to_owned(),
                        size: meta.size,
                    });
                std::future::ready(Ok(blob))
            })
            .try_collect::<Vec<_>>();
        let mut found = timed("list", listing).await.map_err(unavailable)?;
        found.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        Ok(found)
    }

    async fn remove(&self, sha256: &str) -> Result<(), MediaError> {
        if !is_blob_name(sha256) {
            return Ok(());
        }
        match timed("delete", self.store.delete(&self.blob_path(sha256))).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }
}

/// An object in the bucket, opened (its size known from a HEAD).
struct S3Blob {
    store: Arc<AmazonS3>,
    path: Path,
    size: u64,
}

impl BlobReader for S3Blob {
    fn size(&self) -> u64 {
        self.size
    }

    fn stream(self: Box<Self>, range: Range<u64>) -> ByteStream {
        let Self { store, path, .. } = *self;
        let opened = async move {
            let options = GetOptions {
                range: Some(range.into()),
                ..GetOptions::default()
            };
            timed("get", store.get_opts(&path, options))
                .await
                .map(|got| got.into_stream().map_err(io::Error::other))
                .map_err(io::Error::other)
        };
        Box::pin(futures_util::stream::once(opened).try_flatten())
    }
}
