//! The drill's live subscribers: SSE streams of every event (`?all=true`), some on each
//! instance, each resuming with `Last-Event-ID` on the next instance that is up whenever its
//! stream ends (its instance was killed or restarted). Each counts every event it receives,
//! so the drill can tell a missed event from a duplicated one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::Value;

use super::client::Cluster;
use super::ledger::Received;
use super::workload::event_key;

/// What one subscriber saw.
#[derive(Default)]
pub struct Seen {
    /// Times each event key arrived.
    pub keys: HashMap<String, u32>,
    /// Event ids received, to catch an id delivered twice.
    pub ids: HashSet<u64>,
    pub duplicate_ids: u64,
    pub reconnects: u64,
    pub received: Vec<Received>,
}

/// Subscribes (first on instance `home`) and keeps subscribed until `stop`.
pub async fn subscriber(
    cluster: Arc<Cluster>,
    home: usize,
    seen: Arc<Mutex<Seen>>,
    subscribed: Arc<tokio::sync::Semaphore>,
    stop: Arc<AtomicBool>,
) {
    let mut last_id: Option<u64> = None;
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let target = if first {
            match &cluster.via {
                Some(via) => super::client::Target {
                    base: via.clone(),
                    instance: None,
                },
                None => super::client::Target {
                    base: cluster.instances[home].base(),
                    instance: Some(home),
                },
            }
        } else {
            cluster.pick(None).await
        };
        let mut request = cluster
            .http
            .get(format!("{}/api/live/sse?all=true", target.base))
            .timeout(Duration::from_secs(3600));
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let Ok(response) = request.send().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        if response.status() != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        if first {
            subscribed.add_permits(1);
            first = false;
        } else {
            seen.lock().expect("seen lock").reconnects += 1;
        }
        let mut body = response.bytes_stream();
        let mut text = String::new();
        loop {
            let chunk = tokio::select! {
                chunk = body.next() => chunk,
                () = wait_for(&stop) => return,
            };
            let Some(Ok(chunk)) = chunk else { break };
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let id = block
                    .lines()
                    .find_map(|l| l.strip_prefix("id:"))
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let data = block.lines().find_map(|l| l.strip_prefix("data:"));
                let (Some(id), Some(data)) = (id, data) else {
                    continue;
                };
                last_id = Some(id);
                let event: Value = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
                let mut seen = seen.lock().expect("seen lock");
                if !seen.ids.insert(id) {
                    seen.duplicate_ids += 1;
                }
                if let Some(key) = event_key(&event) {
                    *seen.keys.entry(key.clone()).or_default() += 1;
                    seen.received.push(Received {
                        key,
                        at: Instant::now(),
                        instance: target.instance,
                    });
                }
            }
        }
    }
}

async fn wait_for(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
