//! [`FsBlobStore`]: blobs as files under `<dir>/blobs/<first two hex>/<sha256>`, uploads staged
//! in `<dir>/tmp/`.
//!
//! Uploads are written to a temporary file, fsynced, and renamed into place only when complete
//! (then the directory is fsynced), so a blob file is always whole; while an upload streams in,
//! what it wrote so far is flushed in the background, so the final fsync finds little left.
//! Downloads map the file a window at a time, read in from disk on the blocking pool, and the
//! socket write copies straight from the page cache (no read into a heap buffer, which the
//! allocator would keep around per thread). Every disk operation runs on tokio's blocking pool
//! one chunk at a time, with the next chunk's network transfer overlapping the previous one's
//! disk work: no async worker thread ever blocks on the disk, and no blocking thread is held
//! while a slow client sends or receives. Memory per transfer is bounded by two chunks,
//! however large the file.

use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use quire_zerocopy::FileWindow;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use tokio::task::{JoinHandle, spawn_blocking};

use crate::{BlobReader, BlobStore, Blocks, ByteStream, MediaError, StoredBlob, is_blob_name};

/// Bytes written per blocking call (uploads): an upload holds a chunk being filled and one
/// being written.
const WRITE_CHUNK: usize = 128 * 1024;
/// Bytes mapped per blocking call (downloads): one window is sent while the next is mapped.
/// Large, so that mapping, unmapping and the hand-off to the blocking pool cost little per
/// byte; a window of pages already in the page cache is never populated (a socket sends it
/// with `sendfile(2)` without touching the mapping), so its size is not resident memory.
const READ_CHUNK: usize = 2 * 1024 * 1024;

/// A blob store in a local directory.
pub struct FsBlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl FsBlobStore {
    /// Opens (creating) the store in `dir` for the server that owns it, and removes uploads a
    /// crash left half-written.
    pub async fn open(dir: &Path) -> io::Result<Self> {
        let store = Self::attach(dir).await?;
        let tmp = store.tmp.clone();
        blocking(move || {
            for entry in std::fs::read_dir(&tmp)? {
                let path = entry?.path();
                tracing::info!(path = %path.display(), "removing an unfinished upload");
                std::fs::remove_file(path)?;
            }
            Ok(())
        })
        .await?;
        Ok(store)
    }

    /// Opens (creating) the store in `dir` without touching what is in it: for tools that
    /// run beside a serving quire, whose uploads in progress must stay.
    pub async fn attach(dir: &Path) -> io::Result<Self> {
        let blobs = dir.join("blobs");
        let tmp = dir.join("tmp");
        let (b, t) = (blobs.clone(), tmp.clone());
        blocking(move || {
            std::fs::create_dir_all(&b)?;
            std::fs::create_dir_all(&t)
        })
        .await?;
        Ok(Self { blobs, tmp })
    }

    fn path_of(&self, sha256: &str) -> PathBuf {
        self.blobs.join(&sha256[..2]).join(sha256)
    }
}

/// Runs blocking file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    spawn_blocking(work)
        .await
        .map_err(|e| io::Error::other(format!("blocking task failed: {e}")))?
}

/// An upload in progress: the staged file and the running hash.
struct Staged {
    file: NamedTempFile,
    hasher: Sha256,
}

impl Staged {
    fn append(mut self, data: &[u8]) -> io::Result<Self> {
        self.hasher.update(data);
        self.file.as_file_mut().write_all(data)?;
        Ok(self)
    }
}

/// Bytes written between background flushes: the disk writes an upload back while more of it
/// arrives, so the fsync that makes it durable finds little left to do.
const FLUSH_EVERY: u64 = 16 * 1024 * 1024;

/// Writes chunks one blocking call at a time, keeping at most one write in flight, and
/// flushes what was written in the background every [`FLUSH_EVERY`] bytes.
struct Writer {
    idle: Option<Staged>,
    in_flight: Option<JoinHandle<io::Result<Staged>>>,
    /// The staged file again (a second descriptor), for flushing beside the writes.
    flush_handle: Arc<File>,
    flushing: Option<JoinHandle<io::Result<()>>>,
    unflushed: u64,
}

