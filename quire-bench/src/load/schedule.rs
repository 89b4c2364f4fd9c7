//! The open-loop schedule: fixed intended send times, decided before the run, so a slow
//! server cannot slow the client down and hide its own queueing (coordinated omission).
//!
//! Slot `s` of the whole run is intended at `s / rate`; slots are dealt round-robin over the
//! connections, so connection `c` owns slots `c, c + N, c + 2N, ...` and sends every `N / rate`
//! seconds, the connections staggered by `1 / rate`.
//!
//! Tokio's timer fires on millisecond ticks, so a request may leave up to ~1 ms after its
//! intended time and open-loop latencies carry that much client-side error; they are meant
//! for tails under load (tens of milliseconds), not for sub-millisecond medians.

use std::time::Duration;

/// Intended send times for `rate` requests per second over `connections` connections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    connections: u64,
}

impl Schedule {
    /// `rate` must be positive and finite, `connections` at least 1.
    pub fn new(rate: f64, connections: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number of requests per second"
        );
        anyhow::ensure!(connections > 0, "--connections must be at least 1");
        Ok(Self {
            rate,
            connections: connections as u64,
        })
    }

    /// When connection `connection` intends to send its `k`-th request, from the run's start.
    pub fn intended(&self, connection: usize, k: u64) -> Duration {
        let slot = k * self.connections + connection as u64;
        Duration::from_secs_f64(slot as f64 / self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spread_evenly_over_all_connections() {
        let s = Schedule::new(1000.0, 4).unwrap();
        let mut times: Vec<Duration> = (0..4)
            .flat_map(|c| (0..250).map(move |k| s.intended(c, k)))
            .collect();
        times.sort();
        // 1000 slots, one every millisecond, none twice.
        for (i, t) in times.iter().enumerate() {
            assert_eq!(*t, Duration::from_millis(i as u64));
        }
    }

    #[test]
    fn each_connection_sends_every_n_over_rate() {
        let s = Schedule::new(100.0, 10).unwrap();
        assert_eq!(s.intended(3, 0), Duration::from_millis(30));
        assert_eq!(s.intended(3, 1), Duration::from_millis(130));
        assert_eq!(s.intended(3, 2), Duration::from_millis(230));
    }

    #[test]
    fn one_second_holds_rate_slots() {
        let s = Schedule::new(250.0, 7).unwrap();
        let in_first_second = (0..7)
            .flat_map(|c| (0..100).map(move |k| s.intended(c, k)))
            .filter(|t| *t < Duration::from_secs(1))
            .count();
        assert_eq!(in_first_second, 250);
    }

    #[test]
    fn rejects_nonsense() {
        assert!(Schedule::new(0.0, 1).is_err());
        assert!(Schedule::new(f64::NAN, 1).is_err());
        assert!(Schedule::new(10.0, 0).is_err());
    }
}
