//! `quire-bench crash-drill`: SIGKILL quire at random moments under a mixed write load and
//! check, after every kill, that every acknowledged write is in the database and that the
//! database passes SQLite's integrity check.
//!
//! One listening socket is bound once and inherited by every quire incarnation (as in
//! [`crate::restart_drill`]), so writers always dial the same address; while no process
//! serves, their connections wait in the backlog or fail, and a failed request is simply not
//! acknowledged. Writers (one signed-in user each) create articles, comment and favorite in a
//! closed loop and record what quire acknowledged with a 2xx. After each kill, with quire
//! dead, the drill opens the database itself (the SQLite file, or the PostgreSQL database
//! of `--database postgres://...`) and looks for every acknowledged write made so far; it
//! also checks that every article's `favorites_count` equals its favorites rows. The kill times come from a seeded RNG; the seed is printed so a failing run can be
//! repeated.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::restart_drill::{DrillArgs, sockets, spawn_quire, wait_ready};

#[derive(Debug, Args)]
pub struct CrashDrillArgs {
    #[command(flatten)]
    pub common: DrillArgs,
    /// Kill-and-restart cycles.
    #[arg(long, default_value_t = 200)]
    pub cycles: u32,
    /// Concurrent writers, each its own signed-in user.
    #[arg(long, default_value_t = 8)]
    pub writers: u64,
    /// Shortest time quire serves before it is killed.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    pub min_uptime: Duration,
    /// Longest time quire serves before it is killed.
    #[arg(long, default_value = "1200ms", value_parser = humantime::parse_duration)]
    pub max_uptime: Duration,
    /// Seed of the kill times and the writers' choices (random when not given).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// What the writers were told is stored.
#[derive(Debug, Default, Clone)]
struct Acked {
    articles: Vec<String>,
    comments: Vec<String>,
    /// (username, slug)
    favorites: Vec<(String, String)>,
}

impl Acked {
    fn total(&self) -> usize {
        self.articles.len() + self.comments.len() + self.favorites.len()
    }
}

/// What the drill saw.
#[derive(Debug, serde::Serialize)]
pub struct CrashResult {
    pub seed: u64,
    pub cycles: u32,
    pub acknowledged_writes: usize,
    pub lost_writes: usize,
    pub integrity_failures: u32,
    pub seconds: f64,
}

// The supervisor is plain synchronous code (the writers run on their own runtime), so
// sleeping a thread is right.
#[allow(clippy::disallowed_methods)]
pub fn run(args: CrashDrillArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.min_uptime <= args.max_uptime,
        "--min-uptime > --max-uptime"
    );
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!("crash drill: seed {seed}, {} cycles", args.cycles);
    let mut rng = StdRng::seed_from_u64(seed);
    let scratch = args.common.scratch("crash-drill")?;
    let dir = scratch.path();
    let database = args.common.database_url(dir);
    let (listener, notify_path, notify) = sockets(dir)?;
    let address = listener.local_addr()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut integrity_failures = 0;
    let mut lost = 0;
    let mut writers = Vec::new();
    for cycle in 1..=args.cycles {
        let mut quire = spawn_quire(
            &args.common.quire,
            &args.common.quire_args,
            &database,
            &notify_path,
            listener.try_clone()?.into(),
        )?;
        wait_ready(&notify, &mut quire)?;
        if writers.is_empty() {
            writers = (0..args.writers)
                .map(|w| {
                    runtime.spawn(writer(
                        w,
                        address,
                        seed ^ w.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                        acked.clone(),
                        stop.clone(),
                    ))
                })
                .collect();
        }
        let uptime = rng.random_range(args.min_uptime..=args.max_uptime);
        std::thread::sleep(uptime);
        kill_9(&mut quire)?;
        // quire is dead: whatever a writer holds as acknowledged now must be on disk.
        let snapshot = acked.lock().expect("acked lock").clone();
        let check = runtime.block_on(verify(&database, &snapshot))?;
        if !check.integrity_ok {
            integrity_failures += 1;
            eprintln!("cycle {cycle}: integrity check failed: {}", check.integrity);
        }
        if check.lost > 0 {
            eprintln!("cycle {cycle}: {} acknowledged writes missing", check.lost);
        }
        lost = lost.max(check.lost);
        eprint!(
            "\rcycle {cycle}/{}: {} acknowledged, {} lost, {} integrity failures ",
            args.cycles,
            snapshot.total(),
            lost,
            integrity_failures
        );
    }
    eprintln!();
    // A writer may hold a response that arrived just before the last kill and record it only
    // after the last check: stop the writers, wait for each to finish (a request in flight
    // ends by its 5 s timeout, since nothing serves now), then check everything once more.
    stop.store(true, Ordering::SeqCst);
    runtime.block_on(async {
        for writer in writers {
            let _ = writer.await;
        }
    });
    let snapshot = acked.lock().expect("acked lock").clone();
    let check = runtime.block_on(verify(&database, &snapshot))?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    if !check.integrity_ok {
        integrity_failures += 1;
        eprintln!("final check: integrity check failed: {}", check.integrity);
    }
    if check.lost > 0 {
        eprintln!("final check: {} acknowledged writes missing", check.lost);
    }
    lost = lost.max(check.lost);
    let total = snapshot.total();
    let result = CrashResult {
        seed,
        cycles: args.cycles,
        acknowledged_writes: total,
        lost_writes: lost,
        integrity_failures,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.common.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        println!(
            "{} SIGKILL cycles (seed {}): {} acknowledged writes, {} lost, {} integrity failures, {:.0} s",
            result.cycles,
            result.seed,
            result.acknowledged_writes,
            result.lost_writes,
            result.integrity_failures,
            result.seconds
        );
    }
    drop(scratch);
    if result.lost_writes > 0 || result.integrity_failures > 0 {
        bail!("acknowledged writes were lost or the database is damaged");
    }
    if result.acknowledged_writes == 0 {
        bail!("no write was acknowledged: the drill tested nothing");
    }
    Ok(())
}

