//! The monitoring in `deploy/` checked against live servers: Debian's `prometheus` scrapes
//! two quire processes every second while they serve a realistic mix of requests, loads
//! `deploy/prometheus/alerts.yml`, and must return data for every query of every panel of
//! `deploy/grafana/quire.json` (a query that returns nothing fails, naming its panel).
//! `promtool` checks the rule file, runs its unit tests (`alerts.test.yml`: each alert fires
//! on synthetic series and stays silent on healthy ones) and checks the example
//! configuration. Prometheus and promtool come from Debian's `prometheus` package; the test
//! fails, never skips, without them.
//!
//! A plain `#[tokio::test]`, not an `api_test!`: it runs both backends at once, one quire on
//! SQLite and one on PostgreSQL, so that the panels of the SQLite queue and those of the
//! PostgreSQL pool both have series to show.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::support::{Backend, QuireProcess, TestDir, register_at, spawn_quire};

/// What `$__rate_interval` and `$__interval` become: at a 1 s scrape interval, long enough
/// for several samples, short enough that the load of the test is inside it.
const WINDOW: &str = "15s";

/// How long the panels' queries may take to all return data once the load has run.
const DATA_DEADLINE: Duration = Duration::from_secs(20);

/// Flags of both quire processes, so that the rarer panels have something to show: a burst
/// of sign-ins is shed (argon2 at its production cost, one hash at a time and one waiting),
/// the third wrong password for an account is refused (429), and an address gets few
/// connections (503 past them).
const QUIRE_FLAGS: &[&str] = &[
    "--argon2-memory-kib",
    "19456",
    "--argon2-iterations",
    "2",
    "--password-hash-concurrency",
    "1",
    "--password-hash-queue",
    "1",
    "--sign-in-failures",
    "2",
    "--max-connections-per-ip",
    "24",
    "--cache",
    "on",
];

/// The workspace root, which holds `deploy/`.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("quire-cli sits in the workspace")
        .to_owned()
}

/// Runs one of the `prometheus` package's programs to completion; panics with its output
/// unless it succeeds, and with an installation hint when it is missing.
async fn run_tool(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(root().join("deploy/prometheus"))
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}", missing(program, &e)));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}):\n{text}",
        args.join(" "),
        output.status
    );
    text
}

fn missing(program: &str, error: &std::io::Error) -> String {
    format!(
        "cannot run `{program}` ({error}): install Debian's prometheus package \
         (`apt-get install -y prometheus`, which also has promtool; .ci/run installs it)"
    )
}

