//! The result of one load run: what `quire-bench load --json` prints and what
//! `quire-bench report` reads back. Pure data plus the arithmetic that builds it, so the
//! figures can be unit-tested without a socket.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// One load run, measured over its window (warm-up excluded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub url: String,
    pub method: String,
    pub connections: usize,
    /// Requests per second asked for (open loop); `None` for a closed loop.
    pub rate: Option<f64>,
    /// Length of the measured window, seconds.
    pub duration_s: f64,
    pub warmup_s: f64,
    /// Responses received in the window, whatever their status.
    pub responses: u64,
    /// Responses per second over the window.
    pub rps: f64,
    pub latency_us: Latency,
    pub errors: Errors,
    /// The server's CPU cost, when `--server-pid` was given.
    pub server_cpu: Option<CpuCost>,
    /// The load generator's own CPU cost: near one core means the client was the bottleneck.
    pub client_cpu: CpuCost,
}

/// Latency percentiles in microseconds. In an open loop they count from each request's
/// intended send time, so time spent queueing behind a slow server is included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    /// Summarises a histogram of microseconds; all zero when it is empty.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            mean: histogram.mean(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }
}

/// Failed requests by kind, in the window. A response counts as a success only with the
/// status the run expects (any 2xx unless `--expect-status` says otherwise) and, with
/// `--expect-body`, a body containing the expected text; failed responses still count as
/// responses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    pub connect: u64,
    pub io: u64,
    pub timeout: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// Any other status the run did not expect (1xx, 3xx, or a 2xx other than the expected).
    #[serde(default)]
    pub status_other: u64,
    /// The expected status with a body lacking the expected text.
    #[serde(default)]
    pub body: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect
            + self.io
            + self.timeout
            + self.status_4xx
            + self.status_5xx
            + self.status_other
            + self.body
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (connect {}, io {}, timeout {}, 4xx {}, 5xx {}, other status {}, body {})",
            self.total(),
            self.connect,
            self.io,
            self.timeout,
            self.status_4xx,
            self.status_5xx,
            self.status_other,
            self.body
        )
    }
}

/// CPU time a process spent in the window, and per response.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuCost {
    pub cpu_s: f64,
    /// Share of one core over the window (1.0 = one core busy all the time).
    pub cores: f64,
    pub us_per_request: Option<f64>,
}

impl CpuCost {
    pub fn new(cpu: Duration, window: Duration, responses: u64) -> Self {
        let cpu_us = cpu.as_secs_f64() * 1e6;
        Self {
            cpu_s: cpu.as_secs_f64(),
            cores: cpu.as_secs_f64() / window.as_secs_f64().max(f64::EPSILON),
            us_per_request: (responses > 0).then(|| cpu_us / responses as f64),
        }
    }
}

impl Summary {
    /// The human-readable result table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |key: &str, value: String| out.push_str(&format!("{key:<22} {value}\n"));
        row("target", format!("{} {}", self.method, self.url));
        let mode = match self.rate {
            Some(rate) => format!("open loop at {rate} req/s"),
            None => "closed loop".to_owned(),
        };
        row(
            "load",
            format!(
                "{} connections, {mode}, {}s measured after {}s warm-up",
                self.connections, self.duration_s, self.warmup_s
            ),
        );
        row("responses", self.responses.to_string());
        row("throughput", format!("{:.0} req/s", self.rps));
        let l = &self.latency_us;
        row(
            "latency (µs)",
            format!(
                "p50 {} p90 {} p99 {} p99.9 {} max {} mean {:.0}",
                l.p50, l.p90, l.p99, l.p999, l.max, l.mean
            ),
        );
        row("errors", self.errors.to_string());
        if let Some(server) = &self.server_cpu {
            row("server CPU", cpu_line(server));
        }
        row("client CPU", cpu_line(&self.client_cpu));
        out
    }
}

fn cpu_line(cost: &CpuCost) -> String {
    let per_request = cost
        .us_per_request
        .map_or_else(|| "n/a".to_owned(), |us| format!("{us:.1}"));
    format!(
        "{per_request} µs/req ({:.2} s, {:.2} cores)",
        cost.cpu_s, cost.cores
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let l = Latency::from_histogram(&histogram(1..=1000));
        assert_eq!(l.p50, 500);
        assert_eq!(l.p90, 900);
        assert_eq!(l.p99, 990);
        assert_eq!(l.p999, 999);
        assert_eq!(l.max, 1000);
        assert!((l.mean - 500.5).abs() < 1.0);
    }

    #[test]
    fn one_outlier_shows_in_the_tail_only() {
        let l = Latency::from_histogram(&histogram(std::iter::repeat_n(100, 999).chain([50_000])));
        assert_eq!(l.p50, 100);
        assert_eq!(l.p99, 100);
        // 3 significant digits: the outlier is reported within 0.1%.
        assert!(l.max.abs_diff(50_000) <= 50);
        assert!(l.p999 <= 100 || l.p999.abs_diff(50_000) <= 50);
    }

    #[test]
    fn empty_histogram_is_all_zero() {
        assert_eq!(Latency::from_histogram(&histogram([])), Latency::default());
    }

    #[test]
    fn cpu_cost_per_request() {
        let cost = CpuCost::new(Duration::from_secs(2), Duration::from_secs(4), 40_000);
        assert_eq!(cost.us_per_request, Some(50.0));
        assert!((cost.cores - 0.5).abs() < 1e-9);
        assert_eq!(
            CpuCost::new(Duration::ZERO, Duration::from_secs(1), 0).us_per_request,
            None
        );
    }

    #[test]
    fn errors_add_up() {
        let e = Errors {
            connect: 1,
            io: 2,
            timeout: 3,
            status_4xx: 4,
            status_5xx: 5,
            status_other: 6,
            body: 7,
        };
        assert_eq!(e.total(), 28);
        assert_eq!(
            e.to_string(),
            "28 (connect 1, io 2, timeout 3, 4xx 4, 5xx 5, other status 6, body 7)"
        );
    }
}