fn kill_9(child: &mut Child) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -9 failed");
    child.wait()?;
    Ok(())
}

struct Check {
    integrity_ok: bool,
    integrity: String,
    lost: usize,
}

/// What the database quire left behind holds.
pub(crate) struct Stored {
    /// The database's own consistency verdict (`ok` when sound).
    integrity: String,
    pub(crate) articles: HashSet<String>,
    pub(crate) comments: HashSet<String>,
    /// "username slug"
    favorites: HashSet<String>,
    /// Articles whose `favorites_count` differs from their favorites rows.
    miscounted: u64,
}

const ARTICLE_SLUGS: &str = "SELECT slug FROM articles";
const COMMENT_BODIES: &str = "SELECT body FROM comments";
const FAVORITE_PAIRS: &str = "SELECT u.username || ' ' || a.slug FROM favorites f \
     JOIN users u ON u.id = f.user_id JOIN articles a ON a.id = f.article_id";
const MISCOUNTED: &str = "SELECT count(*) FROM articles a WHERE a.favorites_count <> \
     (SELECT count(*) FROM favorites f WHERE f.article_id = a.id)";

/// Opens the database quire left behind and looks for every acknowledged write.
async fn verify(database: &str, acked: &Acked) -> anyhow::Result<Check> {
    let stored = if database.starts_with("postgres://") || database.starts_with("postgresql://") {
        read_postgres(database).await?
    } else {
        let path = database
            .strip_prefix("sqlite://")
            .context("a sqlite:// or postgres:// database")?
            .to_owned();
        tokio::task::spawn_blocking(move || read_sqlite(Path::new(&path))).await??
    };
    let lost = acked
        .articles
        .iter()
        .filter(|s| !stored.articles.contains(*s))
        .count()
        + acked
            .comments
            .iter()
            .filter(|b| !stored.comments.contains(*b))
            .count()
        + acked
            .favorites
            .iter()
            .filter(|(user, slug)| !stored.favorites.contains(&format!("{user} {slug}")))
            .count();
    let mut integrity = stored.integrity;
    if stored.miscounted > 0 {
        integrity = format!(
            "{integrity}; {} articles' favorites_count differs from their favorites",
            stored.miscounted
        );
    }
    Ok(Check {
        integrity_ok: integrity == "ok",
        integrity,
        lost,
    })
}

