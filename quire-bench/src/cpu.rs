//! CPU time of a process, read from `/proc/PID/stat`, to report the server's CPU cost per
//! request: the primary figure of the benchmarks, because it stays stable on a noisy machine
//! where throughput and latency do not.
//!
//! Linux only; no unsafe code (`sysconf` would need it), so the clock tick comes from
//! `getconf CLK_TCK` and falls back to 100, its value on every mainstream Linux build.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

/// User plus system CPU time of a process, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTicks(pub u64);

/// Reads the CPU time used so far by process `pid` (`self` for this process).
pub fn read(pid: &str) -> anyhow::Result<CpuTicks> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat(&stat).with_context(|| format!("parsing {path}"))
}

/// Extracts `utime + stime` (fields 14 and 15) from the text of `/proc/PID/stat`.
///
/// Field 2 is the command name in parentheses and may itself hold spaces and parentheses,
/// so counting starts after the *last* `)`.
pub fn parse_stat(stat: &str) -> anyhow::Result<CpuTicks> {
    let Some(close) = stat.rfind(')') else {
        bail!("no `)` closing the command name");
    };
    // After ") " come fields 3 (state), 4, 5, ...: utime is field 14, i.e. index 11 here.
    let mut fields = stat[close + 1..].split_ascii_whitespace().skip(11);
    let mut next = |name: &str| -> anyhow::Result<u64> {
        fields
            .next()
            .with_context(|| format!("missing {name}"))?
            .parse()
            .with_context(|| format!("bad {name}"))
    };
    let utime = next("utime")?;
    let stime = next("stime")?;
    Ok(CpuTicks(utime + stime))
}

/// Clock ticks per second, as `getconf CLK_TCK` says, else 100.
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// The CPU time between two readings.
pub fn elapsed(before: CpuTicks, after: CpuTicks, ticks_per_second: u64) -> Duration {
    let ticks = after.0.saturating_sub(before.0);
    Duration::from_micros(ticks * 1_000_000 / ticks_per_second.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (quire) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                        250 75 0 0 20 0 5 0 1000 123456 789 18446744073709551615";

    #[test]
    fn sums_user_and_system_time() {
        assert_eq!(parse_stat(STAT).unwrap(), CpuTicks(325));
    }

    #[test]
    fn command_names_with_spaces_and_parentheses_do_not_shift_fields() {
        let stat = STAT.replace("(quire)", "(a (weird) name)");
        assert_eq!(parse_stat(&stat).unwrap(), CpuTicks(325));
    }

    #[test]
    fn truncated_lines_are_errors() {
        assert!(parse_stat("1 (x) S 1 2 3").is_err());
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn reads_this_process() {
        assert!(read("self").is_ok());
    }

    #[test]
    fn converts_ticks_to_time() {
        let d = elapsed(CpuTicks(100), CpuTicks(350), 100);
        assert_eq!(d, Duration::from_millis(2500));
        // A counter never goes backwards, but a reading of another process might be garbage.
        assert_eq!(elapsed(CpuTicks(9), CpuTicks(1), 100), Duration::ZERO);
    }
}
