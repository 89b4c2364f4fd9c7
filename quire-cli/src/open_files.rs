//! The open-files budget: at start quire raises its soft `RLIMIT_NOFILE` to the hard limit
//! (a shell's common soft limit of 1,024 would fail after about a thousand sockets), and the
//! connection ceilings that are not given default to what that budget holds.

/// Descriptors kept for everything that is not a client connection: the database (pool,
/// SQLite files), media files being read or written, the listener, logs, Redis.
const RESERVED: u64 = 512;

/// The fewest connections a default ceiling allows, however low the limit.
const FLOOR: usize = 64;

/// The soft limit before and after raising it to the hard one, and the hard one; `None`
/// when the limit cannot be read (the ceilings then keep their fixed fallbacks).
pub fn raise() -> Option<(u64, u64, u64)> {
    let (before, hard) = rlimit::Resource::NOFILE.get().ok()?;
    let now = rlimit::increase_nofile_limit(hard).unwrap_or(before);
    Some((before, now, hard))
}

/// Client connections that fit in `open_files` descriptors with [`RESERVED`] kept aside.
pub fn connection_budget(open_files: u64) -> usize {
    usize::try_from(open_files.saturating_sub(RESERVED))
        .unwrap_or(usize::MAX)
        .max(FLOOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_descriptors_for_everything_else() {
        assert_eq!(connection_budget(1024), 512);
        assert_eq!(connection_budget(20_000), 19_488);
        assert_eq!(connection_budget(100), FLOOR);
    }
}
