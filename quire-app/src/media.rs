//! Media: upload (streamed into the blob store), download, delete by the uploader.

use quire_domain::Timestamp;
use quire_media::{BlobReader, ByteStream, MediaError};
use quire_store::MediaRecord;

use crate::{App, AppError, AppResult, Viewer};

/// Content types accepted for upload. SVG is absent on purpose: it can carry scripts, and
/// media is served from quire's own origin.
pub const ALLOWED_MEDIA_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "application/pdf",
    "text/plain",
    "application/octet-stream",
];

/// An upload as it arrives.
pub struct MediaUpload {
    /// The `Content-Type` of the bytes (parameters such as `charset` are ignored).
    pub content_type: String,
    /// The length the client announced, if any: lets an oversized upload fail at once.
    pub declared_length: Option<u64>,
    pub body: ByteStream,
}

/// A media item ready to stream.
pub struct MediaDownload {
    pub media: MediaRecord,
    pub blob: Box<dyn BlobReader>,
}

/// `image/PNG; charset=x` → `image/png`, if accepted.
fn accepted_type(raw: &str) -> AppResult<&'static str> {
    let essence = raw
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    ALLOWED_MEDIA_TYPES
        .iter()
        .copied()
        .find(|allowed| *allowed == essence)
        .ok_or_else(|| {
            AppError::UnsupportedMediaType(format!(
                "must be one of {}",
                ALLOWED_MEDIA_TYPES.join(", ")
            ))
        })
}

/// Whether `id` could name a media item (32 lowercase hex digits); anything else is not found.
fn is_media_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn new_media_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl From<MediaError> for AppError {
    fn from(error: MediaError) -> Self {
        match error {
            MediaError::TooLarge { limit } => Self::TooLarge { limit },
            MediaError::Aborted(e) => Self::Interrupted(e),
            MediaError::Io(e) => Self::Internal(format!("media storage: {e}")),
            MediaError::Unavailable(e) => Self::MediaUnavailable(e),
        }
    }
}

impl App {
    pub async fn upload_media(
        &self,
        viewer: &Viewer,
        upload: MediaUpload,
    ) -> AppResult<MediaRecord> {
        let content_type = accepted_type(&upload.content_type)?;
        let limit = self.max_media_bytes;
        if upload.declared_length.is_some_and(|len| len > limit) {
            return Err(AppError::TooLarge { limit });
        }
        let blob = self.blobs.put(upload.body, limit).await?;
        let media = MediaRecord {
            id: new_media_id(),
            sha256: blob.sha256,
            size: blob.size,
            content_type: content_type.to_owned(),
            uploader: viewer.id(),
            created_at: Timestamp::now(),
        };
        let _lifecycle = self.blob_lifecycle.lock().await;
        // A delete of the last row naming these same bytes may have removed the blob between
        // our write and now; recording a row for missing bytes would lose data.
        if self.blobs.open(&media.sha256).await?.is_none() {
            return Err(AppError::Overloaded);
        }
        Ok(self.store.create_media(media).await?)
    }

    /// The record an id from a URL names; malformed ids are simply not found.
    async fn media_record(&self, id: &str) -> AppResult<MediaRecord> {
        if !is_media_id(id) {
            return Err(AppError::NotFound("media"));
        }
        self.store
            .media(id)
            .await?
            .ok_or(AppError::NotFound("media"))
    }

    pub async fn media(&self, id: &str) -> AppResult<MediaDownload> {
        let media = self.media_record(id).await?;
        let Some(blob) = self.blobs.open(&media.sha256).await? else {
            tracing::error!(id, sha256 = media.sha256, "media row without its blob");
            return Err(AppError::NotFound("media"));
        };
        Ok(MediaDownload { media, blob })
    }

    pub async fn delete_media(&self, viewer: &Viewer, id: &str) -> AppResult<()> {
        let media = self.media_record(id).await?;
        if media.uploader != viewer.id() {
            return Err(AppError::Forbidden("media"));
        }
        let _lifecycle = self.blob_lifecycle.lock().await;
        self.store.delete_media(id).await?;
        if !self.store.blob_in_use(&media.sha256).await? {
            self.blobs.remove(&media.sha256).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(accepted_type("image/png").unwrap(), "image/png");
        assert_eq!(accepted_type("Image/PNG; q=1").unwrap(), "image/png");
        assert_eq!(
            accepted_type("text/plain; charset=utf-8").unwrap(),
            "text/plain"
        );
        assert!(accepted_type("image/svg+xml").is_err());
        assert!(accepted_type("text/html").is_err());
        assert!(accepted_type("").is_err());
    }

    #[test]
    fn media_ids() {
        let id = new_media_id();
        assert!(is_media_id(&id), "{id}");
        assert_ne!(id, new_media_id());
        assert!(!is_media_id("../../../etc/passwd"));
        assert!(!is_media_id(&"A".repeat(32)));
    }
}
