//! The part buffers of S3 uploads: a fixed number of buffers of one part each, shared by every
//! upload and reused. Taking one is the share of the memory budget (`--s3-upload-buffer-mib`):
//! all uploads together never hold more, and a buffer goes back to the pool, not to the
//! allocator, once its part is sent. (Freed to the allocator, each 8 MiB part stayed resident
//! for a while after it was sent, so RSS ran well past the budget.)

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::MediaError;

/// Buffers of `part_size` bytes, at most `count` of them in use at once.
pub(crate) struct PartPool {
    free: Mutex<Vec<Vec<u8>>>,
    permits: Arc<Semaphore>,
    part_size: usize,
}

impl std::fmt::Debug for PartPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartPool")
            .field("part_size", &self.part_size)
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

impl PartPool {
    pub(crate) fn new(count: usize, part_size: usize) -> Arc<Self> {
        Arc::new(Self {
            free: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(count.max(1))),
            part_size,
        })
    }

    /// An empty buffer with room for one part, once one is free (first come, first served).
    pub(crate) async fn take(self: &Arc<Self>) -> Result<PooledPart, MediaError> {
        let permit =
            self.permits.clone().acquire_owned().await.map_err(|_| {
                MediaError::Unavailable("the upload buffer pool is closed".to_owned())
            })?;
        let buf = self
            .free
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_else(|| Vec::with_capacity(self.part_size));
        Ok(PooledPart {
            buf,
            pool: self.clone(),
            _permit: permit,
        })
    }
}

/// A buffer of the pool; dropping it (and every `Bytes` made from it) returns it.
pub(crate) struct PooledPart {
    pub(crate) buf: Vec<u8>,
    pool: Arc<PartPool>,
    /// Released after the buffer is back in the pool (fields drop after `drop`).
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for PooledPart {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PooledPart {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if let Ok(mut free) = self.pool.free.lock() {
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn buffers_are_reused_and_bounded() {
        let pool = PartPool::new(2, 1024);
        let mut first = pool.take().await.unwrap();
        first.buf.extend_from_slice(b"part");
        let address = first.buf.as_ptr();
        let second = pool.take().await.unwrap();
        // A third waits until one is given back.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), pool.take())
                .await
                .is_err()
        );
        let bytes = bytes::Bytes::from_owner(first);
        drop(second);
        drop(bytes);
        let again = pool.take().await.unwrap();
        let other = pool.take().await.unwrap();
        assert!(again.buf.is_empty() && other.buf.is_empty());
        assert!(again.buf.as_ptr() == address || other.buf.as_ptr() == address);
        assert!(again.buf.capacity() >= 1024);
    }
}