/// A Prometheus server on a free loopback port with its own storage, killed when dropped.
struct Prometheus {
    child: std::process::Child,
    url: String,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `/metrics` of `targets` every second (job `quire`) with
    /// the alert rules loaded, and waits until it is ready.
    async fn start(targets: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rules = root().join("deploy/prometheus/alerts.yml");
        let targets = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - '{}'\n\
             scrape_configs:\n  - job_name: quire\n    static_configs:\n      - targets: [{targets}]\n",
            rules.display()
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}", missing("prometheus", &e)));
        let mut prometheus = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        prometheus.wait_ready().await;
        prometheus
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", self.log());
            }
            if let Ok(r) = client.get(format!("{}/-/ready", self.url)).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("prometheus was not ready within 20 s:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The answer's `data` of `GET path`, or Prometheus's error.
    async fn api(
        &self,
        client: &reqwest::Client,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, String> {
        let body: Value = client
            .get(format!("{}{path}", self.url))
            .query(query)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One query of one panel of the dashboard.
struct Target {
    panel: String,
    ref_id: String,
    expr: String,
}

/// Every target with an `expr` of every panel, rows' nested panels included.
fn targets(panels: &Value, into: &mut Vec<Target>) {
    for panel in panels.as_array().into_iter().flatten() {
        targets(&panel["panels"], into);
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = target["expr"].as_str() else {
                continue;
            };
            into.push(Target {
                panel: panel["title"].as_str().unwrap_or("(untitled)").to_owned(),
                ref_id: target["refId"].as_str().unwrap_or("?").to_owned(),
                expr: substitute(expr),
            });
        }
    }
}

/// The query Grafana would send with every instance selected.
fn substitute(expr: &str) -> String {
    let expr = expr
        .replace("$__rate_interval", WINDOW)
        .replace("$__interval", WINDOW)
        .replace("${instance}", ".*")
        .replace("$instance", ".*");
    // What is left may only be regex group references of label_replace (`${1}`, `$1`).
    let bytes = expr.as_bytes();
    for (i, _) in expr.match_indices('$') {
        let next = bytes.get(i + 1).copied().unwrap_or(b' ');
        let after = bytes.get(i + 2).copied().unwrap_or(b' ');
        let group = next.is_ascii_digit() || (next == b'{' && after.is_ascii_digit());
        assert!(group, "an unknown dashboard variable in `{expr}`");
    }
    expr
}

/// Sends `method path` with an optional token and JSON body; returns status and JSON body.
async fn call(
    client: &reqwest::Client,
    quire: &QuireProcess,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, bytes) =
        crate::support::send(client, method, format!("{}{path}", quire.base), token, body).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// What a day of a small blog looks like, compressed: live subscribers, sign-ups, writing,
/// reading (twice, so caches hit), lists, search, media, and the failures monitoring is for
/// (a 404, a 422, refused sign-ins, shed sign-ins, a refused connection).
async fn exercise(client: &reqwest::Client, quire: &QuireProcess) {
    use reqwest::Method;
    let (ws, response) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/live", quire.address))
            .await
            .expect("a WebSocket subscriber to /api/live");
    assert_eq!(response.status(), 101);
    let sse = client
        .get(format!("{}/api/live/sse", quire.base))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::OK);

    let alice = register_at(client, &quire.base, "alice").await;
    let bob = register_at(client, &quire.base, "bob").await;
    let mut slugs = Vec::new();
    for (token, title) in [
        (&alice, "Dashboards that are tested"),
        (&alice, "Alerts that fire"),
        (&bob, "Rates need two samples"),
    ] {
        let article = json!({"article": {"title": title, "description": "ops",
                                         "body": format!("all about {title}"), "tagList": ["ops"]}});
        let (status, body) = call(
            client,
            quire,
            Method::POST,
            "/api/articles",
            Some(token),
            Some(article),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        slugs.push(body["article"]["slug"].as_str().unwrap().to_owned());
    }
    for slug in &slugs {
        for _ in 0..2 {
            let (status, _) = call(
                client,
                quire,
                Method::GET,
                &format!("/api/articles/{slug}"),
                None,
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK);
        }
    }
    let comment = json!({"comment": {"body": "Measured, not guessed."}});
    let path = format!("/api/articles/{}/comments", slugs[0]);
    assert_eq!(
        call(
            client,
            quire,
            Method::POST,
            &path,
            Some(&bob),
            Some(comment)
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        call(client, quire, Method::GET, &path, None, None).await.0,
        StatusCode::OK
    );
    let path = format!("/api/articles/{}/favorite", slugs[1]);
    assert_eq!(
        call(client, quire, Method::POST, &path, Some(&bob), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(
            client,
            quire,
            Method::POST,
            "/api/profiles/alice/follow",
            Some(&bob),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    for path in [
        "/api/articles",
        "/api/articles?tag=ops",
        "/api/articles?author=alice",
        "/api/articles/feed",
        "/api/tags",
        "/api/profiles/alice",
        "/api/search?q=dashboards",
    ] {
        let (status, body) = call(client, quire, Method::GET, path, Some(&bob), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let page = client.get(format!("{}/", quire.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);

    let upload = client
        .post(format!("{}/api/media", quire.base))
        .header("Authorization", format!("Token {alice}"))
        .header("Content-Type", "image/png")
        .body(vec![7u8; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::CREATED);
    let media: Value = upload.json().await.unwrap();
    let url = media["media"]["url"].as_str().unwrap();
    let download = client
        .get(format!("{}{url}", quire.base))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap().len(), 64 * 1024);

    // Failures: a 404, a 422, a third wrong password (429), a burst of sign-ins (503).
    let (status, _) = call(
        client,
        quire,
        Method::GET,
        "/api/articles/no-such-article",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let invalid = json!({"user": {"username": "", "email": "not-an-email", "password": "short"}});
    let (status, _) = call(
        client,
        quire,
        Method::POST,
        "/api/users",
        None,
        Some(invalid),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = json!({"user": {"email": "alice@example.com", "password": "not-her-password"}});
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            call(
                client,
                quire,
                Method::POST,
                "/api/users/login",
                None,
                Some(wrong.clone()),
            )
            .await
            .0,
        );
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    shed_sign_ins(client, quire).await;
    refuse_a_connection(&quire.address).await;
    drop((ws, sse));
}

/// Signs bob in 8 times at once until the password-hash queue sheds one with 503.
async fn shed_sign_ins(client: &reqwest::Client, quire: &QuireProcess) {
    let right = json!({"user": {"email": "bob@example.com", "password": "password-1234"}});
    for _ in 0..10 {
        let burst = (0..8).map(|_| {
            call(
                client,
                quire,
                reqwest::Method::POST,
                "/api/users/login",
                None,
                Some(right.clone()),
            )
        });
        let statuses: Vec<StatusCode> = join_all(burst).await.into_iter().map(|(s, _)| s).collect();
        assert!(
            statuses
                .iter()
                .all(|s| [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE].contains(s)),
            "{statuses:?}"
        );
        if statuses.contains(&StatusCode::SERVICE_UNAVAILABLE) {
            return;
        }
    }
    panic!("no sign-in of 10 bursts was shed with one hashing turn and one waiting place");
}

/// Opens connections from this address past `--max-connections-per-ip` until one is
/// answered 503 and closed, then closes them all.
async fn refuse_a_connection(address: &str) {
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(TcpStream::connect(address).await.unwrap());
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        for stream in &held {
            let mut head = [0u8; 12];
            if let Ok(n) = stream.try_read(&mut head)
                && head[..n].starts_with(b"HTTP/1.1 503")
            {
                for mut stream in held {
                    let _ = stream.shutdown().await;
                }
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no connection past --max-connections-per-ip was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_has_data_and_every_alert_is_tested() {
    let started = Instant::now();
    // The rules and the example configuration, offline.
    run_tool("promtool", &["check", "rules", "alerts.yml"]).await;
    let tested = run_tool("promtool", &["test", "rules", "alerts.test.yml"]).await;
    assert!(tested.contains("SUCCESS"), "{tested}");
    run_tool("promtool", &["check", "config", "prometheus.yml"]).await;

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/quire.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut queries = Vec::new();
    targets(&dashboard["panels"], &mut queries);
    assert!(queries.len() >= 10, "the dashboard has its panels");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "datasource" && v["query"] == "prometheus")
    );

    let sqlite_dir = TestDir::new_for(Backend::Sqlite).await;
    let postgres_dir = TestDir::new_for(Backend::Postgres).await;
    let sqlite = spawn_quire(&sqlite_dir, QUIRE_FLAGS).await;
    let postgres = spawn_quire(&postgres_dir, QUIRE_FLAGS).await;
    let prometheus = Prometheus::start(&[&sqlite.address, &postgres.address]).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // Light traffic all along, so every rate has increments in its window.
    let bases = [sqlite.base.clone(), postgres.base.clone()];
    let background = tokio::spawn({
        let client = client.clone();
        async move {
            loop {
                for base in &bases {
                    let _ = client.get(format!("{base}/api/articles")).send().await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    tokio::join!(
        Box::pin(exercise(&client, &sqlite)),
        Box::pin(exercise(&client, &postgres))
    );
    let loaded = started.elapsed();

    // Every panel's every query has data (waiting for the samples rates need), and the
    // instance variable's query (`label_values(http_requests_total, instance)`) lists both.
    let deadline = Instant::now() + DATA_DEADLINE;
    let mut empty: Vec<&Target> = queries.iter().collect();
    let mut seen_instances = Vec::new();
    loop {
        let mut still_empty = Vec::new();
        for target in empty {
            match prometheus
                .api(&client, "/api/v1/query", &[("query", &target.expr)])
                .await
            {
                Ok(data) if data["result"].as_array().is_some_and(|r| !r.is_empty()) => {}
                Ok(_) => still_empty.push(target),
                Err(error) => panic!(
                    "panel \"{}\" query {} is rejected by Prometheus ({error}): {}",
                    target.panel, target.ref_id, target.expr
                ),
            }
        }
        empty = still_empty;
        if let Ok(values) = prometheus
            .api(
                &client,
                "/api/v1/label/instance/values",
                &[("match[]", "http_requests_total")],
            )
            .await
        {
            seen_instances = values
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
        }
        let both = [&sqlite.address, &postgres.address]
            .iter()
            .all(|a| seen_instances.contains(a));
        if (empty.is_empty() && both) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let missing: Vec<String> = empty
        .iter()
        .map(|t| format!("panel \"{}\" query {}: {}", t.panel, t.ref_id, t.expr))
        .collect();
    assert!(
        missing.is_empty(),
        "dashboard queries without data after {:?} of load and {DATA_DEADLINE:?} of waiting:\n{}",
        loaded,
        missing.join("\n")
    );
    assert!(
        [&sqlite.address, &postgres.address]
            .iter()
            .all(|a| seen_instances.contains(a)),
        "the instance variable lists both servers: {seen_instances:?}"
    );

    // Every alert rule evaluates without error against the live series.
    let deadline = Instant::now() + Duration::from_secs(10);
    let rules = loop {
        let groups = prometheus
            .api(&client, "/api/v1/rules", &[])
            .await
            .expect("rules");
        let rules: Vec<Value> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .collect();
        for rule in &rules {
            assert_ne!(
                rule["health"], "err",
                "rule {} fails on live data: {}",
                rule["name"], rule["lastError"]
            );
        }
        if rules.iter().all(|r| r["health"] == "ok") || Instant::now() > deadline {
            break rules;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(rules.len() >= 10, "the rules are loaded: {rules:?}");
    assert!(
        rules.iter().all(|r| r["health"] == "ok"),
        "every rule evaluated: {rules:?}"
    );
    background.abort();
    println!(
        "{} dashboard queries returned data, {} alert rules evaluate, in {:?} ({:?} of load)",
        queries.len(),
        rules.len(),
        started.elapsed(),
        loaded
    );
}
