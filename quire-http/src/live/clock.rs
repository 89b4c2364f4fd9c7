//! One ping clock for all WebSocket sessions, instead of a timer in each: an idle session
//! waits on a `watch` receiver (16 bytes, plus its wait in the select) rather than owning an
//! `Interval` and its boxed `Sleep` (about 170 bytes). The same receiver tells it when the
//! server starts draining.
//!
//! Sessions are spread over a few phases, each beating once per ping interval at its own
//! offset, so the server does not ping every idle connection in the same instant.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// Phases the sessions are spread over.
const PHASES: usize = 8;

/// Beats for live sessions: a receiver's value is `true` once the server is draining, and it
/// changes (without changing its value) at every ping time.
#[derive(Debug)]
pub struct LiveClock {
    period: Duration,
    beats: OnceLock<Vec<watch::Receiver<bool>>>,
    next_phase: AtomicUsize,
}

impl LiveClock {
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            beats: OnceLock::new(),
            next_phase: AtomicUsize::new(0),
        }
    }

    /// A receiver for one session. The first call starts the ticking task (on the current
    /// runtime); it ends when draining starts, after marking every receiver `true`.
    pub fn subscribe(&self, draining: &crate::Draining) -> watch::Receiver<bool> {
        let beats = self.beats.get_or_init(|| {
            let (senders, receivers) = (0..PHASES).map(|_| watch::channel(false)).unzip();
            tokio::spawn(tick(senders, self.period, draining.watch()));
            receivers
        });
        let phase = self.next_phase.fetch_add(1, Ordering::Relaxed) % PHASES;
        let mut beat = beats[phase].clone();
        // Only beats from now on; draining that already started still reads `true`.
        beat.mark_unchanged();
        beat
    }
}

/// Beats each phase once per `period`, phases `period / PHASES` apart.
async fn tick(
    senders: Vec<watch::Sender<bool>>,
    period: Duration,
    mut draining: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(period / PHASES as u32);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: sessions get their first ping one period after the clock
    // starts, at the latest.
    interval.tick().await;
    let mut phase = 0;
    loop {
        if *draining.borrow_and_update() {
            break;
        }
        tokio::select! {
            _ = interval.tick() => {
                senders[phase].send_modify(|_| {});
                phase = (phase + 1) % PHASES;
            }
            changed = draining.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    for sender in &senders {
        sender.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real time (quire-http has no paused clock): loose bounds on the beats' count.
    #[tokio::test]
    async fn each_session_beats_once_per_period_until_draining() {
        let draining = crate::Draining::default();
        let clock = LiveClock::new(Duration::from_millis(200));
        let counters: Vec<_> = (0..PHASES)
            .map(|_| {
                let mut beat = clock.subscribe(&draining);
                tokio::spawn(async move {
                    let mut beats = 0;
                    while beat.changed().await.is_ok() {
                        if *beat.borrow_and_update() {
                            return (beats, true);
                        }
                        beats += 1;
                    }
                    (beats, false)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        draining.start();
        for counter in counters {
            let (beats, drained) = counter.await.unwrap();
            assert!(drained, "draining reached every session");
            assert!((3..=6).contains(&beats), "{beats} beats in 5.5 periods");
        }
        // A session that starts after draining sees it at once.
        assert!(*clock.subscribe(&draining).borrow());
    }
}