impl Writer {
    async fn take(&mut self) -> io::Result<Staged> {
        match (self.idle.take(), self.in_flight.take()) {
            (Some(staged), _) => Ok(staged),
            (None, Some(write)) => write
                .await
                .map_err(|e| io::Error::other(format!("write task failed: {e}")))?,
            (None, None) => Err(io::Error::other("upload writer lost its file")),
        }
    }

    async fn write(&mut self, data: Bytes) -> io::Result<()> {
        let staged = self.take().await?;
        self.unflushed += data.len() as u64;
        self.in_flight = Some(spawn_blocking(move || staged.append(&data)));
        if self.unflushed >= FLUSH_EVERY && self.flushing.as_ref().is_none_or(|f| f.is_finished()) {
            self.flushed().await?;
            let file = self.flush_handle.clone();
            self.flushing = Some(spawn_blocking(move || file.sync_data()));
            self.unflushed = 0;
        }
        Ok(())
    }

    /// Waits for the background flush, if any. Its failure fails the upload: the descriptors
    /// share one open file, so the final fsync would not report the same error again.
    async fn flushed(&mut self) -> io::Result<()> {
        match self.flushing.take() {
            Some(flush) => flush
                .await
                .map_err(|e| io::Error::other(format!("flush task failed: {e}")))?,
            None => Ok(()),
        }
    }

