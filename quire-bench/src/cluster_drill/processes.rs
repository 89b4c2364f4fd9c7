//! The processes a cluster drill runs and breaks: quire instances on fixed loopback ports and
//! a private `redis-server`, either with an append-only file synced on every write (as
//! README recommends for quire's streams: a restart keeps them) or keeping nothing on disk
//! (a restart loses every key).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// One quire instance: its port, its process while it runs, and whether load may go to it.
pub struct Instance {
    pub index: usize,
    pub port: u16,
    child: tokio::sync::Mutex<Option<Child>>,
    /// Load is sent here only while this is set (the drill acts as the load balancer).
    up: AtomicBool,
    /// Bumped when the process is stopped: a request that began under another number was in
    /// flight when its instance went away.
    incarnation: AtomicU64,
    /// Bumped only by `kill -9` (not by a graceful stop).
    kills: AtomicU64,
    /// When the last `kill -9` took effect.
    died_at: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How to start any instance.
pub struct Launch {
    pub quire: PathBuf,
    pub database: String,
    pub redis: String,
    pub extra: Vec<String>,
    pub logs: PathBuf,
}

impl Instance {
    pub fn new(index: usize, port: u16) -> Self {
        Self {
            index,
            port,
            child: tokio::sync::Mutex::new(None),
            up: AtomicBool::new(false),
            incarnation: AtomicU64::new(0),
            kills: AtomicU64::new(0),
            died_at: std::sync::Mutex::new(None),
        }
    }

    /// Whether a `kill -9` took effect less than `window` ago.
    pub fn died_within(&self, window: Duration) -> bool {
        self.died_at
            .lock()
            .expect("died_at lock")
            .is_some_and(|at| at.elapsed() < window)
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// (incarnation, kills) now, to compare after a request.
    pub fn epoch(&self) -> (u64, u64) {
        (
            self.incarnation.load(Ordering::SeqCst),
            self.kills.load(Ordering::SeqCst),
        )
    }

    /// Starts the process and waits until `/health/ready` answers 200, then takes load.
    pub async fn start(&self, launch: &Launch, http: &reqwest::Client) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(launch.logs.join(format!("quire-{}.log", self.index)))?;
        let child = Command::new(&launch.quire)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--database", &launch.database, "--redis", &launch.redis])
            .args(["--log-format", "json"])
            .args(&launch.extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("spawn quire")?;
        *self.child.lock().await = Some(child);
        let url = format!("{}/health/ready", self.base());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = http.get(&url).send().await
                && response.status() == 200
            {
                break;
            }
            if let Some(child) = self.child.lock().await.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "instance {} exited before it was ready: {status}",
                    self.index
                );
            }
            if Instant::now() > deadline {
                bail!("instance {} not ready after 30 s", self.index);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.up.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// `kill -9`. The drill, as the load balancer, takes the instance out of the rotation
    /// at that moment; requests already sent to it (or holding a pooled connection to it)
    /// are cut off, and are the only failures the drill excuses.
    pub async fn kill(&self) -> anyhow::Result<()> {
        let mut child = self.child.lock().await.take().context("not running")?;
        self.up.store(false, Ordering::SeqCst);
        self.kills.fetch_add(1, Ordering::SeqCst);
        self.incarnation.fetch_add(1, Ordering::SeqCst);
        // From the signal on (a client may hear of the death before this task does)...
        *self.died_at.lock().expect("died_at lock") = Some(std::time::Instant::now());
        child.kill().await?;
        // Again once it is dead: a request sent between the first mark and the death was
        // in flight at the kill too.
        self.kills.fetch_add(1, Ordering::SeqCst);
        // ...to a moment after the death was seen here.
        *self.died_at.lock().expect("died_at lock") = Some(std::time::Instant::now());
        Ok(())
    }

    /// A graceful stop as a rolling restart does it: out of the rotation first, then
    /// SIGTERM; fails unless the process drains and exits 0 within 30 s.
    pub async fn stop(&self) -> anyhow::Result<()> {
        self.up.store(false, Ordering::SeqCst);
        let mut child = self.child.lock().await.take().context("not running")?;
        let pid = child.id().context("no pid")?;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .context("instance did not exit within 30 s of SIGTERM")??;
        self.incarnation.fetch_add(1, Ordering::SeqCst);
        anyhow::ensure!(exit.success(), "instance {} exited with {exit}", self.index);
        Ok(())
    }
}

/// A private Redis on `port`.
pub struct RedisServer {
    pub port: u16,
    binary: String,
    /// Append-only file, fsynced on every write; otherwise nothing on disk.
    persistent: bool,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start(
        binary: &str,
        port: u16,
        dir: &Path,
        persistent: bool,
    ) -> anyhow::Result<Self> {
        let mut server = Self {
            port,
            binary: binary.to_owned(),
            persistent,
            child: None,
        };
        server.run(dir).await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    async fn run(&mut self, dir: &Path) -> anyhow::Result<()> {
        let persistence: &[&str] = if self.persistent {
            &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ]
        } else {
            &["--save", "", "--appendonly", "no"]
        };
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(persistence)
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {} (Debian package redis-server)", self.binary))?;
        self.child = Some(child);
        for _ in 0..250 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("redis-server did not listen on {}", self.port)
    }

    /// Kills Redis (`kill -9`; without persistence every key is lost) and starts it again
    /// on the same port.
    pub async fn restart(&mut self, dir: &Path) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        self.run(dir).await
    }
}

/// A free loopback port (bound and released; the drill binds it again at once).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