fn read_sqlite(path: &Path) -> anyhow::Result<Stored> {
    let db = rusqlite::Connection::open(path).context("open the database after the kill")?;
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    let strings = |sql: &str| -> anyhow::Result<HashSet<String>> {
        let mut statement = db.prepare(sql)?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let miscounted: i64 = db.query_row(MISCOUNTED, [], |row| row.get(0))?;
    Ok(Stored {
        integrity,
        articles: strings(ARTICLE_SLUGS)?,
        comments: strings(COMMENT_BODIES)?,
        favorites: strings(FAVORITE_PAIRS)?,
        miscounted: miscounted.try_into().unwrap_or(u64::MAX),
    })
}

/// PostgreSQL has no whole-database check like SQLite's; its constraints are enforced on
/// every write, so "ok" here means the server answered and the counters match.
pub(crate) async fn read_postgres(url: &str) -> anyhow::Result<Stored> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("connect to PostgreSQL after the kill")?;
    let driver = tokio::spawn(connection);
    let strings = async |sql: &str| -> anyhow::Result<HashSet<String>> {
        Ok(client
            .query(sql, &[])
            .await?
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect())
    };
    let stored = Stored {
        integrity: "ok".to_owned(),
        articles: strings(ARTICLE_SLUGS).await?,
        comments: strings(COMMENT_BODIES).await?,
        favorites: strings(FAVORITE_PAIRS).await?,
        miscounted: client
            .query_one(MISCOUNTED, &[])
            .await?
            .get::<_, i64>(0)
            .try_into()
            .unwrap_or(u64::MAX),
    };
    drop(client);
    let _ = driver.await;
    Ok(stored)
}

/// One signed-in user writing in a closed loop until `stop`.
async fn writer(
    id: u64,
    address: SocketAddr,
    seed: u64,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let username = format!("drill{id}");
    let token = loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match sign_in(address, &username).await {
            Some(token) => break token,
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let mut own: Vec<String> = Vec::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let choice = if own.is_empty() {
            0
        } else {
            rng.random_range(0..10)
        };
        let outcome = match choice {
            0 | 1 => {
                let body = json!({"article": {
                    "title": format!("drill {id} {seq}"),
                    "description": "crash drill",
                    "body": "written while quire may die at any moment",
                }});
                call(
                    address,
                    Method::POST,
                    "/api/articles",
                    Some(&token),
                    Some(body),
                )
                .await
                .map(|(status, value)| {
                    if let (201, Some(slug)) = (status, value["article"]["slug"].as_str()) {
                        own.push(slug.to_owned());
                        acked
                            .lock()
                            .expect("acked lock")
                            .articles
                            .push(slug.to_owned());
                    }
                })
            }
            2..=7 => {
                let slug = own.choose(&mut rng).expect("an article").clone();
                let text = format!("drill {id} comment {seq}");
                let body = json!({"comment": {"body": text}});
                let path = format!("/api/articles/{slug}/comments");
                call(address, Method::POST, &path, Some(&token), Some(body))
                    .await
                    .map(|(status, _)| {
                        if status == 200 || status == 201 {
                            acked.lock().expect("acked lock").comments.push(text);
                        }
                    })
            }
            _ => {
                let slug = own.choose(&mut rng).expect("an article").clone();
                let path = format!("/api/articles/{slug}/favorite");
                call(address, Method::POST, &path, Some(&token), None)
                    .await
                    .map(|(status, _)| {
                        if status == 200 {
                            acked
                                .lock()
                                .expect("acked lock")
                                .favorites
                                .push((username.clone(), slug));
                        }
                    })
            }
        };
        if outcome.is_err() {
            // quire is down or restarting: try again shortly.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Registers the user or, if an earlier attempt already did, signs in; the token.
async fn sign_in(address: SocketAddr, username: &str) -> Option<String> {
    let email = format!("{username}@example.com");
    let attempts = [
        (
            "/api/users",
            json!({"user": {"username": username, "email": email, "password": "password-drill"}}),
        ),
        (
            "/api/users/login",
            json!({"user": {"email": email, "password": "password-drill"}}),
        ),
    ];
    for (path, body) in attempts {
        if let Ok((200 | 201, user)) = call(address, Method::POST, path, None, Some(body)).await
            && let Some(token) = user["user"]["token"].as_str()
        {
            return Some(token.to_owned());
        }
    }
    None
}

/// One request on a fresh connection; the status and the JSON body (null if none).
async fn call(
    address: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    tokio::time::timeout(Duration::from_secs(5), async {
        let stream = TcpStream::connect(address).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "quire")
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Token {token}"));
        }
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let response = sender
            .send_request(request.body(Full::new(Bytes::from(payload)))?)
            .await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    })
    .await
    .context("request timed out")?
}
