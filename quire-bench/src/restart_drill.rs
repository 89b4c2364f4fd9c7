//! `quire-bench restart-drill`: zero-downtime restarts under load, as a supervisor does them.
//!
//! The drill binds the listening socket once and starts quire with it inherited
//! (`LISTEN_FDS=1`, descriptor 3: systemd's socket-activation protocol). Every `--interval`
//! it starts a replacement on the same socket, waits for its `READY=1` on a private
//! `NOTIFY_SOCKET`, then sends the old process SIGTERM and lets it drain. Meanwhile
//! `quire-bench load` (a child process) sends `--rate` requests per second through the same
//! address; the drill passes only if the load saw no error at all and every process exited 0.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use command_fds::{CommandFdExt, FdMapping};

use crate::summary::Summary;

#[derive(Debug, Args)]
pub struct RestartDrillArgs {
    #[command(flatten)]
    pub common: DrillArgs,
    /// Restarts to perform.
    #[arg(long, default_value_t = 20)]
    pub restarts: u32,
    /// Time between restarts.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Requests per second sent throughout (open loop).
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Keep-alive connections of the load.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Path of the load's requests.
    #[arg(long, default_value = "/api/articles?limit=10")]
    pub path: String,
}

/// Arguments every drill takes.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The quire binary to run.
    #[arg(long)]
    pub quire: PathBuf,
    /// Directory for the database (a temporary one when not given).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The database every quire process serves: `sqlite://` in the directory when not given,
    /// or a `postgres://` URL (an empty database is best: the drill signs its own users up).
    #[arg(long)]
    pub database: Option<String>,
    /// Extra arguments for every quire process.
    #[arg(long = "quire-arg", allow_hyphen_values = true)]
    pub quire_args: Vec<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

impl DrillArgs {
    /// The database URL quire is started with, for a drill working in `dir`.
    pub(crate) fn database_url(&self, dir: &Path) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("quire.db").display()))
    }

    /// The drill's working directory: `--dir`, or a temporary one named after the drill.
    pub(crate) fn scratch(&self, name: &str) -> anyhow::Result<Scratch> {
        Ok(match &self.dir {
            Some(dir) => Scratch::Kept(dir.clone()),
            None => Scratch::Temp(tempfile_dir(name)?),
        })
    }
}

/// What the drill saw.
#[derive(Debug, serde::Serialize)]
pub struct DrillResult {
    pub restarts: u32,
    pub rate: f64,
    pub load: Summary,
    /// Exit statuses other than 0 among the replaced processes.
    pub bad_exits: u32,
    /// Longest time from spawning a replacement to its READY=1, milliseconds.
    pub slowest_ready_ms: u64,
}

// The drill is a plain synchronous supervisor (no async runtime), so sleeping a thread is right.
#[allow(clippy::disallowed_methods)]
pub fn run(args: RestartDrillArgs) -> anyhow::Result<()> {
    let scratch = args.common.scratch("restart-drill")?;
    let dir = scratch.path();
    let (listener, notify_path, notify) = sockets(dir)?;
    let address = listener.local_addr()?;
    let spawn = |listener: &TcpListener| -> anyhow::Result<Child> {
        spawn_quire(
            &args.common.quire,
            &args.common.quire_args,
            &args.common.database_url(dir),
            &notify_path,
            listener.try_clone()?.into(),
        )
    };

    let mut current = spawn(&listener)?;
    let mut slowest_ready = wait_ready(&notify, &mut current)?;
    let load = spawn_load(&args, address)?;
    // Let the load's warm-up pass on the first process.
    std::thread::sleep(Duration::from_secs(2));

    let mut bad_exits = 0;
    for restart in 1..=args.restarts {
        std::thread::sleep(args.interval);
        let mut next = spawn(&listener)?;
        slowest_ready = slowest_ready.max(wait_ready(&notify, &mut next)?);
        terminate(&current);
        let status = current.wait()?;
        if !status.success() {
            bad_exits += 1;
            eprintln!("restart {restart}: the old process exited with {status}");
        }
        current = next;
        eprintln!("restart {restart}/{} done", args.restarts);
    }
    // Every old process has exited (each was waited for above): only now may the load stop,
    // so its window covers every restart however slow the machine. A moment on the last
    // process first, then SIGTERM ends its window.
    std::thread::sleep(Duration::from_millis(500));
    terminate(&load);
    let output = load.wait_with_output().context("wait for the load")?;
    terminate(&current);
    if !current.wait()?.success() {
        bad_exits += 1;
    }
    ensure!(output.status.success(), "the load generator failed");
    let summary: Summary =
        serde_json::from_slice(&output.stdout).context("the load generator's JSON summary")?;
    let result = DrillResult {
        restarts: args.restarts,
        rate: args.rate,
        bad_exits,
        slowest_ready_ms: slowest_ready.as_millis() as u64,
        load: summary,
    };
    if args.common.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        let e = &result.load.errors;
        println!(
            "{} restarts at {} req/s: {} responses, errors connect {} io {} timeout {} 4xx {} 5xx {}; p99 {} µs, max {} µs; bad exits {}; slowest start to READY {} ms",
            result.restarts,
            result.rate,
            result.load.responses,
            e.connect,
            e.io,
            e.timeout,
            e.status_4xx,
            e.status_5xx,
            result.load.latency_us.p99,
            result.load.latency_us.max,
            result.bad_exits,
            result.slowest_ready_ms,
        );
    }
    drop(scratch);
    if result.load.errors.total() > 0 || result.bad_exits > 0 {
        bail!("requests failed or a process exited badly across restarts");
    }
    Ok(())
}

