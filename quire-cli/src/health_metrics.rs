//! Gauges sampled every few seconds for alerting on what the other metrics cannot say:
//!
//! - `health_ready`: 1 when `GET /health/ready` would answer 200 (not draining; the store,
//!   Redis when configured and the media store answer), else 0. The same checks as
//!   quire-http's `routes/health.rs`, kept in step with it, so an alert needs no HTTP prober.
//! - `filesystem_available_bytes` and `filesystem_size_bytes` by `volume` (`database`: the
//!   directory of the SQLite file; `media`: the media directory, when media are on the
//!   filesystem) and `path`: what `statvfs` reports for unprivileged writers, so "disk almost
//!   full" fires before SQLite's writes or uploads fail.
//!
//! `statvfs` is a blocking call and runs on the blocking pool. The sampling task holds the
//! app's state, so `serve` stops it (and waits) before returning.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use quire_http::AppState;
use quire_store::DatabaseUrl;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// How often the gauges are refreshed.
const PERIOD: Duration = Duration::from_secs(5);

/// Longest a readiness check waits for the store or the media store (as the probe does).
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// A filesystem to watch: its `volume` label and a directory on it.
#[derive(Clone)]
struct Volume {
    name: &'static str,
    dir: PathBuf,
}

/// The running sampler; aborted when dropped.
pub struct Sampler(Option<JoinHandle<()>>);

impl Sampler {
    /// Stops sampling and waits until the task has let go of the app's state.
    pub async fn stop(mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Starts sampling readiness and the free space of the database's directory (SQLite) and of
/// `media_dir` (`None` when media are in a bucket).
pub fn spawn(state: AppState, database: &DatabaseUrl, media_dir: Option<PathBuf>) -> Sampler {
    let mut volumes = Vec::new();
    if let DatabaseUrl::Sqlite(file) = database {
        let dir = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        volumes.push(Volume {
            name: "database",
            dir,
        });
    }
    if let Some(dir) = media_dir {
        volumes.push(Volume { name: "media", dir });
    }
    Sampler(Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let ready = ready(&state).await;
            metrics::gauge!("health_ready").set(if ready { 1.0 } else { 0.0 });
            let watched = volumes.clone();
            let Ok(sizes) = tokio::task::spawn_blocking(move || {
                watched
                    .into_iter()
                    .map(|volume| {
                        let size = rustix::fs::statvfs(&volume.dir).ok();
                        (volume, size)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            else {
                continue;
            };
            for (volume, stat) in sizes {
                let Some(stat) = stat else { continue };
                let block = if stat.f_frsize > 0 {
                    stat.f_frsize
                } else {
                    stat.f_bsize
                };
                let labels = [
                    ("volume", volume.name.to_owned()),
                    ("path", volume.dir.display().to_string()),
                ];
                metrics::gauge!("filesystem_available_bytes", &labels)
                    .set(stat.f_bavail.saturating_mul(block) as f64);
                metrics::gauge!("filesystem_size_bytes", &labels)
                    .set(stat.f_blocks.saturating_mul(block) as f64);
            }
        }
    })))
}

/// What `GET /health/ready` decides, without its answer's body or logs.
async fn ready(state: &AppState) -> bool {
    if state.draining.is_draining() {
        return false;
    }
    answers(state.app.store.ping()).await
        && state.app.peers_ready().await
        && answers(state.app.blobs.ready()).await
}

/// Whether `check` succeeds within [`READY_TIMEOUT`].
async fn answers<E>(check: impl Future<Output = Result<(), E>>) -> bool {
    matches!(tokio::time::timeout(READY_TIMEOUT, check).await, Ok(Ok(())))
}
