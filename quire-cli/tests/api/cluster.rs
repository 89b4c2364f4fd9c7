//! Several quire processes on one PostgreSQL database and one Redis behave as one: a write
//! acknowledged by one instance is never read stale on another (also across a Redis restart),
//! and a live event published on one reaches subscribers on another, resumable anywhere with
//! `Last-Event-ID`. Redis is a private `redis-server` per test (so it can be restarted);
//! PostgreSQL is the test's own database. PostgreSQL only: SQLite is one process's file.

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, QuireProcess, TestDir, get_json, metric, register_at, spawn_quire};

/// A private Redis server on a free port, keeping nothing on disk; killed when dropped.
struct RedisServer {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl RedisServer {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self { port, child: None };
        server.run().await;
        server
    }

    async fn run(&mut self) {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (Debian package redis-server) is needed by the cluster tests");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not listen on {}", self.port);
    }

    /// Kills the server (losing every key, as a restart without persistence does) and
    /// starts it again on the same port.
    async fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
        self.run().await;
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

async fn instance(dir: &TestDir, redis: &RedisServer, extra: &[&str]) -> QuireProcess {
    let url = redis.url();
    let mut args = vec!["--redis", url.as_str()];
    args.extend_from_slice(extra);
    spawn_quire(dir, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_acknowledged_on_one_instance_is_never_read_stale_on_another() {
    Backend::Postgres
        .run(async {
            let mut redis = RedisServer::start().await;
            let dir = TestDir::new().await;
            // Every cache hit is also audited against the database (see cache_audit.rs).
            let audit = ["--cache-audit-sample", "1", "--cache-audit-grace", "1500ms"];
            let a = instance(&dir, &redis, &audit).await;
            // B applies what others announce 20 ms late: without the read fence, reads on B
            // right after a write on A would be stale.
            let mut slow = vec!["--redis-apply-delay", "20ms"];
            slow.extend(audit);
            let b = instance(&dir, &redis, &slow).await;
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let token = register_at(&client, &a.base, "writer").await;
            let auth = format!("Token {token}");
            let response = client
                .post(format!("{}/api/articles", a.base))
                .header("Authorization", &auth)
                .json(&json!({"article": {"title": "coherent", "description": "v0", "body": "b"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);

            let rounds = 600;
            let (mut acknowledged, mut refused, mut stale) = (0, 0, Vec::new());
            for round in 1..=rounds {
                if round == rounds / 2 {
                    redis.restart().await;
                }
                // Alternate: write on one instance, read at once on the other.
                let (writer, reader) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
                let description = format!("v{round}");
                let response = client
                    .put(format!("{}/api/articles/coherent", writer.base))
                    .header("Authorization", &auth)
                    .json(&json!({"article": {"description": description}}))
                    .send()
                    .await
                    .unwrap();
                match response.status() {
                    StatusCode::OK => acknowledged += 1,
                    // Redis down: the write could not be announced, so it was not acknowledged.
                    StatusCode::SERVICE_UNAVAILABLE => {
                        refused += 1;
                        continue;
                    }
                    other => panic!("round {round}: write answered {other}"),
                }
                // Read at once on the other instance, then on the writer too (so both caches
                // hold this version when the next write lands on the other one).
                for (who, quire) in [("other", reader), ("writer", writer)] {
                    let article = get_json(&client, &format!("{}/api/articles/coherent", quire.base)).await;
                    let list = get_json(&client, &format!("{}/api/articles?author=writer", quire.base)).await;
                    let seen = (
                        article["article"]["description"].clone(),
                        list["articles"][0]["description"].clone(),
                    );
                    if seen != (json!(description), json!(description)) {
                        stale.push((round, who, seen));
                    }
                }
            }
            assert!(stale.is_empty(), "stale reads (round, instance, article, list): {stale:?}");
            assert!(
                acknowledged > rounds * 9 / 10,
                "{acknowledged} of {rounds} writes acknowledged ({refused} refused while Redis restarted)"
            );
            // The reads were served by the caches (not merely by bypassing them).
            for quire in [&a, &b] {
                let passed = metric(&client, &quire.base, "cache_fences_total{result=\"passed\"}").await;
                let hits = metric(&client, &quire.base, "cache_hits_total").await;
                assert!(passed > 100.0 && hits > 100.0, "fences passed {passed}, cache hits {hits}");
            }
            // Nor did the audits find a cached value that disagreed with the database.
            tokio::time::sleep(Duration::from_secs(4)).await;
            for quire in [&a, &b] {
                let text = client.get(format!("{}/metrics", quire.base)).send().await.unwrap().text().await.unwrap();
                let audited: Vec<&str> = text.lines().filter(|l| l.starts_with("cache_audits_total")).collect();
                assert!(
                    !audited.iter().any(|l| l.contains("\"mismatch\"")) && audited.iter().any(|l| l.contains("\"consistent\"")),
                    "cache audits: {audited:?}"
                );
            }
        })
        .await
}

/// The events of an SSE response body, as (id, JSON data), until `count` have arrived.
async fn sse_events(response: reqwest::Response, count: usize) -> Vec<(u64, Value)> {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut events = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while events.len() < count {
            let chunk = body.next().await.expect("stream open").unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let id = block
                    .lines()
                    .find_map(|l| l.strip_prefix("id:"))
                    .map(|v| v.trim().parse::<u64>().unwrap());
                let data = block.lines().find_map(|l| l.strip_prefix("data:"));
                if let (Some(id), Some(data)) = (id, data) {
                    events.push((id, serde_json::from_str(data.trim()).unwrap()));
                }
            }
        }
    })
    .await
    .expect("the events within 10 s");
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_cross_instances_and_resume_on_any_of_them() {
    Backend::Postgres
        .run(async {
            let mut redis = RedisServer::start().await;
            let dir = TestDir::new().await;
            let a = instance(&dir, &redis, &[]).await;
            let b = instance(&dir, &redis, &[]).await;
            let client = reqwest::Client::new();
            let token = register_at(&client, &a.base, "author").await;
            let auth = format!("Token {token}");
            let on_b = client
                .get(format!("{}/api/live/sse", b.base))
                .send()
                .await
                .unwrap();
            assert_eq!(on_b.status(), StatusCode::OK);
            // Give B's subscription a moment to be in place before publishing.
            tokio::time::sleep(Duration::from_millis(200)).await;
            for title in ["first", "second"] {
                let response = client
                    .post(format!("{}/api/articles", a.base))
                    .header("Authorization", &auth)
                    .json(&json!({"article": {"title": title, "description": "d", "body": "b"}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
            }
            let seen_on_b = sse_events(on_b, 2).await;
            let slugs: Vec<_> = seen_on_b.iter().map(|(_, e)| e["slug"].clone()).collect();
            assert_eq!(
                slugs,
                [json!("first"), json!("second")],
                "each event once, in order"
            );
            assert!(seen_on_b.iter().all(|(id, e)| e["id"] == json!(id)));
            // Exact as JavaScript numbers (browsers parse the JSON `id` as a double).
            assert!(seen_on_b.iter().all(|(id, _)| *id < 1 << 53));

            // A client that saw "first" on B resumes on A and gets "second" under the same id.
            let resumed = client
                .get(format!("{}/api/live/sse", a.base))
                .header("Last-Event-ID", seen_on_b[0].0.to_string())
                .send()
                .await
                .unwrap();
            let replayed = sse_events(resumed, 1).await;
            assert_eq!(replayed[0].0, seen_on_b[1].0);
            assert_eq!(replayed[0].1["slug"], "second");
            // So does one resuming on an instance started after both events (its backlog is
            // filled from the stream when it starts).
            let c = instance(&dir, &redis, &[]).await;
            // At once: an instance serves only after its backlog is loaded.
            let resumed = client
                .get(format!("{}/api/live/sse", c.base))
                .header("Last-Event-ID", seen_on_b[0].0.to_string())
                .send()
                .await
                .unwrap();
            let mut body = resumed.bytes_stream();
            let mut text = String::new();
            while let Ok(Some(Ok(chunk))) =
                tokio::time::timeout(Duration::from_millis(500), body.next()).await
            {
                text.push_str(std::str::from_utf8(&chunk).unwrap());
            }
            let replayed: Vec<&str> = text.lines().filter(|l| l.starts_with("data:")).collect();
            assert_eq!(replayed.len(), 1, "{replayed:?}");
            assert!(replayed[0].contains("\"slug\":\"second\""), "{replayed:?}");

            // Redis restarts empty (the stream is gone): events published after it reach B
            // again, under ids above the old ones.
            let listening = client
                .get(format!("{}/api/live/sse", b.base))
                .send()
                .await
                .unwrap();
            redis.restart().await;
            let mut created = false;
            for _ in 0..50 {
                let response = client
                    .post(format!("{}/api/articles", a.base))
                    .header("Authorization", &auth)
                    .json(&json!({"article": {"title": "third", "description": "d", "body": "b"}}))
                    .send()
                    .await
                    .unwrap();
                match response.status() {
                    StatusCode::CREATED => {
                        created = true;
                        break;
                    }
                    // Not yet resynchronised with the new Redis: not acknowledged, retry.
                    StatusCode::SERVICE_UNAVAILABLE => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    other => panic!("create answered {other}"),
                }
            }
            assert!(
                created,
                "writes are acknowledged again after Redis restarts"
            );
            let after = sse_events(listening, 1).await;
            // ("third", or a suffixed slug if a refused attempt had committed its article.)
            assert!(after[0].1["slug"].as_str().unwrap().starts_with("third"));
            assert!(after[0].0 > seen_on_b[1].0, "ids keep increasing");
        })
        .await
}

/// Statuses of `count` GETs of `/api/tags`, spread round-robin over `instances`.
async fn tag_statuses(
    client: &reqwest::Client,
    instances: &[&QuireProcess],
    count: usize,
) -> Vec<StatusCode> {
    let mut statuses = Vec::with_capacity(count);
    for n in 0..count {
        let quire = instances[n % instances.len()];
        let response = client
            .get(format!("{}/api/tags", quire.base))
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_allow_what_one_would_and_limit_alone_without_redis() {
    Backend::Postgres
        .run(async {
            let mut redis = RedisServer::start().await;
            let dir = TestDir::new().await;
            // One request per second per address, a burst of 10: the 30 requests take far less.
            let limits = [
                "--rate-limit-ip",
                "1",
                "--rate-limit-ip-burst",
                "10",
                "--sign-in-failures",
                "4",
            ];
            let mut instances = Vec::new();
            for _ in 0..3 {
                instances.push(instance(&dir, &redis, &limits).await);
            }
            let all: Vec<&QuireProcess> = instances.iter().collect();
            let client = reqwest::Client::new();
            // Failed sign-ins for one account are counted across instances.
            let wrong =
                json!({"user": {"email": "nobody@example.com", "password": "wrong-password"}});
            let mut statuses = Vec::new();
            for n in 0..6 {
                let response = client
                    .post(format!("{}/api/users/login", all[n % 3].base))
                    .json(&wrong)
                    .send()
                    .await
                    .unwrap();
                statuses.push(response.status());
            }
            let unauthorized = statuses
                .iter()
                .filter(|s| **s == StatusCode::UNAUTHORIZED)
                .count();
            assert_eq!(
                unauthorized, 4,
                "four failures in all, then 429: {statuses:?}"
            );
            assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);

            let statuses = tag_statuses(&client, &all, 30).await;
            let allowed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
            let refused = statuses
                .iter()
                .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
                .count();
            assert_eq!(allowed + refused, 30, "{statuses:?}");
            // The six sign-ins took six of the address's ten (shared) tokens.
            assert!(
                (4..=5).contains(&allowed),
                "one burst of 10 shared by three instances, {allowed} allowed: {statuses:?}"
            );

            // Redis gone: each instance limits on its own (its own burst), never refusing
            // everything and never letting everything through.
            drop(redis.child.take());
            let statuses = tag_statuses(&client, &all[..1], 15).await;
            let allowed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
            assert!(
                (10..=11).contains(&allowed),
                "one instance's own burst, {allowed} allowed: {statuses:?}"
            );
            let fallbacks = metric(&client, &all[0].base, "rate_limit_fallback_total").await;
            assert!(fallbacks > 0.0);
            redis.run().await;
        })
        .await
}