/// The drill's listening socket (inherited by every quire it starts) and the datagram
/// socket at `dir/notify.sock` on which they report `READY=1`.
pub(crate) fn sockets(dir: &Path) -> anyhow::Result<(TcpListener, PathBuf, UnixDatagram)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind the drill's socket")?;
    let notify_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path).context("bind NOTIFY_SOCKET")?;
    notify.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok((listener, notify_path, notify))
}

/// Starts quire on `database`, serving the inherited `socket` (descriptor 3,
/// `LISTEN_FDS=1`) and reporting readiness to the `notify` socket; rate limits off.
pub(crate) fn spawn_quire(
    quire: &Path,
    extra_args: &[String],
    database: &str,
    notify: &Path,
    socket: OwnedFd,
) -> anyhow::Result<Child> {
    let mut command = Command::new(quire);
    command
        .arg("--database")
        .arg(database)
        .args(["--log-format", "json"])
        .args([
            "--rate-limit-ip",
            "0",
            "--rate-limit-user",
            "0",
            "--rate-limit-auth",
            "0",
        ])
        .args(extra_args)
        .env("LISTEN_FDS", "1")
        .env_remove("LISTEN_PID")
        .env("NOTIFY_SOCKET", notify)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command.fd_mappings(vec![FdMapping {
        parent_fd: socket,
        child_fd: 3,
    }])?;
    command.spawn().context("spawn quire")
}

/// Waits for `READY=1` from the process just started; fails if it exits first.
pub(crate) fn wait_ready(notify: &UnixDatagram, child: &mut Child) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("quire exited before it was ready: {status}");
        }
        ensure!(
            start.elapsed() < Duration::from_secs(30),
            "quire not ready after 30 s"
        );
        match notify.recv(&mut buf) {
            Ok(n)
                if buf[..n]
                    .split(|b| *b == b'\n')
                    .any(|line| line == b"READY=1") =>
            {
                return Ok(start.elapsed());
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

pub(crate) fn terminate(child: &Child) {
    // SIGTERM by pid through kill(1): the drill only signals processes it started.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// Starts the load with a window far longer than the drill needs: the drill ends it with
/// SIGTERM once the last old process has exited.
fn spawn_load(args: &RestartDrillArgs, address: SocketAddr) -> anyhow::Result<Child> {
    let seconds = (args.interval.as_secs_f64() + 60.0) * f64::from(args.restarts) + 60.0;
    let child = Command::new(std::env::current_exe()?)
        .arg("load")
        .args(["--url", &format!("http://{address}{}", args.path)])
        .args(["--rate", &args.rate.to_string()])
        .args(["--connections", &args.connections.to_string()])
        .args(["--warmup", "1s", "--duration", &format!("{seconds:.1}s")])
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("spawn the load generator")?;
    Ok(child)
}

/// The drill's working directory: the caller's, or a temporary one removed afterwards.
pub(crate) enum Scratch {
    Kept(PathBuf),
    Temp(PathBuf),
}

impl Scratch {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Self::Kept(p) | Self::Temp(p) => p,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Self::Temp(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn tempfile_dir(name: &str) -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir().join(format!("quire-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&base)?;
    Ok(base)
}
