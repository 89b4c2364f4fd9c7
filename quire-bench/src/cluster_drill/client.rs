//! How the drill's clients reach the cluster: round-robin over the instances that are up
//! (the drill plays the load balancer, so it takes an instance out of the rotation before it
//! stops it gracefully, and notices a killed one by its refused connections), or everything
//! through one load balancer's address (`--via`). Every failure is classified: a connection
//! refused never reached quire and is sent to the next instance; a request cut off because
//! its instance was killed is excused (one in flight at the kill, or one a load balancer
//! still sent to the dead instance over a pooled connection within [`KILL_WINDOW`] of its
//! death, before it noticed); anything else is an error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::ledger::Ledger;
use super::processes::Instance;

/// How long after a `kill -9` a balancer may still route a request to the dead instance.
const KILL_WINDOW: Duration = Duration::from_millis(250);

pub struct Cluster {
    pub instances: Vec<Arc<Instance>>,
    /// A load balancer in front of them, if the load goes through one.
    pub via: Option<String>,
    next: AtomicUsize,
    pub http: reqwest::Client,
}

/// Where a request went.
#[derive(Debug, Clone)]
pub struct Target {
    pub base: String,
    /// The instance (`None` through a load balancer).
    pub instance: Option<usize>,
}

/// How a request ended.
pub enum Outcome {
    /// An HTTP answer: status and JSON body (null if none).
    Answered(u16, Value, Option<usize>),
    /// Cut off by a `kill -9` of the instance serving it (excused, counted).
    Killed,
    /// Anything else (already recorded as an error).
    Failed,
}

impl Cluster {
    pub fn new(instances: Vec<Arc<Instance>>, via: Option<String>) -> anyhow::Result<Self> {
        Ok(Self {
            instances,
            via,
            next: AtomicUsize::new(0),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_idle_timeout(Duration::from_secs(2))
                .build()?,
        })
    }

    /// The next instance that is up, other than `avoid` when another is up.
    pub async fn pick(&self, avoid: Option<usize>) -> Target {
        if let Some(via) = &self.via {
            return Target {
                base: via.clone(),
                instance: None,
            };
        }
        loop {
            let n = self.instances.len();
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let up: Vec<&Arc<Instance>> = (0..n)
                .map(|k| &self.instances[(start + k) % n])
                .filter(|i| i.is_up())
                .collect();
            let chosen = up
                .iter()
                .find(|i| Some(i.index) != avoid)
                .or_else(|| up.first());
            if let Some(instance) = chosen {
                return Target {
                    base: instance.base(),
                    instance: Some(instance.index),
                };
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn kills(&self) -> u64 {
        self.instances.iter().map(|i| i.epoch().1).sum()
    }

    /// Sends one request (to an instance other than `avoid` if one is up), classifying its
    /// failure into `ledger`.
    pub async fn send(
        &self,
        ledger: &Ledger,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        avoid: Option<usize>,
    ) -> Outcome {
        loop {
            let target = self.pick(avoid).await;
            let kills_before = self.kills();
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", target.base));
            if let Some(token) = token {
                request = request.header("Authorization", format!("Token {token}"));
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let killed = || {
                self.kills() != kills_before
                    || self.instances.iter().any(|i| i.died_within(KILL_WINDOW))
            };
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = response.json::<Value>().await.unwrap_or(Value::Null);
                    // A balancer's "bad gateway" for a request its instance died under.
                    if matches!(status, 502 | 504) && killed() {
                        ledger.killed_in_flight.fetch_add(1, Ordering::Relaxed);
                        return Outcome::Killed;
                    }
                    return Outcome::Answered(status, body, target.instance);
                }
                Err(error) if error.is_connect() => {
                    // Never reached quire: a balancer would try the next instance.
                    ledger.connect_retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(_) if killed() => {
                    ledger.killed_in_flight.fetch_add(1, Ordering::Relaxed);
                    return Outcome::Killed;
                }
                Err(error) => {
                    ledger.error(format!("{method} {path} on {target:?}: {error}"));
                    return Outcome::Failed;
                }
            }
        }
    }
}
