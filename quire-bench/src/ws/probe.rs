//! Memory readings from procfs and `ss`: a process's resident set (`/proc/PID/status`), the
//! kernel's TCP socket memory (`/proc/net/sockstat`) and the socket buffers of one server
//! port's connections (`ss -tmn`). Linux only; the parsers are pure and tested.

use std::process::Command;

use anyhow::{Context, bail};

/// Bytes of one kernel page, the unit of `/proc/net/sockstat`'s `mem`.
const PAGE: u64 = 4096;

/// Resident set size of process `pid` (`self` for this one), in bytes.
pub fn rss_bytes(pid: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS in {path}"))
}

/// `VmRSS:  123456 kB` -> bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The kernel's TCP socket memory (all sockets of the machine), in bytes.
pub fn tcp_socket_bytes() -> anyhow::Result<u64> {
    let sockstat =
        std::fs::read_to_string("/proc/net/sockstat").context("reading /proc/net/sockstat")?;
    parse_sockstat_mem(&sockstat)
        .map(|pages| pages * PAGE)
        .context("no `TCP: ... mem N` in /proc/net/sockstat")
}

/// `TCP: inuse 5 orphan 0 tw 0 alloc 7 mem 3` -> 3 (pages).
pub fn parse_sockstat_mem(sockstat: &str) -> Option<u64> {
    let line = sockstat.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_ascii_whitespace();
    words.find(|w| *w == "mem")?;
    words.next()?.parse().ok()
}

/// Socket memory of the established connections whose local port is `port`, as `ss -tm`
/// reports it: the sum over sockets of the receive and send queues' allocations plus the
/// forward allocation (`r + t + f + w + o + bl`), and how many sockets were seen.
pub fn port_socket_bytes(port: u16) -> anyhow::Result<(u64, u64)> {
    let out = Command::new("ss")
        .args([
            "-tmnH",
            "state",
            "established",
            "sport",
            "=",
            &format!(":{port}"),
        ])
        .output()
        .context("running ss")?;
    if !out.status.success() {
        bail!("ss failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(sum_skmem(&String::from_utf8_lossy(&out.stdout)))
}

/// Sums `skmem:(r0,rb131072,t0,tb2626560,f0,w0,o0,bl0,d0)` entries; returns (bytes, sockets).
pub fn sum_skmem(ss_output: &str) -> (u64, u64) {
    let mut bytes = 0;
    let mut sockets = 0;
    for entry in ss_output.split("skmem:(").skip(1) {
        let Some(fields) = entry.split(')').next() else {
            continue;
        };
        sockets += 1;
        for field in fields.split(',') {
            let name_len = field
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(field.len());
            let (name, value) = field.split_at(name_len);
            if matches!(name, "r" | "t" | "f" | "w" | "o" | "bl") {
                bytes += value.parse::<u64>().unwrap_or(0);
            }
        }
    }
    (bytes, sockets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss() {
        let status = "Name:\tquire\nVmPeak:\t  9000 kB\nVmRSS:\t   2048 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert!(rss_bytes("self").unwrap() > 0);
    }

    #[test]
    fn sockstat() {
        let text =
            "sockets: used 300\nTCP: inuse 5 orphan 0 tw 2 alloc 7 mem 31\nUDP: inuse 1 mem 4\n";
        assert_eq!(parse_sockstat_mem(text), Some(31));
        assert_eq!(parse_sockstat_mem("UDP: inuse 1 mem 4\n"), None);
    }

    #[test]
    fn skmem() {
        let text = "ESTAB 0 0 127.0.0.1:80 127.0.0.2:5 \n\t skmem:(r0,rb131072,t0,tb2626560,f4096,w0,o0,bl0,d0)\n\
                    ESTAB 0 0 127.0.0.1:80 127.0.0.2:6 \n\t skmem:(r768,rb131072,t0,tb2626560,f3328,w0,o0,bl0,d1)\n";
        assert_eq!(sum_skmem(text), (4096 + 768 + 3328, 2));
        assert_eq!(sum_skmem(""), (0, 0));
    }
}
