//! The drill's load: writers (one signed-in user each) that update, comment and create, and
//! read every acknowledged write back at once on *another* instance; and an open-loop stream
//! of anonymous reads at a fixed rate, the mixed load the live events must cross.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Cluster, Outcome};
use super::ledger::Ledger;

/// What one write must be followed by, when read anywhere.
enum Check {
    /// The article's description, on its own and in its author's list.
    Description {
        slug: String,
        description: String,
    },
    Comment {
        slug: String,
        body: String,
    },
    Created {
        slug: String,
    },
}

/// One writer until `stop`.
pub async fn writer(
    id: usize,
    cluster: Arc<Cluster>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let name = format!("drill{id}");
    let Some(token) = sign_up(&cluster, &ledger, &name).await else {
        return;
    };
    ledger.signed_up.fetch_add(1, Ordering::SeqCst);
    let mut newest: Option<String> = None;
    // Creates whose answer was lost (cut off by a kill): each may have committed, so the
    // writer's newest known article may sit that far down its author's list.
    let mut unknown_creates = 0usize;
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let roll = if newest.is_none() {
            0
        } else {
            rng.random_range(0..10)
        };
        let (key, method, path, body) = match (&newest, roll) {
            (Some(slug), 1..=5) => {
                let description = format!("{name}-d{seq}");
                (
                    format!("updated:{slug}:{description}"),
                    Method::PUT,
                    format!("/api/articles/{slug}"),
                    json!({"article": {"description": description}}),
                )
            }
            (Some(slug), 6..=8) => {
                let text = format!("{name}-c{seq}");
                (
                    format!("comment:{text}"),
                    Method::POST,
                    format!("/api/articles/{slug}/comments"),
                    json!({"comment": {"body": text}}),
                )
            }
            _ => {
                let title = format!("{name} a{seq}");
                (
                    String::new(),
                    Method::POST,
                    "/api/articles".to_owned(),
                    json!({"article": {"title": title, "description": "first", "body": "cluster drill"}}),
                )
            }
        };
        if !key.is_empty() {
            ledger.sending(&key);
        }
        let outcome = cluster
            .send(&ledger, method, &path, Some(&token), Some(&body), None)
            .await;
        let Outcome::Answered(status, answer, instance) = outcome else {
            if key.is_empty() {
                unknown_creates += 1;
            }
            continue;
        };
        let (key, check) = match (status, key.is_empty()) {
            (200, false) if key.starts_with("updated:") => {
                let slug = newest.clone().unwrap_or_default();
                let description = body["article"]["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (key, Check::Description { slug, description })
            }
            (200 | 201, false) => {
                let text = body["comment"]["body"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let slug = newest.clone().unwrap_or_default();
                ledger
                    .acked_comments
                    .lock()
                    .expect("lock")
                    .push(text.clone());
                (key, Check::Comment { slug, body: text })
            }
            (201, true) => {
                let Some(slug) = answer["article"]["slug"].as_str().map(str::to_owned) else {
                    ledger.error(format!("create answered 201 without a slug: {answer}"));
                    continue;
                };
                let key = format!("created:{slug}");
                ledger
                    .acked_articles
                    .lock()
                    .expect("lock")
                    .push(slug.clone());
                newest = Some(slug.clone());
                (key, Check::Created { slug })
            }
            _ => {
                ledger.error(format!("write {path} answered {status}: {answer}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        ledger.acknowledged(&key, instance);
        let list = format!(
            "/api/articles?author={name}&limit={}",
            (1 + unknown_creates).min(100)
        );
        read_back(&cluster, &ledger, &list, instance, check).await;
    }
}

/// Registers `name`; the token.
async fn sign_up(cluster: &Cluster, ledger: &Ledger, name: &str) -> Option<String> {
    let body = json!({"user": {"username": name, "email": format!("{name}@example.com"),
                              "password": "password-drill"}});
    for _ in 0..20 {
        if let Outcome::Answered(201, user, _) = cluster
            .send(ledger, Method::POST, "/api/users", None, Some(&body), None)
            .await
        {
            return user["user"]["token"].as_str().map(str::to_owned);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ledger.error(format!("{name} could not sign up"));
    None
}

/// Reads a just-acknowledged write on another instance than the one that acknowledged it;
/// `list` is the head of the writer's own articles, where its newest known one must be.
async fn read_back(
    cluster: &Cluster,
    ledger: &Ledger,
    list: &str,
    wrote_on: Option<usize>,
    check: Check,
) {
    let listed = |body: &Value, slug: &str| -> Option<Value> {
        body["articles"]
            .as_array()?
            .iter()
            .find(|a| a["slug"] == json!(slug))
            .cloned()
    };
    let get = |path: String| async move {
        match cluster
            .send(ledger, Method::GET, &path, None, None, wrote_on)
            .await
        {
            // A server error is not a stale read, but it is an error.
            Outcome::Answered(status, body, on) if status >= 500 => {
                ledger.error(format!(
                    "read-back {path} on {on:?} answered {status}: {body}"
                ));
                None
            }
            Outcome::Answered(status, body, on) => Some((status, body, on)),
            _ => None,
        }
    };
    ledger.read_backs.fetch_add(1, Ordering::Relaxed);
    let stale = match &check {
        Check::Description { slug, description } => {
            let one = get(format!("/api/articles/{slug}")).await;
            let head = get(list.to_owned()).await;
            let mut stale = Vec::new();
            if let Some((_, body, on)) = one
                && body["article"]["description"] != json!(description)
            {
                stale.push(format!(
                    "article {slug} on {on:?}: {} not {description}",
                    body["article"]["description"]
                ));
            }
            if let Some((_, body, on)) = head {
                let seen = listed(&body, slug).map(|a| a["description"].clone());
                if seen != Some(json!(description)) {
                    stale.push(format!(
                        "{list} on {on:?}: {slug} shows {seen:?}, not {description}"
                    ));
                }
            }
            stale
        }
        Check::Comment { slug, body: text } => {
            match get(format!("/api/articles/{slug}/comments")).await {
                Some((_, body, on)) => {
                    let found = body["comments"]
                        .as_array()
                        .is_some_and(|all| all.iter().any(|c| c["body"] == json!(text)));
                    if found {
                        Vec::new()
                    } else {
                        vec![format!("comments of {slug} on {on:?} lack {text}")]
                    }
                }
                None => Vec::new(),
            }
        }
        Check::Created { slug } => {
            let one = get(format!("/api/articles/{slug}")).await;
            let head = get(list.to_owned()).await;
            let mut stale = Vec::new();
            if let Some((status, _, on)) = one
                && status != 200
            {
                stale.push(format!("new article {slug} on {on:?}: {status}"));
            }
            if let Some((_, body, on)) = head
                && listed(&body, slug).is_none()
            {
                stale.push(format!("{list} on {on:?} lacks {slug}"));
            }
            stale
        }
    };
    for what in stale {
        ledger.stale(what);
    }
}

/// Anonymous reads at `rate` per second (open loop, at most 256 in flight) until `stop`,
/// from when all `writers` have signed up (one of the paths is a writer's profile).
pub async fn readers(
    cluster: Arc<Cluster>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    rate: f64,
    writers: usize,
) {
    if rate <= 0.0 {
        return;
    }
    while ledger.signed_up.load(Ordering::SeqCst) < writers && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let paths = [
        "/api/articles?limit=20",
        "/api/tags",
        "/api/profiles/drill0",
        "/api/articles?author=drill1&limit=5",
    ];
    let in_flight = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            continue;
        };
        n += 1;
        let path = paths[n % paths.len()];
        let (cluster, ledger) = (cluster.clone(), ledger.clone());
        tokio::spawn(async move {
            let outcome = cluster
                .send(&ledger, Method::GET, path, None, None, None)
                .await;
            if let Outcome::Answered(status, body, on) = outcome {
                if status == 200 {
                    ledger.background_reads.fetch_add(1, Ordering::Relaxed);
                } else {
                    ledger.error(format!("GET {path} on {on:?} answered {status}: {body}"));
                }
            }
            drop(permit);
        });
    }
}

/// What the article event `event` is the event of, as a key `Ledger::sending` used.
pub fn event_key(event: &Value) -> Option<String> {
    let slug = event["slug"].as_str()?;
    match event["type"].as_str()? {
        "article.updated" => Some(format!(
            "updated:{slug}:{}",
            event["article"]["description"].as_str()?
        )),
        "comment.created" => Some(format!("comment:{}", event["comment"]["body"].as_str()?)),
        "article.created" => Some(format!("created:{slug}")),
        _ => None,
    }
}
