//! `quire-bench cluster-drill`: several quire instances on one PostgreSQL and a private
//! Redis, under mixed load, while the drill breaks them: `kill -9` of one instance (then
//! restarted), `kill -9` of Redis (then restarted, with or without its data: see
//! `--redis-persistence`), a rolling restart of all of them.
//!
//! Writers (one user each) update, comment and create, and read every acknowledged write
//! back at once on another instance; anonymous readers add an open-loop read load; SSE
//! subscribers on every instance receive every event, resuming with `Last-Event-ID` on the
//! next instance whenever theirs goes away. The drill fails on any stale read, any
//! acknowledged write missing from the database, any event of an acknowledged write missed
//! or delivered twice, or any failed request other than those cut off by the `kill -9`
//! (counted and shown). It also measures how long an event takes from the write's request
//! to a subscriber on another instance.

mod client;
mod events;
mod ledger;
mod processes;
mod workload;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use client::Cluster;
use events::Seen;
use ledger::{Ledger, Phase};
use processes::{Instance, Launch, RedisServer, free_port};

#[derive(Debug, Args)]
pub struct ClusterDrillArgs {
    /// The quire binary to run.
    #[arg(long)]
    pub quire: PathBuf,
    /// The PostgreSQL database every instance serves (an empty one: the drill signs up its
    /// own users).
    #[arg(long)]
    pub database: String,
    /// The Redis server binary; the drill runs a private one (it restarts it).
    #[arg(long, default_value = "redis-server")]
    pub redis_server: String,
    /// Its port (a free one when not given).
    #[arg(long)]
    pub redis_port: Option<u16>,
    /// `aof`: Redis keeps an append-only file fsynced on every write, so the `kill -9` and
    /// restart keeps the streams (the configuration README recommends); `none`: the restart
    /// loses every key. Caches stay exact either way; without persistence, events appended in
    /// Redis's last moments that an instance had not yet read are lost to its subscribers.
    #[arg(long, value_enum, default_value_t = RedisPersistence::Aof)]
    pub redis_persistence: RedisPersistence,
    /// Instances to run.
    #[arg(long, default_value_t = 3)]
    pub instances: usize,
    /// Instance k listens on BASE + k (k from 1), as `deploy/nginx.conf` expects with 8080;
    /// free ports when not given.
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Send all load through this load balancer (e.g. http://127.0.0.1:8080) instead of
    /// round-robin to the instances.
    #[arg(long)]
    pub via: Option<String>,
    /// Writers, each its own signed-in user.
    #[arg(long, default_value_t = 8)]
    pub writers: usize,
    /// SSE subscribers starting on each instance.
    #[arg(long, default_value_t = 2)]
    pub subscribers: usize,
    /// Anonymous reads per second beside the writers (open loop).
    #[arg(long, default_value_t = 2000.0)]
    pub read_rate: f64,
    /// In the rolling restart, how long each restarted instance serves before the next one
    /// stops (as an orchestrator's minimum ready time; a load balancer's passive health
    /// check needs it to see the instance back).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub restart_gap: Duration,
    /// How long each phase runs under load.
    #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
    pub phase: Duration,
    /// Extra arguments for every quire process.
    #[arg(long = "quire-arg", allow_hyphen_values = true)]
    pub quire_args: Vec<String>,
    /// Seed of the writers' choices (random when not given).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// How the drill's Redis keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisPersistence {
    Aof,
    None,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Default, serde::Serialize)]
