//! Changes made outside the server (`quire user` disabling an account, changing a password,
//! deleting a user) reach this instance's caches: the change's transaction recorded its
//! invalidations in the store, and this watcher reads the new ones every period and applies
//! them as it applies those another instance announces. A disabled user's tokens therefore
//! stop working within one period, on every instance, with or without Redis.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::App;

impl App {
    /// Watches for changes made outside the server every `period` until the task is aborted
    /// (it holds the app: abort and await it before dropping the app).
    pub fn spawn_admin_watch(self: &Arc<Self>, period: Duration) -> JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            let mut seen = None;
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match app.store.admin_changes_after(seen).await {
                    Ok(changes) if seen.is_none() => {
                        // Where watching starts: what is older is in no cache yet.
                        seen = changes.first().map(|(seq, _)| *seq);
                    }
                    Ok(changes) => {
                        for (seq, encoded) in changes {
                            tracing::info!(seq, "applying a change made outside the server");
                            app.apply_announced(encoded.as_bytes()).await;
                            seen = Some(seq);
                        }
                    }
                    Err(error) => {
                        tracing::debug!(error = %error, "cannot read changes made outside the server");
                    }
                }
            }
        })
    }
}
