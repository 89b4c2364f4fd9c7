//! [`FileWindow`]: a mapped window of a file, known by its address while it lives, so a
//! socket that is asked to write its bytes can send them from the file instead.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use memmap2::Mmap;

/// A registered window: where its bytes come from.
struct Region {
    /// One past its last address.
    end: usize,
    file: Arc<File>,
    /// The file offset of its first byte.
    offset: u64,
}

/// Every live window, by first address. Windows never overlap: each is a mapping of its
/// own, and a window leaves the registry before its mapping is undone.
static REGIONS: RwLock<BTreeMap<usize, Region>> = RwLock::new(BTreeMap::new());
/// How many windows are registered, so sockets skip the lookup when none is.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// A read-only mapping of a file region whose bytes can be sent with `sendfile(2)`.
///
/// Give it to `Bytes::from_owner`: any `Bytes` sliced from it is recognized by
/// [`ZeroCopyStream`](crate::ZeroCopyStream), and any other writer copies it as usual.
pub struct FileWindow {
    map: Mmap,
    start: usize,
}

impl FileWindow {
    /// Registers `map`, which must map `file` from `offset` (so its bytes are the file's):
    /// the same promise that made mapping the file sound, that the file does not change
    /// while mapped, is what makes sending it from the file return the same bytes.
    pub fn new(map: Mmap, file: Arc<File>, offset: u64) -> Self {
        let start = map.as_ptr() as usize;
        if !map.is_empty() {
            let mut regions = REGIONS.write().unwrap_or_else(PoisonError::into_inner);
            let region = Region {
                end: start + map.len(),
                file,
                offset,
            };
            regions.insert(start, region);
            LIVE.fetch_add(1, Ordering::Relaxed);
        }
        Self { map, start }
    }
}

impl AsRef<[u8]> for FileWindow {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for FileWindow {
    /// Leaves the registry; the mapping itself is undone after this, when `map` drops.
    fn drop(&mut self) {
        if !self.map.is_empty() {
            let mut regions = REGIONS.write().unwrap_or_else(PoisonError::into_inner);
            regions.remove(&self.start);
            LIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Where a slice's bytes lie in a file.
pub(crate) struct InFile {
    pub file: Arc<File>,
    pub offset: u64,
}

/// The file behind `bytes` if they lie wholly inside a live [`FileWindow`]. The caller holds
/// `bytes`, so the window cannot be dropped while this looks it up.
pub(crate) fn find(bytes: &[u8]) -> Option<InFile> {
    if bytes.is_empty() || LIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let start = bytes.as_ptr() as usize;
    let regions = REGIONS.read().unwrap_or_else(PoisonError::into_inner);
    let (&base, region) = regions.range(..=start).next_back()?;
    (start + bytes.len() <= region.end).then(|| InFile {
        file: region.file.clone(),
        offset: region.offset + (start - base) as u64,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write as _;

    use super::*;

    /// A window over `len` bytes of a file holding `content`, from `offset`. Its memory is
    /// an anonymous mapping holding the same bytes (mapping the file itself takes `unsafe`).
    pub(crate) fn window(content: &[u8], offset: u64, len: usize) -> FileWindow {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        let start = offset as usize;
        let mut memory = memmap2::MmapMut::map_anon(len).unwrap();
        memory.copy_from_slice(&content[start..start + len]);
        FileWindow::new(memory.make_read_only().unwrap(), Arc::new(file), offset)
    }

    #[test]
    fn a_slice_of_a_window_is_found_at_its_file_offset() {
        let content: Vec<u8> = (0..3 * 4096).map(|i| (i % 251) as u8).collect();
        let window = window(&content, 4096, 8192);
        let bytes = window.as_ref();
        assert_eq!(bytes, &content[4096..]);
        let found = find(&bytes[100..5000]).expect("inside the window");
        assert_eq!(found.offset, 4096 + 100);
        assert!(find(bytes).is_some(), "the whole window");
        let other = content.clone();
        assert!(find(&other[..10]).is_none(), "memory that is no window");
        let ptr = bytes[100..].as_ptr() as usize;
        drop(window);
        // The address is gone from the registry with the window.
        let regions = REGIONS.read().unwrap();
        assert!(
            regions
                .range(..=ptr)
                .next_back()
                .is_none_or(|(_, r)| r.end <= ptr)
        );
    }
}