pub struct Millis {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Millis {
    fn of(mut micros: Vec<u64>) -> Self {
        if micros.is_empty() {
            return Self::default();
        }
        micros.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            micros[rank - 1] as f64 / 1000.0
        };
        Self {
            count: micros.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// What the drill saw.
#[derive(Debug, serde::Serialize)]
pub struct ClusterResult {
    pub instances: usize,
    pub via: Option<String>,
    pub redis_persistence: RedisPersistence,
    pub seed: u64,
    pub seconds: f64,
    pub writes_acknowledged: u64,
    pub read_backs: u64,
    pub background_reads: u64,
    pub read_rate: f64,
    pub stale_reads: usize,
    pub lost_writes: usize,
    pub subscribers: usize,
    pub events_expected_per_subscriber: usize,
    pub events_missed: usize,
    pub events_duplicated: u64,
    pub subscriber_reconnects: u64,
    pub errors: u64,
    pub killed_in_flight: u64,
    pub connect_retries: u64,
    pub write_latency: Millis,
    /// From a write's request to a subscriber on another instance, during the steady phase.
    pub event_latency_steady: Millis,
    /// The same over the whole drill, faults included.
    pub event_latency_all: Millis,
}

pub fn run(args: ClusterDrillArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(drill(&args))?;
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    let failed = result.stale_reads > 0
        || result.lost_writes > 0
        || result.events_missed > 0
        || result.events_duplicated > 0
        || result.errors > 0;
    if failed {
        bail!(
            "cluster drill failed: {} stale reads, {} lost writes, {} events missed, {} duplicated, {} errors",
            result.stale_reads,
            result.lost_writes,
            result.events_missed,
            result.events_duplicated,
            result.errors
        );
    }
    if result.writes_acknowledged == 0 {
        bail!("no write was acknowledged: the drill tested nothing");
    }
    Ok(())
}

async fn drill(args: &ClusterDrillArgs) -> anyhow::Result<ClusterResult> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let dir = std::env::temp_dir().join(format!("quire-cluster-drill-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    eprintln!(
        "cluster drill: {} instances, seed {seed}, logs in {}",
        args.instances,
        dir.display()
    );
    let redis_port = match args.redis_port {
        Some(port) => port,
        None => free_port()?,
    };
    let mut redis = RedisServer::start(
        &args.redis_server,
        redis_port,
        &dir,
        args.redis_persistence == RedisPersistence::Aof,
    )
    .await?;
    let mut extra: Vec<String> = [
        // The drill's clients all come from 127.0.0.1: per-address limits would throttle
        // them (the limits have tests of their own).
        "--rate-limit-ip",
        "0",
        "--rate-limit-user",
        "0",
        "--rate-limit-auth",
        "0",
        "--sign-in-failures",
        "0",
        "--sign-in-failures-ip",
        "0",
        // Resume backlog longer than a subscriber's longest gap at the drill's write rate.
        "--live-backlog",
        "20000",
    ]
    .map(str::to_owned)
    .to_vec();
    extra.extend(args.quire_args.iter().cloned());
    let launch = Launch {
        quire: args.quire.clone(),
        database: args.database.clone(),
        redis: redis.url(),
        extra,
        logs: dir.clone(),
    };
    let mut instances = Vec::new();
    for index in 0..args.instances {
        let port = match args.base_port {
            Some(base) => base + u16::try_from(index + 1)?,
            None => free_port()?,
        };
        instances.push(Arc::new(Instance::new(index, port)));
    }
    let cluster = Arc::new(Cluster::new(instances.clone(), args.via.clone())?);
    // One at a time: the first applies the migrations.
    for instance in &instances {
        instance.start(&launch, &cluster.http).await?;
    }
    let started = tokio::time::Instant::now();
    let ledger = Arc::new(Ledger::default());
    ledger.enter(Phase::Steady);

    let stop_load = Arc::new(AtomicBool::new(false));
    let stop_subscribers = Arc::new(AtomicBool::new(false));
    let subscribed = Arc::new(tokio::sync::Semaphore::new(0));
    let mut seen_all = Vec::new();
    let mut subscribers = Vec::new();
    for home in 0..args.instances {
        for _ in 0..args.subscribers {
            let seen = Arc::new(Mutex::new(Seen::default()));
            seen_all.push(seen.clone());
            subscribers.push(tokio::spawn(events::subscriber(
                cluster.clone(),
                home,
                seen,
                subscribed.clone(),
                stop_subscribers.clone(),
            )));
        }
    }
    let want = u32::try_from(seen_all.len())?;
    tokio::time::timeout(Duration::from_secs(10), subscribed.acquire_many(want))
        .await
        .context("subscribers not connected within 10 s")??
        .forget();
    // Every instance's subscription is in place before the first event.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut load = Vec::new();
    for id in 0..args.writers {
        load.push(tokio::spawn(workload::writer(
            id,
            cluster.clone(),
            ledger.clone(),
            stop_load.clone(),
            seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )));
    }
    load.push(tokio::spawn(workload::readers(
        cluster.clone(),
        ledger.clone(),
        stop_load.clone(),
        args.read_rate,
        args.writers,
    )));

    tokio::time::sleep(args.phase).await;
    ledger.enter(Phase::KillNine);
    instances[0].kill().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    instances[0].start(&launch, &cluster.http).await?;
    tokio::time::sleep(args.phase).await;

    ledger.enter(Phase::RedisRestart);
    redis.restart(&dir).await?;
    tokio::time::sleep(args.phase).await;

    ledger.enter(Phase::RollingRestart);
    for instance in &instances {
        instance.stop().await?;
        instance.start(&launch, &cluster.http).await?;
        tokio::time::sleep(args.restart_gap).await;
    }
    tokio::time::sleep(args.phase).await;

    ledger.enter(Phase::Drain);
    stop_load.store(true, Ordering::SeqCst);
    for task in load {
        task.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let expected: Vec<String> = ledger.expected.lock().expect("lock").clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline
        && !seen_all.iter().all(|s| {
            let s = s.lock().expect("seen lock");
            expected.iter().all(|k| s.keys.contains_key(k))
        })
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_subscribers.store(true, Ordering::SeqCst);
    for task in subscribers {
        task.await?;
    }
    let lost_writes = lost_writes(&args.database, &ledger).await?;
    for instance in &instances {
        let _ = instance.kill().await;
    }

    let (mut missed, mut duplicated, mut reconnects) = (0, 0, 0);
    for seen in &seen_all {
        let seen = seen.lock().expect("seen lock");
        let gaps: Vec<&String> = expected
            .iter()
            .filter(|k| !seen.keys.contains_key(*k))
            .collect();
        if let Some(first) = gaps.first() {
            eprintln!(
                "cluster drill: a subscriber missed {} events, e.g. {first}",
                gaps.len()
            );
        }
        missed += gaps.len();
        duplicated += seen.duplicate_ids + seen.keys.values().filter(|n| **n > 1).count() as u64;
        reconnects += seen.reconnects;
    }
    let (steady, all) = event_latencies(&ledger, &seen_all);
    let write_us = ledger.write_us.lock().expect("lock").clone();
    let stale_reads = ledger.stale.lock().expect("lock").len();
    let result = ClusterResult {
        instances: args.instances,
        via: args.via.clone(),
        redis_persistence: args.redis_persistence,
        seed,
        seconds,
        writes_acknowledged: ledger.writes_acked.load(Ordering::SeqCst),
        read_backs: ledger.read_backs.load(Ordering::SeqCst),
        background_reads: ledger.background_reads.load(Ordering::SeqCst),
        read_rate: args.read_rate,
        stale_reads,
        lost_writes,
        subscribers: seen_all.len(),
        events_expected_per_subscriber: expected.len(),
        events_missed: missed,
        events_duplicated: duplicated,
        subscriber_reconnects: reconnects,
        errors: ledger.error_count.load(Ordering::SeqCst),
        killed_in_flight: ledger.killed_in_flight.load(Ordering::SeqCst),
        connect_retries: ledger.connect_retries.load(Ordering::SeqCst),
        write_latency: Millis::of(write_us),
        event_latency_steady: Millis::of(steady),
        event_latency_all: Millis::of(all),
    };
    let clean = result.stale_reads == 0
        && result.lost_writes == 0
        && result.events_missed == 0
        && result.events_duplicated == 0
        && result.errors == 0;
    if clean {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("cluster drill: logs kept in {}", dir.display());
    }
    Ok(result)
}

/// Event latencies (microseconds) from a write's request to each subscriber on another
/// instance that received it: (writes sent in the steady phase, all).
fn event_latencies(ledger: &Ledger, seen_all: &[Arc<Mutex<Seen>>]) -> (Vec<u64>, Vec<u64>) {
    let sent = ledger.sent.lock().expect("sent lock");
    let (mut steady, mut all) = (Vec::new(), Vec::new());
    for seen in seen_all {
        let seen = seen.lock().expect("seen lock");
        let mut first: HashSet<&str> = HashSet::new();
        for received in &seen.received {
            if !first.insert(&received.key) {
                continue;
            }
            let Some(write) = sent.get(&received.key) else {
                continue;
            };
            let cross = match (write.instance, received.instance) {
                (Some(a), Some(b)) => a != b,
                _ => true,
            };
            if !cross {
                continue;
            }
            let micros = received.at.saturating_duration_since(write.at).as_micros();
            let micros = u64::try_from(micros).unwrap_or(u64::MAX);
            all.push(micros);
            if write.phase == Phase::Steady {
                steady.push(micros);
            }
        }
    }
    (steady, all)
}

/// Acknowledged comments and articles missing from the database (read as the crash drill
/// reads it).
async fn lost_writes(database: &str, ledger: &Ledger) -> anyhow::Result<usize> {
    let stored = crate::crash_drill::read_postgres(database)
        .await
        .context("look for the acknowledged writes in PostgreSQL")?;
    let missing = |acked: &Mutex<Vec<String>>, stored: &HashSet<String>| {
        acked
            .lock()
            .expect("lock")
            .iter()
            .filter(|w| !stored.contains(*w))
            .count()
    };
    Ok(missing(&ledger.acked_comments, &stored.comments)
        + missing(&ledger.acked_articles, &stored.articles))
}
