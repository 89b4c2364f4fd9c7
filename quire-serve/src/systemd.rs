//! systemd integration, all no-ops outside systemd (no `NOTIFY_SOCKET`): `READY=1` once the
//! listener serves, `STOPPING=1` when draining begins, and `WATCHDOG=1` pings at half the
//! unit's `WatchdogSec` sent from a task on the async runtime itself. A stalled runtime stops
//! pinging, so systemd restarts a process that still exists but no longer serves.

use std::time::Duration;

use sd_notify::NotifyState;

fn notify(state: NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(&[state]) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Tells systemd the service is ready.
pub fn ready() {
    notify(NotifyState::Ready);
}

/// Tells systemd the service is stopping.
pub fn stopping() {
    notify(NotifyState::Stopping);
}

/// Starts the watchdog pings if the unit asks for them; returns their period.
pub fn spawn_watchdog() -> Option<Duration> {
    let timeout = sd_notify::watchdog_enabled()?;
    let period = (timeout / 2).max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        loop {
            ticker.tick().await;
            notify(NotifyState::Watchdog);
        }
    });
    Some(period)
}
