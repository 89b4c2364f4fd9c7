//! `quire-bench load`: the load generator. N keep-alive HTTP/1.1 connections, one tokio task
//! each, in a closed loop (each sends again as soon as it is answered) or an open loop at a
//! fixed total rate with latency counted from the intended send time. A warm-up precedes the
//! measured window; the server's CPU time over that window gives its cost per request.
//! Only the expected answers count as successes (any 2xx unless `--expect-status`, and a body
//! containing `--expect-body`); the rest are the row's errors. SIGTERM or SIGINT ends the
//! window early (the summary then covers the shorter window), so a drill can keep a load
//! running until its own work is done.
//!
//! Loopback targets only (127.0.0.0/8, ::1): this is a benchmark harness, not a way to load
//! someone else's server.

mod conn;
mod expect;
mod schedule;
mod stats;

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};
use tokio::time::{Instant, sleep, sleep_until};

use crate::cpu;
use crate::summary::{CpuCost, Latency, Summary};
use conn::{Plan, Target};
use expect::Expect;
use schedule::Schedule;
use stats::Stats;

/// Options of `quire-bench load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Target URL, e.g. http://127.0.0.1:8080/api/tags (loopback only).
    #[arg(long)]
    pub url: String,
    /// Keep-alive connections, one task each.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Length of the measured window.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Load before the window, not measured (connects, warms caches).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Total requests per second (open loop); without it, a closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Extra request header `Name: value`; repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request body, read once from this file.
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// Server process whose CPU time per request to report.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Give up on a connect or a response after this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Loopback source addresses to spread connections over, e.g. 127.0.0.2,127.0.0.3.
    #[arg(long, value_delimiter = ',')]
    pub source_ips: Vec<IpAddr>,
    /// Close each connection after this many requests and open a new one (connection
    /// churn); 0 keeps connections for the whole run.
    #[arg(long, default_value_t = 0)]
    pub requests_per_connection: u64,
    /// The status every response must have to count as a success; without it, any 2xx.
    #[arg(long)]
    pub expect_status: Option<u16>,
    /// Text every successful response's body must contain (bodies are then kept and searched).
    #[arg(long)]
    pub expect_body: Option<String>,
    /// Write the `"id"` of every successful response's body (its first `"id":` number, such
    /// as a created comment's) to this file, one per line, warm-up included: what the server
    /// acknowledged, for a crash check to look up afterwards.
    #[arg(long)]
    pub record_ids: Option<PathBuf>,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the load and prints the result on stdout.
pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    // 10,000 connections need 10,000 descriptors; the soft limit is often 1024.
    let nofile = rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;
    ensure!(
        args.connections as u64 + 64 <= nofile,
        "{} connections need more file descriptors than the limit of {nofile}",
        args.connections
    );
    let target = target(&args)?;
    for ip in &args.source_ips {
        ensure!(
            ip.is_loopback(),
            "--source-ips must be loopback addresses, not {ip}"
        );
    }
    let schedule = args
        .rate
        .map(|rate| Schedule::new(rate, args.connections))
        .transpose()?;
    ensure!(args.connections > 0, "--connections must be at least 1");
    ensure!(!args.duration.is_zero(), "--duration must be positive");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let summary = runtime.block_on(drive(&args, target, schedule))?;
    // Tasks still blocked on a dead peer are dropped here rather than waited for.
    runtime.shutdown_background();

    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string(&summary)?)?;
    } else {
        write!(stdout, "{}", summary.table())?;
    }
    Ok(())
}

