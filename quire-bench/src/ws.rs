//! `quire-bench ws`: the cost of idle WebSocket connections. Opens N connections to a
//! loopback WebSocket server (quire's `/api/live?tag=x`, or the `ws-peer`), keeps them idle
//! (answering pings), and reports the server's resident memory per connection, the kernel's
//! socket memory, connect time and connections lost during a hold. With `--event-url` and
//! `--token` it then writes one article with the subscribed tag and measures how long the
//! event takes to reach every subscriber.
//!
//! Loopback targets only, a bounded number of connections for a bounded time.

mod event;
mod probe;

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use futures_util::StreamExt as _;
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use event::FanOut;

/// Options of `quire-bench ws`.
#[derive(Debug, clap::Args)]
pub struct WsArgs {
    /// WebSocket URL, e.g. ws://127.0.0.1:18090/api/live?tag=bench (loopback only).
    #[arg(long)]
    pub url: String,
    /// Idle connections to open.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Loopback source addresses to spread connections over, e.g. 127.0.0.2,127.0.0.3.
    #[arg(long, value_delimiter = ',')]
    pub source_ips: Vec<IpAddr>,
    /// Server process whose resident memory to measure.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Connection handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Pause after the last connect before memory is read.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// How long the connections are held idle after the reading; losses are counted.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub hold: Duration,
    /// `POST /api/articles` URL that makes one event after the hold (needs --token).
    #[arg(long, requires = "token")]
    pub event_url: Option<String>,
    /// Token of the user who writes the event's article.
    #[arg(long)]
    pub token: Option<String>,
    /// Several `ws` processes sharing one event (subscribers of several instances): the one
    /// given --event-url writes the moment its write was answered here (Unix nanoseconds);
    /// the others, given only this file, wait for it after their hold and count their
    /// subscribers' delays from that moment.
    #[arg(long)]
    pub event_time_file: Option<PathBuf>,
    /// Longest wait for the event to reach every subscriber.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub event_timeout: Duration,
    /// File created once every connection is open and memory is read (for scripts that
    /// start more load during the hold).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// Give up on one connect after this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured.
#[derive(Debug, serde::Serialize)]
pub struct WsSummary {
    pub connections: usize,
    pub connected: usize,
    pub connect_failed: usize,
    pub connect_secs: f64,
    pub connect_p99_ms: f64,
    pub server_rss_before: Option<u64>,
    pub server_rss_connected: Option<u64>,
    pub server_rss_end: Option<u64>,
    /// Server resident memory growth per open connection, in bytes.
    pub server_rss_per_connection: Option<f64>,
    /// Growth of the kernel's TCP socket memory (both ends on loopback) per connection.
    pub kernel_socket_bytes_per_connection: f64,
    /// `ss -tm` socket memory of the server's side, summed, and the sockets it saw.
    pub server_skmem_bytes: u64,
    pub server_skmem_sockets: u64,
    pub client_rss_per_connection: f64,
    pub hold_secs: f64,
    /// Connections that ended between connect and the end of the hold.
    pub lost: usize,
    pub fan_out: Option<FanOut>,
}

/// Shared by the connection tasks.
struct Shared {
    connected: AtomicUsize,
    failed: AtomicUsize,
    closed: AtomicUsize,
    /// Per connection: nanoseconds after `base` of its first text message; 0 = none yet.
    arrivals: Vec<AtomicU64>,
    connect_times: std::sync::Mutex<Vec<Duration>>,
    base: Instant,
    /// The wall clock at `base` (to compare arrivals with another process's write).
    base_wall: std::time::SystemTime,
}

/// Runs the scenario and prints the result on stdout.
pub fn run(args: WsArgs) -> anyhow::Result<()> {
    let nofile = rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;
    ensure!(
        args.connections as u64 + 64 <= nofile,
        "{} connections need more file descriptors than the limit of {nofile}",
        args.connections
    );
    for ip in &args.source_ips {
        ensure!(ip.is_loopback(), "--source-ips must be loopback, not {ip}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let summary = runtime.block_on(scenario(&args))?;
    // Dropping the runtime closes every connection at once.
    drop(runtime);
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string(&summary)?)?;
    } else {
        writeln!(stdout, "{}", table(&summary))?;
    }
    Ok(())
}

async fn scenario(args: &WsArgs) -> anyhow::Result<WsSummary> {
    let (addr, tag) = parse_ws_url(&args.url)?;
    let server_rss = || {
        args.server_pid
            .map(|pid| probe::rss_bytes(&pid.to_string()))
    };
    let server_rss_before = server_rss().transpose()?;
    let socket_before = probe::tcp_socket_bytes()?;
    let client_before = probe::rss_bytes("self")?;

    let shared = Arc::new(Shared {
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        closed: AtomicUsize::new(0),
        arrivals: (0..args.connections).map(|_| AtomicU64::new(0)).collect(),
        connect_times: std::sync::Mutex::new(Vec::with_capacity(args.connections)),
        base: Instant::now(),
        base_wall: std::time::SystemTime::now(),
    });
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let started = Instant::now();
    for id in 0..args.connections {
        let source =
            (!args.source_ips.is_empty()).then(|| args.source_ips[id % args.source_ips.len()]);
        let task = Connection {
            id,
            addr,
            source,
            url: args.url.clone(),
            timeout: args.timeout,
            shared: shared.clone(),
            gate: gate.clone(),
        };
        tokio::spawn(task.run());
    }
    while shared.connected.load(Ordering::SeqCst) + shared.failed.load(Ordering::SeqCst)
        < args.connections
    {
        sleep(Duration::from_millis(20)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let connected = shared.connected.load(Ordering::SeqCst);
    eprintln!("ws: {connected} connected in {connect_secs:.1} s; settling");

    sleep(args.settle).await;
    let server_rss_connected = server_rss().transpose()?;
    let socket_after = probe::tcp_socket_bytes()?;
    // `ss` is optional: without it only the machine-wide figure is reported.
    let (server_skmem_bytes, server_skmem_sockets) =
        probe::port_socket_bytes(addr.port()).unwrap_or((0, 0));
    let client_after = probe::rss_bytes("self")?;
    if let Some(path) = &args.ready_file {
        std::fs::write(path, b"ready\n").with_context(|| format!("writing {}", path.display()))?;
    }

    eprintln!("ws: holding for {:?}", args.hold);
    let hold_start = Instant::now();
    sleep(args.hold).await;
    let hold_secs = hold_start.elapsed().as_secs_f64();
    let lost = shared.closed.load(Ordering::SeqCst);

    let fan_out = match (&args.event_url, &args.token, tag) {
        (Some(url), Some(token), Some(tag)) => {
            let answered = event::create_article(url, token, &tag).await?;
            if let Some(path) = &args.event_time_file {
                let wall = shared.base_wall + answered.duration_since(shared.base);
                let nanos = wall.duration_since(std::time::UNIX_EPOCH)?.as_nanos();
                tokio::fs::write(path, nanos.to_string())
                    .await
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Some(measure_fan_out(&shared, answered, args.event_timeout).await)
        }
        (Some(_), _, None) => anyhow::bail!("--event-url needs a `tag=` in --url"),
        (Some(_), None, _) => anyhow::bail!("--event-url needs --token"),
        (None, _, _) => match &args.event_time_file {
            Some(path) => {
                let answered =
                    event_time_from(path, &shared, args.hold + Duration::from_secs(120)).await?;
                Some(measure_fan_out(&shared, answered, args.event_timeout).await)
            }
            None => None,
        },
    };
    let server_rss_end = server_rss().transpose()?;

    let per = |before: u64, after: u64| (after as f64 - before as f64) / connected.max(1) as f64;
    let connect_p99_ms = {
        let mut times = shared.connect_times.lock().unwrap().clone();
        times.sort_unstable();
        event::percentile(&times, 0.99).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(WsSummary {
        connections: args.connections,
        connected,
        connect_failed: shared.failed.load(Ordering::SeqCst),
        connect_secs,
        connect_p99_ms,
        server_rss_before,
        server_rss_connected,
        server_rss_end,
        server_rss_per_connection: server_rss_before
            .zip(server_rss_connected)
            .map(|(b, a)| per(b, a)),
        kernel_socket_bytes_per_connection: per(socket_before, socket_after),
        server_skmem_bytes,
        server_skmem_sockets,
        client_rss_per_connection: per(client_before, client_after),
        hold_secs,
        lost,
        fan_out,
    })
}

/// Waits (up to `wait`) for another process's event time in `path`; that moment on this
/// process's clock.
async fn event_time_from(
    path: &std::path::Path,
    shared: &Shared,
    wait: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + wait;
    let nanos: u64 = loop {
        if let Ok(text) = tokio::fs::read_to_string(path).await
            && let Ok(nanos) = text.trim().parse()
        {
            break nanos;
        }
        ensure!(
            Instant::now() < deadline,
            "no event time in {} after {wait:?}",
            path.display()
        );
        sleep(Duration::from_millis(20)).await;
    };
    let wall = std::time::UNIX_EPOCH + Duration::from_nanos(nanos);
    let since_base = wall.duration_since(shared.base_wall).unwrap_or_default();
    Ok(shared.base + since_base)
}

/// Waits until every open connection got an event or time is up; delays from `answered`.
async fn measure_fan_out(shared: &Shared, answered: Instant, timeout: Duration) -> FanOut {
    let open = shared.connected.load(Ordering::SeqCst) - shared.closed.load(Ordering::SeqCst);
    let deadline = answered + timeout;
    loop {
        let arrived = shared
            .arrivals
            .iter()
            .filter(|a| a.load(Ordering::Relaxed) != 0)
            .count();
        if arrived >= open || Instant::now() >= deadline {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    let answered_at = answered.duration_since(shared.base);
    let delays: Vec<Option<Duration>> = shared
        .arrivals
        .iter()
        .map(|a| match a.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos).saturating_sub(answered_at)),
        })
        .collect();
    // Connections that never opened are not subscribers.
    let mut fan_out = FanOut::from_delays(&delays);
    fan_out.subscribers = open;
    fan_out
}

/// One client connection: connects, then reads (which answers pings) until the end.
struct Connection {
    id: usize,
    addr: SocketAddr,
    source: Option<IpAddr>,
    url: String,
    timeout: Duration,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
}

impl Connection {
    async fn run(self) {
        let permit = self.gate.clone().acquire_owned().await;
        let started = Instant::now();
        let socket = match tokio::time::timeout(self.timeout, self.connect()).await {
            Ok(Ok(socket)) => socket,
            Ok(Err(error)) => {
                if self.shared.failed.fetch_add(1, Ordering::SeqCst) == 0 {
                    eprintln!("ws: connect failed: {error:#}");
                }
                return;
            }
            Err(_) => {
                self.shared.failed.fetch_add(1, Ordering::SeqCst);
                return;
            }
        };
        drop(permit);
        self.shared
            .connect_times
            .lock()
            .unwrap()
            .push(started.elapsed());
        self.shared.connected.fetch_add(1, Ordering::SeqCst);
        let mut socket = socket;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(_))) => {
                    let nanos = self.shared.base.elapsed().as_nanos().max(1) as u64;
                    let _ = self.shared.arrivals[self.id].compare_exchange(
                        0,
                        nanos,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        self.shared.closed.fetch_add(1, Ordering::SeqCst);
    }

    async fn connect(
        &self,
    ) -> anyhow::Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>> {
        let socket = match self.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(ip) = self.source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = socket.connect(self.addr).await?;
        stream.set_nodelay(true)?;
        // A small read buffer: 18,000 clients with tungstenite's default 128 KiB would
        // need gigabytes on the client side.
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let (socket, _) =
            tokio_tungstenite::client_async_with_config(self.url.as_str(), stream, Some(config))
                .await?;
        Ok(socket)
    }
}

/// `ws://127.0.0.1:PORT/path?tag=x` -> (loopback address, the first `tag`).
fn parse_ws_url(url: &str) -> anyhow::Result<(SocketAddr, Option<String>)> {
    let rest = url
        .strip_prefix("ws://")
        .with_context(|| format!("--url must start with ws://, got {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = host
        .parse()
        .with_context(|| format!("--url needs an IP:port host, got {host}"))?;
    ensure!(
        addr.ip().is_loopback(),
        "--url must be on loopback (127.0.0.0/8 or ::1), not {}",
        addr.ip()
    );
    let tag = path.split_once('?').and_then(|(_, query)| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("tag="))
            .map(str::to_owned)
    });
    Ok((addr, tag))
}

fn table(s: &WsSummary) -> String {
    let kib = |bytes: f64| format!("{:.2} KiB", bytes / 1024.0);
    let mut out = format!(
        "connections        {} of {} ({} failed) in {:.1} s, connect p99 {:.1} ms\n",
        s.connected, s.connections, s.connect_failed, s.connect_secs, s.connect_p99_ms
    );
    if let Some(per) = s.server_rss_per_connection {
        out += &format!("server RSS         {} per connection\n", kib(per));
    }
    out += &format!(
        "kernel sockets     {} per connection (both ends); server side ss: {} over {} sockets\n",
        kib(s.kernel_socket_bytes_per_connection),
        s.server_skmem_bytes,
        s.server_skmem_sockets
    );
    out += &format!(
        "client RSS         {} per connection\nlost in hold       {} over {:.0} s",
        kib(s.client_rss_per_connection),
        s.lost,
        s.hold_secs
    );
    if let Some(f) = &s.fan_out {
        out += &format!(
            "\nfan-out            {} of {} delivered; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            f.delivered, f.subscribers, f.p50_ms, f.p99_ms, f.max_ms
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small run against the in-process ws peer: everything connects, nothing is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_to_the_peer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(crate::ws_peer::serve(listener));
        let args = WsArgs {
            url: format!("ws://{addr}/any/path"),
            connections: 50,
            source_ips: vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()],
            server_pid: Some(std::process::id()),
            connect_concurrency: 8,
            settle: Duration::from_millis(50),
            hold: Duration::from_millis(200),
            event_url: None,
            token: None,
            event_timeout: Duration::from_secs(1),
            event_time_file: None,
            ready_file: None,
            timeout: Duration::from_secs(5),
            json: true,
        };
        let summary = scenario(&args).await.unwrap();
        assert_eq!(
            (summary.connected, summary.connect_failed, summary.lost),
            (50, 0, 0)
        );
        assert!(summary.server_rss_per_connection.is_some());
        assert!(summary.fan_out.is_none());
        assert!(table(&summary).contains("50 of 50"));
    }

    /// The peer fans one probe event out to every connection, as quire does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_peer_fans_the_probe_out_to_everyone() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(crate::ws_peer::serve(listener));
        let args = WsArgs {
            url: format!("ws://{addr}/api/live?tag=bench"),
            connections: 40,
            source_ips: vec![],
            server_pid: None,
            connect_concurrency: 8,
            settle: Duration::from_millis(50),
            hold: Duration::from_millis(100),
            event_url: Some(format!("http://{addr}/api/articles")),
            token: Some("unused".into()),
            event_timeout: Duration::from_secs(5),
            event_time_file: None,
            ready_file: None,
            timeout: Duration::from_secs(5),
            json: true,
        };
        let summary = scenario(&args).await.unwrap();
        let fan_out = summary.fan_out.expect("a fan-out");
        assert_eq!((fan_out.subscribers, fan_out.delivered), (40, 40));
    }

    #[test]
    fn ws_urls() {
        let (addr, tag) = parse_ws_url("ws://127.0.0.1:18090/api/live?all=true&tag=bench").unwrap();
        assert_eq!(addr.port(), 18090);
        assert_eq!(tag.as_deref(), Some("bench"));
        let (_, tag) = parse_ws_url("ws://127.0.0.1:9/").unwrap();
        assert_eq!(tag, None);
        assert!(parse_ws_url("wss://127.0.0.1:9/").is_err());
        assert!(parse_ws_url("ws://192.0.2.1:9/").is_err());
    }
}
