//! One ping clock for all WebSocket sessions, instead of a timer in each: an idle session
//! waits on a [`Beat`] (a pointer, plus a `Notify` wait of 64 bytes in its select) rather
//! than owning an `Interval` and its boxed `Sleep` (about 170 bytes). The same beat tells it
//! when the server starts draining.
//!
//! Sessions are spread over a few phases, each beating once per ping interval at its own
//! offset, so the server does not ping every idle connection in the same instant. A session
//! busy at its phase's beat misses that beat (its next ping comes one period later); it never
//! misses the start of draining, which is a flag read before every wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// Phases the sessions are spread over.
const PHASES: usize = 8;

/// Beats for live sessions: each phase's `Notify` wakes its waiting sessions once per
/// period, and all of them when draining starts.
#[derive(Debug)]
pub struct LiveClock {
    period: Duration,
    beats: OnceLock<Arc<Beats>>,
    next_phase: AtomicUsize,
}

#[derive(Debug, Default)]
struct Beats {
    draining: AtomicBool,
    phases: [Notify; PHASES],
}

/// One session's place on the clock.
#[derive(Debug)]
pub struct Beat {
    beats: Arc<Beats>,
    phase: usize,
}

impl LiveClock {
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            beats: OnceLock::new(),
            next_phase: AtomicUsize::new(0),
        }
    }

    /// A beat for one session. The first call starts the ticking task (on the current
    /// runtime); it ends when draining starts, after waking every session.
    pub fn subscribe(&self, draining: &crate::Draining) -> Beat {
        let beats = self.beats.get_or_init(|| {
            let beats = Arc::new(Beats::default());
            tokio::spawn(tick(beats.clone(), self.period, draining.watch()));
            beats
        });
        let phase = self.next_phase.fetch_add(1, Ordering::Relaxed) % PHASES;
        Beat {
            beats: beats.clone(),
            phase,
        }
    }
}

impl Beat {
    /// Whether the server is draining.
    pub fn draining(&self) -> bool {
        self.beats.draining.load(Ordering::Acquire)
    }

    /// Resolves at this session's next ping time, or once draining has started (at once if
    /// it has).
    pub fn next(&self) -> NextBeat<'_> {
        NextBeat {
            // Made before the flag is read (at the first poll), so a drain that starts in
            // between still wakes it.
            notified: self.beats.phases[self.phase].notified(),
            draining: &self.beats.draining,
        }
    }
}

pin_project_lite::pin_project! {
    /// The wait of [`Beat::next`].
    pub struct NextBeat<'a> {
        #[pin]
        notified: Notified<'a>,
        draining: &'a AtomicBool,
    }
}

impl Future for NextBeat<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.draining.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        this.notified.poll(cx)
    }
}

/// Beats each phase once per `period`, phases `period / PHASES` apart, until draining.
async fn tick(
    beats: Arc<Beats>,
    period: Duration,
    mut draining: tokio::sync::watch::Receiver<bool>,
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
                beats.phases[phase].notify_waiters();
                phase = (phase + 1) % PHASES;
            }
            changed = draining.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    beats.draining.store(true, Ordering::Release);
    for phase in &beats.phases {
        phase.notify_waiters();
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
                let beat = clock.subscribe(&draining);
                tokio::spawn(async move {
                    let mut beats = 0;
                    loop {
                        beat.next().await;
                        if beat.draining() {
                            return beats;
                        }
                        beats += 1;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        draining.start();
        for counter in counters {
            let beats = tokio::time::timeout(Duration::from_secs(5), counter)
                .await
                .expect("draining reached every session")
                .unwrap();
            assert!((3..=6).contains(&beats), "{beats} beats in 5.5 periods");
        }
        // A session that starts after draining sees it at once.
        let late = clock.subscribe(&draining);
        assert!(late.draining());
        tokio::time::timeout(Duration::from_secs(1), late.next())
            .await
            .expect("a drained clock's beat resolves at once");
    }
}