async fn drive(
    args: &LoadArgs,
    target: Target,
    schedule: Option<Schedule>,
) -> anyhow::Result<Summary> {
    let start = Instant::now();
    let plan = Arc::new(Plan::new(
        start,
        start + args.warmup,
        start + args.warmup + args.duration,
        schedule,
        args.timeout,
        args.source_ips.clone(),
        args.requests_per_connection,
    ));
    let target = Arc::new(target);
    let stats = Arc::new(Stats::new());
    let server_pid = args.server_pid.map(|pid| pid.to_string());
    let ticks_per_second = cpu::clock_ticks_per_second();

    let tasks: Vec<_> = (0..args.connections)
        .map(|id| tokio::spawn(conn::run(id, target.clone(), plan.clone(), stats.clone())))
        .collect();
    let progress = tokio::spawn(progress(plan.clone(), stats.clone()));

    let mut stop = std::pin::pin!(stop_signal());
    tokio::select! {
        _ = sleep_until(plan.window_start) => {}
        _ = &mut stop => bail!("stopped during the warm-up: nothing was measured"),
    }
    let server_before = server_pid.as_deref().map(cpu::read).transpose()?;
    let client_before = cpu::read("self")?;
    tokio::select! {
        _ = sleep_until(plan.window_end()) => {}
        _ = &mut stop => plan.end_now(),
    }
    let server_after = server_pid.as_deref().map(cpu::read).transpose()?;
    let client_after = cpu::read("self")?;
    let window = plan.window_end() - plan.window_start;
    progress.abort();

    // Closed-loop connections stop after their request in flight; give them its timeout.
    let grace = sleep(args.timeout + Duration::from_millis(100));
    tokio::pin!(grace);
    for task in tasks {
        tokio::select! {
            _ = task => {}
            _ = &mut grace => break,
        }
    }

    if let Some(path) = &args.record_ids {
        let ids = stats.take_ids();
        let mut text = String::with_capacity(ids.len() * 8);
        for id in ids {
            text.push_str(&id.to_string());
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let responses = stats.measured.responses();
    let server_cpu = server_before.zip(server_after).map(|(before, after)| {
        let cpu = cpu::elapsed(before, after, ticks_per_second);
        CpuCost::new(cpu, window, responses)
    });
    let client_cpu = CpuCost::new(
        cpu::elapsed(client_before, client_after, ticks_per_second),
        window,
        responses,
    );
    Ok(Summary {
        url: args.url.clone(),
        method: args.method.clone(),
        connections: args.connections,
        rate: args.rate,
        duration_s: window.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        responses,
        rps: responses as f64 / window.as_secs_f64().max(f64::EPSILON),
        latency_us: Latency::from_histogram(&stats.histogram()),
        errors: stats.measured.errors(),
        server_cpu,
        client_cpu,
    })
}

/// Resolves on the first SIGTERM or SIGINT; never if the handlers cannot be installed.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// One line per second on stderr: phase, throughput over the last second, errors so far.
async fn progress(plan: Arc<Plan>, stats: Arc<Stats>) {
    let mut ticker =
        tokio::time::interval_at(plan.start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last = 0;
    loop {
        let now = ticker.tick().await;
        let responses = stats.live.responses();
        // The line describes the second that just ended.
        let phase = if now <= plan.window_start {
            "warm-up"
        } else {
            "measure"
        };
        eprintln!(
            "[{:>4.0}s {phase}] {:>8} req/s  errors {}",
            (now - plan.start).as_secs_f64(),
            responses - last,
            stats.live.errors()
        );
        last = responses;
    }
}

/// The request to send, from the command line.
fn target(args: &LoadArgs) -> anyhow::Result<Target> {
    let (addr, host, uri) = parse_url(&args.url)?;
    let method = Method::from_bytes(args.method.as_bytes())
        .with_context(|| format!("bad --method {}", args.method))?;
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_str(&host)?);
    for header in &args.headers {
        let (name, value) = parse_header(header)?;
        headers.append(name, value);
    }
    let body = match &args.body_file {
        Some(path) => {
            Bytes::from(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => Bytes::new(),
    };
    Ok(Target {
        addr,
        method,
        uri,
        headers,
        body,
        expect: Expect {
            status: args.expect_status,
            body: args
                .expect_body
                .as_ref()
                .map(|text| text.as_bytes().to_vec()),
            record_ids: args.record_ids.is_some(),
        },
    })
}

/// Splits `http://host:port/path?query` into a loopback socket address, the `Host` header
/// value and the origin-form request target.
fn parse_url(url: &str) -> anyhow::Result<(SocketAddr, String, Uri)> {
    let uri: Uri = url.parse().with_context(|| format!("bad --url {url}"))?;
    ensure!(
        uri.scheme_str() == Some("http"),
        "--url must start with http:// (TLS is not supported)"
    );
    let Some(authority) = uri.authority() else {
        bail!("--url needs a host: {url}");
    };
    let port = authority.port_u16().unwrap_or(80);
    let addr = (authority.host().trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} has no address"))?;
    ensure!(
        addr.ip().is_loopback(),
        "--url must be on loopback (127.0.0.0/8 or ::1), not {}",
        addr.ip()
    );
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Ok((addr, authority.to_string(), path.parse()?))
}

/// Parses `Name: value`.
fn parse_header(header: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let Some((name, value)) = header.split_once(':') else {
        bail!("--header must look like `Name: value`, got {header:?}");
    };
    Ok((
        HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("bad header name in {header:?}"))?,
        HeaderValue::from_str(value.trim())
            .with_context(|| format!("bad header value in {header:?}"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads the hello peer, in this process, for a fraction of a second.
    async fn load_hello(connections: usize, rate: Option<f64>, source_ips: Vec<IpAddr>) -> Summary {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(crate::hello::serve(listener));
        let args = LoadArgs {
            url: format!("http://{addr}/anything"),
            connections,
            duration: Duration::from_millis(500),
            warmup: Duration::from_millis(100),
            rate,
            method: "GET".to_owned(),
            headers: vec!["X-Bench: 1".to_owned()],
            body_file: None,
            server_pid: Some(std::process::id()),
            timeout: Duration::from_secs(2),
            source_ips,
            requests_per_connection: 0,
            expect_status: None,
            expect_body: Some("hello".to_owned()),
            record_ids: None,
            json: true,
        };
        let schedule = rate.map(|r| Schedule::new(r, connections).unwrap());
        let summary = drive(&args, target(&args).unwrap(), schedule)
            .await
            .unwrap();
        server.abort();
        summary
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closed_loop_against_the_hello_peer() {
        let ips = vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
        let summary = load_hello(8, None, ips).await;
        assert_eq!(summary.errors.total(), 0, "{summary:?}");
        assert!(summary.responses > 0);
        assert!(summary.latency_us.p50 > 0 && summary.latency_us.max >= summary.latency_us.p99);
        assert!(summary.server_cpu.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unexpected_answers_are_errors() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(crate::hello::serve(listener));
        let mut args = LoadArgs {
            url: format!("http://{addr}/"),
            connections: 2,
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(50),
            rate: None,
            method: "GET".to_owned(),
            headers: Vec::new(),
            body_file: None,
            server_pid: None,
            timeout: Duration::from_secs(2),
            source_ips: Vec::new(),
            requests_per_connection: 0,
            expect_status: Some(201),
            expect_body: None,
            record_ids: None,
            json: true,
        };
        let summary = drive(&args, target(&args).unwrap(), None).await.unwrap();
        assert!(summary.responses > 0);
        assert_eq!(
            summary.errors.status_other, summary.responses,
            "{summary:?}"
        );
        args.expect_status = None;
        args.expect_body = Some("not in the body".to_owned());
        let summary = drive(&args, target(&args).unwrap(), None).await.unwrap();
        assert_eq!(summary.errors.body, summary.responses, "{summary:?}");
        server.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_loop_sends_at_the_asked_rate() {
        let summary = load_hello(4, Some(200.0), Vec::new()).await;
        assert_eq!(summary.errors.total(), 0, "{summary:?}");
        // 200 req/s over a 0.5 s window: 100 slots, give or take the edges.
        assert!((90..=110).contains(&summary.responses), "{summary:?}");
    }

    #[test]
    fn url_becomes_address_host_and_origin_form() {
        let (addr, host, uri) = parse_url("http://127.0.0.1:18080/api/articles?limit=20").unwrap();
        assert_eq!(addr, "127.0.0.1:18080".parse().unwrap());
        assert_eq!(host, "127.0.0.1:18080");
        assert_eq!(uri, "/api/articles?limit=20");
        let (_, _, root) = parse_url("http://localhost:9").unwrap();
        assert_eq!(root, "/");
    }

    #[test]
    fn only_plain_http_on_loopback() {
        assert!(parse_url("https://127.0.0.1/").is_err());
        assert!(parse_url("http://10.1.2.3/").is_err());
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn headers_split_on_the_first_colon() {
        let (name, value) = parse_header("Authorization: Token a.b:c").unwrap();
        assert_eq!(name, "authorization");
        assert_eq!(value, "Token a.b:c");
        assert!(parse_header("no colon").is_err());
    }
}