    /// Drops the staged file (removing it) off the async threads, after any write in flight.
    async fn discard(mut self) {
        let _ = self.flushed().await;
        if let Ok(staged) = self.take().await {
            let _ = spawn_blocking(move || drop(staged)).await;
        }
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, body: ByteStream, max_bytes: u64) -> Result<StoredBlob, MediaError> {
        let tmp = self.tmp.clone();
        let (file, flush_handle) = blocking(move || {
            let file = tempfile::Builder::new()
                .prefix("upload-")
                .tempfile_in(tmp)?;
            let again = file.as_file().try_clone()?;
            Ok((file, again))
        })
        .await?;
        let mut writer = Writer {
            idle: Some(Staged {
                file,
                hasher: Sha256::new(),
            }),
            in_flight: None,
            flush_handle: Arc::new(flush_handle),
            flushing: None,
            unflushed: 0,
        };
        let mut blocks = Blocks::new(body, WRITE_CHUNK, max_bytes);
        let received: Result<(), MediaError> = async {
            while let Some(block) = blocks.next().await? {
                writer.write(block).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = received {
            writer.discard().await;
            return Err(e);
        }
        let staged = writer.take().await?;
        writer.flushed().await?;
        let blobs = self.blobs.clone();
        let size = blocks.size();
        let stored = blocking(move || commit(staged, size, &blobs)).await?;
        Ok(stored)
    }

    async fn open(&self, sha256: &str) -> Result<Option<Box<dyn BlobReader>>, MediaError> {
        if !is_blob_name(sha256) {
            return Ok(None);
        }
        let path = self.path_of(sha256);
        let opened = blocking(move || match File::open(&path) {
            Ok(file) => {
                let size = file.metadata()?.len();
                Ok(Some((file, size)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await?;
        Ok(opened.map(|(file, size)| {
            Box::new(FsBlob {
                file: Arc::new(file),
                size,
            }) as Box<dyn BlobReader>
        }))
    }

    async fn list(&self) -> Result<Vec<StoredBlob>, MediaError> {
        let blobs = self.blobs.clone();
        let mut found = blocking(move || list_blobs(&blobs)).await?;
        found.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        Ok(found)
    }

    async fn remove(&self, sha256: &str) -> Result<(), MediaError> {
        if !is_blob_name(sha256) {
            return Ok(());
        }
        let path = self.path_of(sha256);
        blocking(move || match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await?;
        Ok(())
    }
}

/// The blob files under `blobs/<first two hex>/`, skipping anything not named like a blob.
fn list_blobs(blobs: &Path) -> io::Result<Vec<StoredBlob>> {
    let mut found = Vec::new();
    for shard in std::fs::read_dir(blobs)? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(shard.path())? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|name| is_blob_name(name)) else {
                continue;
            };
            let meta = entry.metadata()?;
            if meta.is_file() {
                found.push(StoredBlob {
                    sha256: name.to_owned(),
                    size: meta.len(),
                });
            }
        }
    }
    Ok(found)
}

/// Makes a complete upload durable and puts it in place under its hash.
fn commit(staged: Staged, size: u64, blobs: &Path) -> io::Result<StoredBlob> {
    let Staged { file, hasher } = staged;
    let sha256: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = blobs.join(&sha256[..2]);
    std::fs::create_dir_all(&dir)?;
    let target = dir.join(&sha256);
    if target.exists() {
        // Same bytes already stored: keep the existing blob (refreshing its age), drop ours.
        File::options()
            .write(true)
            .open(&target)?
            .set_modified(SystemTime::now())?;
        drop(file);
    } else {
        file.as_file().sync_all()?;
        file.persist(&target).map_err(|e| e.error)?;
        File::open(&dir)?.sync_all()?;
    }
    Ok(StoredBlob { sha256, size })
}

/// `len` bytes of `file` from `offset` as a window that is safe to send from an async thread:
/// mapped into memory, and in the page cache, so nothing that sends them waits on the disk.
/// When every page is cached already (the common case for a blob being downloaded) the
/// window is made here, on the caller's thread: mapping without populating and `cachestat(2)`
/// do no I/O. Otherwise its pages are read in on the blocking pool first.
///
/// On a plain HTTP/1 connection the socket recognizes the window and sends it from the file
/// with `sendfile(2)` (quire-zerocopy) without touching the mapping; over TLS the write copies
/// straight from the page cache (minor faults only: the pages are resident). The mapping is
/// undone when the last `Bytes` pointing into it is dropped.
///
/// Under memory pressure the kernel may evict a page between the check and the send; the
/// send then reads it back itself. That is rare, and a populated mapping has the same gap,
/// since its pages can be reclaimed too.
fn window(file: Arc<File>, offset: u64, len: usize) -> Window {
    if residency::all_cached(&file, offset, len) {
        return Window::Ready(
            map(&file, offset, len)
                .map(|map| Bytes::from_owner(FileWindow::new(map, file, offset))),
        );
    }
    Window::Reading(spawn_blocking(move || {
        let map = map(&file, offset, len)?;
        residency::read_in(&map);
        Ok(Bytes::from_owner(FileWindow::new(map, file, offset)))
    }))
}

/// A window made at once, or being read in on the blocking pool.
enum Window {
    Ready(io::Result<Bytes>),
    Reading(JoinHandle<io::Result<Bytes>>),
}

impl Window {
    async fn bytes(self) -> io::Result<Bytes> {
        match self {
            Window::Ready(bytes) => bytes,
            Window::Reading(task) => task
                .await
                .unwrap_or_else(|e| Err(io::Error::other(format!("read task failed: {e}")))),
        }
    }
}

/// Maps `len` bytes of `file` from `offset`, without reading them in.
#[allow(unsafe_code)]
fn map(file: &File, offset: u64, len: usize) -> io::Result<memmap2::Mmap> {
    // SAFETY: a mapped file must not change while mapped. Blob files never do: each is written
    // under a temporary name, fsynced and renamed into place under the hash of its bytes, and
    // nothing in quire writes to or truncates it afterwards (removal unlinks it, and the
    // mapping keeps the unlinked inode alive).
    unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map(file)
    }
}

/// Whether a window's pages are in the page cache, and reading them in when not.
mod residency {
    use std::fs::File;
    #[cfg(target_os = "linux")]
    use std::os::fd::AsRawFd as _;

    use memmap2::Mmap;

    /// Whether every page of `len` bytes of `file` from `offset` is in the page cache, asked
    /// with one `cachestat(2)` (Linux 6.5+; one walk of the file's cache, no page touched):
    /// then sending or copying them never waits on the disk. Any failure (an older kernel)
    /// answers `false`, and the caller reads the pages in.
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    pub(super) fn all_cached(file: &File, offset: u64, len: usize) -> bool {
        /// `struct cachestat_range` of the kernel's uapi.
        #[repr(C)]
        struct Range {
            off: u64,
            len: u64,
        }
        /// `struct cachestat` of the kernel's uapi.
        #[repr(C)]
        #[derive(Default)]
        struct Stat {
            nr_cache: u64,
            nr_dirty: u64,
            nr_writeback: u64,
            nr_evicted: u64,
            nr_recently_evicted: u64,
        }
        /// The syscall's number, the same on every architecture (it is newer than the
        /// unified table).
        const SYS_CACHESTAT: libc::c_long = 451;
        if len == 0 {
            return true;
        }
        let range = Range {
            off: offset,
            len: len as u64,
        };
        let mut stat = Stat::default();
        // SAFETY: sysconf only reads a constant. cachestat reads `range` and writes `stat`,
        // both live, properly aligned `#[repr(C)]` values laid out as the kernel's uapi
        // structs, and borrows the descriptor of `file`, which is open for the whole call; the
        // flags argument must be 0. Nothing else is read or written, and an unknown syscall
        // (an older kernel) only returns ENOSYS.
        let (page, answer) = unsafe {
            (
                libc::sysconf(libc::_SC_PAGESIZE),
                libc::syscall(
                    SYS_CACHESTAT,
                    file.as_raw_fd(),
                    &range as *const Range,
                    &mut stat as *mut Stat,
                    0u32,
                ),
            )
        };
        let Ok(page) = u64::try_from(page) else {
            return false;
        };
        let pages = (offset + len as u64 - 1) / page - offset / page + 1;
        answer == 0 && stat.nr_cache >= pages
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn all_cached(_: &File, _: u64, _: usize) -> bool {
        false
    }

    /// Reads `map`'s pages in from the disk (and maps them): on Linux 5.14+ with one
    /// `madvise(MADV_POPULATE_READ)`, elsewhere by reading a byte of every page.
    pub(super) fn read_in(map: &Mmap) {
        #[cfg(target_os = "linux")]
        if map.advise(memmap2::Advice::PopulateRead).is_ok() {
            return;
        }
        let touched = map.iter().step_by(4096).fold(0u8, |acc, b| acc ^ b);
        std::hint::black_box(touched);
    }
}

/// An open blob file.
struct FsBlob {
    file: Arc<File>,
    size: u64,
}

impl BlobReader for FsBlob {
    fn size(&self) -> u64 {
        self.size
    }

    fn stream(self: Box<Self>, range: Range<u64>) -> ByteStream {
        let file = self.file;
        let read = move |offset: u64, end: u64| {
            let len = (end - offset).min(READ_CHUNK as u64) as usize;
            window(file.clone(), offset, len)
        };
        // Keep one window ahead of the socket so disk and network overlap.
        let first = (range.start < range.end).then(|| read(range.start, range.end));
        let stream = futures_util::stream::unfold(
            (first, range.start, range.end),
            move |(pending, offset, end)| {
                let read = read.clone();
                async move {
                    let chunk = match pending?.bytes().await {
                        Ok(chunk) => chunk,
                        Err(e) => return Some((Err(e), (None, end, end))),
                    };
                    let next_offset = offset + chunk.len() as u64;
                    let next = (next_offset < end).then(|| read(next_offset, end));
                    Some((Ok(chunk), (next, next_offset, end)))
                }
            },
        );
        Box::pin(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    fn body(chunks: Vec<io::Result<Bytes>>) -> ByteStream {
        Box::pin(futures_util::stream::iter(chunks))
    }

    /// A blob whose pages the kernel dropped from its cache is not sent from an async
    /// thread as is: the check says so, and reading the window in puts it back.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_window_counts_as_cached_only_once_its_pages_are_read_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let len = 1 << 20;
        std::fs::write(&path, vec![7u8; len]).unwrap();
        let file = File::open(&path).unwrap();
        assert!(residency::all_cached(&file, 0, len), "just written");
        file.sync_all().unwrap();
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        assert!(
            !residency::all_cached(&file, 0, len),
            "dropped from the cache"
        );
        assert!(
            !residency::all_cached(&file, 4096, 100),
            "an unaligned range inside it"
        );
        let window = map(&file, 0, len).unwrap();
        residency::read_in(&window);
        assert!(residency::all_cached(&file, 0, len), "read in");
        assert!(
            residency::all_cached(&file, 4095, 2),
            "a range across two pages"
        );
    }

    async fn read_all(store: &FsBlobStore, sha: &str, range: Range<u64>) -> Vec<u8> {
        let reader = store.open(sha).await.unwrap().unwrap();
        let mut stream = reader.stream(range);
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    fn tmp_is_empty(dir: &Path) -> bool {
        std::fs::read_dir(dir.join("tmp")).unwrap().next().is_none()
    }

    #[tokio::test]
    async fn round_trip_with_ranges_and_dedup() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let data: Vec<u8> = (0..(3 * READ_CHUNK + 123))
            .map(|i| (i % 251) as u8)
            .collect();
        let chunks = data
            .chunks(10_000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let stored = store.put(body(chunks), u64::MAX).await.unwrap();
        assert_eq!(stored.size, data.len() as u64);
        let expected: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(stored.sha256, expected);
        assert_eq!(
            read_all(&store, &stored.sha256, 0..data.len() as u64).await,
            data
        );
        let mid = READ_CHUNK as u64 - 5..2 * READ_CHUNK as u64 + 7;
        assert_eq!(
            read_all(&store, &stored.sha256, mid.clone()).await,
            data[mid.start as usize..mid.end as usize]
        );
        let again = store
            .put(body(vec![Ok(Bytes::from(data.clone()))]), u64::MAX)
            .await
            .unwrap();
        assert_eq!(again, stored);
        assert!(tmp_is_empty(dir.path()));
    }

    #[tokio::test]
    async fn too_large_and_aborted_uploads_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let big = vec![
            Ok(Bytes::from(vec![1u8; WRITE_CHUNK])),
            Ok(Bytes::from(vec![2u8; WRITE_CHUNK])),
        ];
        let err = store
            .put(body(big), WRITE_CHUNK as u64 + 1)
            .await
            .unwrap_err();
        assert!(matches!(err, MediaError::TooLarge { .. }));
        let broken = vec![
            Ok(Bytes::from(vec![1u8; 2 * WRITE_CHUNK])),
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "client went away",
            )),
        ];
        let err = store.put(body(broken), u64::MAX).await.unwrap_err();
        assert!(matches!(err, MediaError::Aborted(_)));
        assert!(tmp_is_empty(dir.path()));
        let blobs: Vec<_> = std::fs::read_dir(dir.path().join("blobs"))
            .unwrap()
            .collect();
        assert!(blobs.is_empty());
    }

    #[tokio::test]
    async fn unknown_and_malformed_names_are_absent() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        assert!(store.open(&"a".repeat(64)).await.unwrap().is_none());
        assert!(store.open("../../etc/passwd").await.unwrap().is_none());
        store.remove("../x").await.unwrap();
    }

    #[tokio::test]
    async fn leftover_uploads_are_cleaned_on_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("tmp/upload-crashed"), b"half").unwrap();
        FsBlobStore::open(dir.path()).await.unwrap();
        assert!(tmp_is_empty(dir.path()));
    }

    #[tokio::test]
    async fn attaching_keeps_uploads_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("tmp/upload-in-progress"), b"half").unwrap();
        FsBlobStore::attach(dir.path()).await.unwrap();
        assert!(!tmp_is_empty(dir.path()));
    }
}
