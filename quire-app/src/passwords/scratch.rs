//! argon2's working memory as an anonymous mapping of its own, returned to the kernel when
//! dropped.
//!
//! A hash needs `m_cost` KiB (19 MiB with OWASP's setting) for a few tens of milliseconds.
//! Taken from the global allocator, those pages stay in the process after the hash is done
//! (mimalloc, like most allocators, keeps freed memory for reuse), so a quire that served one
//! sign-in idles 20 MiB larger for good. A mapping of its own is unmapped on drop, and the
//! kernel zero-fills its pages lazily, so only the pages argon2 touches are ever resident.

use argon2::Block;
use memmap2::MmapMut;

/// `len` zeroed argon2 blocks in a private anonymous mapping.
pub(super) struct Blocks {
    map: MmapMut,
    len: usize,
}

impl Blocks {
    pub(super) fn new(len: usize) -> std::io::Result<Self> {
        let bytes = len
            .checked_mul(Block::SIZE)
            .ok_or_else(|| std::io::Error::other("argon2 memory size overflows"))?;
        // A zero-length mapping is an error; argon2 never asks for fewer than 8 blocks.
        let map = MmapMut::map_anon(bytes.max(1))?;
        Ok(Self { map, len })
    }
}

impl AsMut<[Block]> for Blocks {
    #[allow(unsafe_code)]
    fn as_mut(&mut self) -> &mut [Block] {
        // SAFETY: the mapping is page-aligned (so aligned for `Block`'s 64 bytes), holds
        // `len * Block::SIZE` bytes that this value owns exclusively for the borrow's lifetime,
        // and anonymous mappings start zeroed: all-zero bytes are a valid `Block` (an array
        // of `u64`s, no padding, no invalid bit patterns).
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().cast::<Block>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_zeroed_aligned_and_writable() {
        let mut blocks = Blocks::new(16).unwrap();
        let slice = blocks.as_mut();
        assert_eq!(slice.len(), 16);
        assert_eq!(slice.as_ptr() as usize % 64, 0);
        assert!(slice.iter().all(|b| b.as_ref().iter().all(|w| *w == 0)));
        slice[15].as_mut()[127] = 7;
        assert_eq!(slice[15].as_ref()[127], 7);
    }
}
