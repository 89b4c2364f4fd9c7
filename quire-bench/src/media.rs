//! `quire-bench media`: the media scenarios of issue 6, each against a peer in the same run.
//!
//! - `download`: GETs the same 128 MiB file from quire (`/media/{id}`) and from the peer URL
//!   (nginx with sendfile, started by `scripts/bench-media.sh`), page cache warm; MB/s each.
//! - `upload`: POSTs 128 MiB to quire and compares with a plain copy of the same bytes to a
//!   file in the same directory with one fsync at the end (`dd`'s `conv=fsync`).
//! - `concurrent`: 10 uploads and 10 downloads at once; the server's peak RSS growth.
//! - `abort`: transfers cut mid-stream by the client; afterwards the server must hold no
//!   CLOSE_WAIT socket, no staged upload, and no more descriptors than before.
//! - `s3-upload` / `s3-download`: quire running with its media in a bucket on a local S3 API
//!   server; the same 128 MiB sent through quire and straight to the S3 server (a plain `PUT`
//!   of the object, a plain `GET` of the blob quire stored) by this same client; MB/s each.
//!
//! The client speaks HTTP/1.1 over a raw socket with large reads and writes, so the same code
//! measures quire and the peer. Loopback targets only.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::cpu;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Options of `quire-bench media`.
#[derive(Debug, clap::Args)]
pub struct MediaArgs {
    /// Which scenario: download, upload, concurrent or abort.
    #[arg(long)]
    pub scenario: String,
    /// quire's address, e.g. 127.0.0.1:18080.
    #[arg(long)]
    pub quire: SocketAddr,
    /// A quire session token (for uploads).
    #[arg(long)]
    pub token: String,
    /// The peer's address (download): an nginx whose root is quire's `media/blobs`, so it
    /// serves the same file at `/<first two hex>/<sha256>`.
    #[arg(long)]
    pub peer: Option<String>,
    /// Size of the file, MiB.
    #[arg(long, default_value_t = 128)]
    pub mib: usize,
    /// Repetitions of each transfer (the best is reported; the first warms the page cache).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// A directory on the disk quire writes media to (for the fsync'd copy baseline).
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// quire's process id (RSS, descriptors; CPU time per GiB in the download scenario).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The peer's serving process id (download: nginx's worker), for its CPU time per GiB.
    #[arg(long)]
    pub peer_pid: Option<u32>,
    /// quire's media directory (staged uploads).
    #[arg(long)]
    pub media_dir: Option<PathBuf>,
    /// Transfers to abort (abort scenario).
    #[arg(long, default_value_t = 10_000)]
    pub aborts: usize,
    /// `s3-*`: the S3 API server quire keeps its media on, e.g. 127.0.0.1:5000.
    #[arg(long)]
    pub s3: Option<String>,
    /// `s3-*`: quire's bucket there (created public-read-write, so this client needs no
    /// signature; quire signs its requests).
    #[arg(long)]
    pub bucket: Option<String>,
    /// `concurrent`: an existing media id to download, so the server's RSS baseline is read
    /// before it has received any upload (without it, one upload precedes the baseline and
    /// leaves freed buffers the measured transfers can reuse).
    #[arg(long)]
    pub media_id: Option<String>,
}

pub fn run(args: MediaArgs) -> anyhow::Result<()> {
    ensure!(args.quire.ip().is_loopback(), "quire must be on loopback");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        match args.scenario.as_str() {
            "download" => download(&args).await,
            "upload" => upload(&args).await,
            "concurrent" => concurrent(&args).await,
            "abort" => abort(&args).await,
            "s3-upload" => s3_upload(&args).await,
            "s3-download" => s3_download(&args).await,
            other => bail!(
                "unknown scenario {other:?}: download, upload, concurrent, abort, s3-upload or s3-download"
            ),
        }
    })?;
    println!("{result}");
    Ok(())
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Reads an HTTP/1.1 response head; returns (status, content length, extra bytes read).
async fn read_head(stream: &mut TcpStream) -> anyhow::Result<(u16, Option<usize>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await?;
        ensure!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .context("bad status line")?;
            let length = head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())
                    .flatten()
            });
            return Ok((status, length, buf[end + 4..].to_vec()));
        }
    }
}

/// GETs `path` from `addr` and discards the body; returns bytes received.
async fn get(addr: &str, path: &str) -> anyhow::Result<usize> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let (status, length, extra) = read_head(&mut stream).await?;
    ensure!(status == 200, "GET {path}: status {status}");
    let length = length.context("no Content-Length")?;
    let mut received = extra.len();
    let mut buf = vec![0u8; 1 << 20];
    while received < length {
        let n = stream.read(&mut buf).await?;
        ensure!(n > 0, "body cut short at {received} of {length}");
        received += n;
    }
    Ok(received)
}

/// POSTs `body` to quire's media endpoint; returns the response JSON.
async fn post_media(quire: SocketAddr, token: &str, body: &[u8]) -> anyhow::Result<Value> {
    let mut stream = TcpStream::connect(quire).await?;
    let head = format!(
        "POST /api/media HTTP/1.1\r\nHost: bench\r\nAuthorization: Token {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    for chunk in body.chunks(1 << 20) {
        stream.write_all(chunk).await?;
    }
    let (status, _length, mut rest) = read_head(&mut stream).await?;
    stream.read_to_end(&mut rest).await?;
    ensure!(
        status == 201,
        "upload: status {status}: {}",
        String::from_utf8_lossy(&rest)
    );
    Ok(serde_json::from_slice(&rest)?)
}

/// PUTs `body` straight to the S3 API server at `addr` as object `key` of `bucket` (a plain,
/// unsigned single-request upload; the bucket lets anyone write).
async fn put_object(addr: &str, bucket: &str, key: &str, body: &[u8]) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!(
        "PUT /{bucket}/{key} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    for chunk in body.chunks(1 << 20) {
        stream.write_all(chunk).await?;
    }
    let (status, _length, mut rest) = read_head(&mut stream).await?;
    stream.read_to_end(&mut rest).await?;
    ensure!(
        status == 200,
        "PUT {key}: status {status}: {}",
        String::from_utf8_lossy(&rest)
    );
    Ok(())
}

/// The S3 API server and bucket of the `s3-*` scenarios.
fn s3_target(args: &MediaArgs) -> anyhow::Result<(&str, &str)> {
    let s3 = args.s3.as_deref().context("--s3 is required")?;
    let bucket = args.bucket.as_deref().context("--bucket is required")?;
    ensure!(
        s3.starts_with("127.") || s3.starts_with("localhost"),
        "the S3 server must be on loopback"
    );
    Ok((s3, bucket))
}

/// 128 MiB through quire into its bucket, against the same bytes PUT straight to the bucket.
async fn s3_upload(args: &MediaArgs) -> anyhow::Result<Value> {
    let (s3, bucket) = s3_target(args)?;
    let (best_quire, best_plain) = upload_rounds(args, |round, data| async move {
        let start = Instant::now();
        put_object(s3, bucket, &format!("plain/{round}"), &data).await?;
        Ok(start.elapsed())
    })
    .await?;
    let ratio = best_quire / best_plain;
    Ok(
        json!({"scenario": "media upload to S3", "bytes": args.mib << 20, "quire_mb_s": best_quire,
              "peer_mb_s": best_plain, "ratio": ratio, "goal": ">= 0.80", "met": ratio >= 0.8}),
    )
}

/// Best MB/s of `args.repeat` rounds, each uploading `args.mib` MiB to quire and then the
/// same bytes to the peer (`peer(round, bytes)` answers how long it took). The bytes differ
/// each round, so quire stores (and makes durable) a new blob every time.
async fn upload_rounds<F, Fut>(args: &MediaArgs, mut peer: F) -> anyhow::Result<(f64, f64)>
where
    F: FnMut(usize, Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Duration>>,
{
    let bytes = args.mib << 20;
    let mut best_quire: f64 = 0.0;
    let mut best_peer: f64 = 0.0;
    for round in 0..args.repeat.max(1) {
        let mut data = pattern(bytes);
        data[..8].copy_from_slice(&(round as u64).to_le_bytes());
        let start = Instant::now();
        post_media(args.quire, &args.token, &data).await?;
        best_quire = best_quire.max(mb_per_s(bytes, start.elapsed()));
        best_peer = best_peer.max(mb_per_s(bytes, peer(round, data).await?));
    }
    Ok((best_quire, best_peer))
}

/// 128 MiB from quire's bucket through quire, against a plain GET of the same object.
async fn s3_download(args: &MediaArgs) -> anyhow::Result<Value> {
    let (s3, bucket) = s3_target(args)?;
    let data = pattern(args.mib << 20);
    let media = post_media(args.quire, &args.token, &data).await?;
    let id = media["media"]["id"].as_str().context("no media id")?;
    let sha = media["media"]["sha256"].as_str().context("no sha256")?;
    let (path, object) = (format!("/media/{id}"), format!("/{bucket}/blobs/{sha}"));
    let quire = args.quire.to_string();
    let bytes = data.len();
    let quire_cpu = CpuMeter::start(args.server_pid)?;
    let quire_mb = best_of(args.repeat, bytes, || async {
        ensure!(get(&quire, &path).await? == bytes, "short download");
        Ok(())
    })
    .await?;
    let quire_cpu = quire_cpu.seconds_per_gib(args.repeat * bytes)?;
    let plain_mb = best_of(args.repeat, bytes, || async {
        ensure!(get(s3, &object).await? == bytes, "short plain download");
        Ok(())
    })
    .await?;
    let ratio = quire_mb / plain_mb;
    Ok(
        json!({"scenario": "media download from S3", "bytes": bytes, "quire_mb_s": quire_mb,
              "peer_mb_s": plain_mb, "ratio": ratio, "goal": ">= 0.80", "met": ratio >= 0.8,
              "quire_cpu_s_per_gib": quire_cpu}),
    )
}

fn mb_per_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e6
}

async fn best_of<F, Fut>(repeat: usize, bytes: usize, mut run: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut best: f64 = 0.0;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        run().await?;
        best = best.max(mb_per_s(bytes, start.elapsed()));
    }
    Ok(best)
}

async fn upload_file(args: &MediaArgs) -> anyhow::Result<(Vec<u8>, String)> {
    let data = pattern(args.mib << 20);
    let media = post_media(args.quire, &args.token, &data).await?;
    let id = media["media"]["id"]
        .as_str()
        .context("no media id")?
        .to_owned();
    Ok((data, id))
}

async fn download(args: &MediaArgs) -> anyhow::Result<Value> {
    let peer_addr = args
        .peer
        .as_deref()
        .context("--peer is required for download")?;
    let data = pattern(args.mib << 20);
    let media = post_media(args.quire, &args.token, &data).await?;
    let id = media["media"]["id"]
        .as_str()
        .context("no media id")?
        .to_owned();
    let sha = media["media"]["sha256"]
        .as_str()
        .context("no sha256")?
        .to_owned();
    let peer_path = format!("/{}/{sha}", &sha[..2]);
    let path = format!("/media/{id}");
    let quire = args.quire.to_string();
    let bytes = data.len();
    // Both page caches warm before anything is measured.
    get(&quire, &path).await?;
    get(peer_addr, &peer_path).await?;
    let quire_cpu = CpuMeter::start(args.server_pid)?;
    let quire_mb = best_of(args.repeat, bytes, || async {
        ensure!(get(&quire, &path).await? == bytes, "short download");
        Ok(())
    })
    .await?;
    let quire_cpu = quire_cpu.seconds_per_gib(args.repeat * bytes)?;
    let peer_cpu = CpuMeter::start(args.peer_pid)?;
    let peer_mb = best_of(args.repeat, bytes, || async {
        ensure!(
            get(peer_addr, &peer_path).await? == bytes,
            "short peer download"
        );
        Ok(())
    })
    .await?;
    let peer_cpu = peer_cpu.seconds_per_gib(args.repeat * bytes)?;
    Ok(
        json!({"scenario": "media download", "bytes": bytes, "quire_mb_s": quire_mb,
              "peer_mb_s": peer_mb, "ratio": quire_mb / peer_mb, "goal": ">= 0.90",
              "met": quire_mb / peer_mb >= 0.9,
              "quire_cpu_s_per_gib": quire_cpu, "peer_cpu_s_per_gib": peer_cpu}),
    )
}

/// The CPU time a server process spends over some transfers (none without a process id).
struct CpuMeter {
    pid: Option<u32>,
    before: Option<cpu::CpuTicks>,
}

impl CpuMeter {
    fn start(pid: Option<u32>) -> anyhow::Result<Self> {
        let before = pid.map(|pid| cpu::read(&pid.to_string())).transpose()?;
        Ok(Self { pid, before })
    }

    /// CPU seconds per GiB moved, since `start`.
    fn seconds_per_gib(self, bytes: usize) -> anyhow::Result<Option<f64>> {
        let (Some(pid), Some(before)) = (self.pid, self.before) else {
            return Ok(None);
        };
        let after = cpu::read(&pid.to_string())?;
        let used = cpu::elapsed(before, after, cpu::clock_ticks_per_second());
        Ok(Some(
            used.as_secs_f64() / (bytes as f64 / f64::from(1u32 << 30)),
        ))
    }
}

/// The baseline: write the same bytes to a file on the same disk, one fsync at the end.
fn copy_with_fsync(dir: &Path, data: &[u8]) -> anyhow::Result<()> {
    let path = dir.join("quire-bench-dd.tmp");
    let mut file = std::fs::File::create(&path)?;
    for chunk in data.chunks(1 << 20) {
        file.write_all(chunk)?;
    }
    file.sync_all()?;
    std::fs::remove_file(path)?;
    Ok(())
}

async fn upload(args: &MediaArgs) -> anyhow::Result<Value> {
    let scratch = args
        .scratch
        .clone()
        .context("--scratch is required for upload")?;
    let (best_quire, best_copy) = upload_rounds(args, |_, data| {
        let dir = scratch.clone();
        async move {
            let start = Instant::now();
            tokio::task::spawn_blocking(move || copy_with_fsync(&dir, &data)).await??;
            Ok(start.elapsed())
        }
    })
    .await?;
    Ok(
        json!({"scenario": "media upload", "bytes": args.mib << 20, "quire_mb_s": best_quire,
              "peer_mb_s": best_copy, "ratio": best_quire / best_copy, "goal": ">= 0.90",
              "met": best_quire / best_copy >= 0.9}),
    )
}

fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

async fn concurrent(args: &MediaArgs) -> anyhow::Result<Value> {
    let pid = args.server_pid.context("--server-pid is required")?;
    let (data, id) = match &args.media_id {
        Some(id) => (pattern(args.mib << 20), id.clone()),
        None => upload_file(args).await?,
    };
    let before = status_kib(pid, "VmRSS:")?;
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(rss) = status_kib(pid, "VmRSS:") {
                    peak.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let path = format!("/media/{id}");
    let quire = args.quire.to_string();
    let mut tasks = Vec::new();
    for i in 0..10u64 {
        let mut body = data.clone();
        body[..8].copy_from_slice(&(1000 + i).to_le_bytes());
        let token = args.token.clone();
        let addr = args.quire;
        tasks.push(tokio::spawn(async move {
            post_media(addr, &token, &body).await.map(drop)
        }));
        let (quire, path) = (quire.clone(), path.clone());
        tasks.push(tokio::spawn(
            async move { get(&quire, &path).await.map(drop) },
        ));
    }
    drop(data);
    for task in tasks {
        task.await??;
    }
    sampler.abort();
    let growth_mb = (peak.load(std::sync::atomic::Ordering::Relaxed) - before) as f64 / 1024.0;
    Ok(
        json!({"scenario": "media 10 uploads + 10 downloads of 128 MiB", "rss_before_mb": before as f64 / 1024.0,
              "rss_growth_mb": growth_mb, "goal": "< 32 MB", "met": growth_mb < 32.0}),
    )
}

/// Sockets on `port` in CLOSE_WAIT, from /proc/net/tcp (and tcp6).
fn close_wait(port: u16) -> usize {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| t.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            local == Some(port) && f.get(3) == Some(&"08")
        })
        .count()
}

fn count_entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

async fn abort(args: &MediaArgs) -> anyhow::Result<Value> {
    let pid = args.server_pid.context("--server-pid is required")?;
    let media_dir = args.media_dir.clone().context("--media-dir is required")?;
    let (_, id) = upload_file(args).await?;
    let fds = |pid: u32| count_entries(Path::new(&format!("/proc/{pid}/fd")));
    let fds_before = fds(pid);
    let start = Instant::now();
    let chunk = vec![7u8; 256 * 1024];
    for i in 0..args.aborts {
        let mut stream = TcpStream::connect(args.quire).await?;
        if i % 2 == 0 {
            // An upload cut off after 256 KiB of a promised 128 MiB.
            let head = format!(
                "POST /api/media HTTP/1.1\r\nHost: bench\r\nAuthorization: Token {}\r\n\
                 Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                args.token,
                args.mib << 20
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&chunk).await?;
        } else {
            // A download abandoned after its first bytes.
            let request = format!("GET /media/{id} HTTP/1.1\r\nHost: bench\r\n\r\n");
            stream.write_all(request.as_bytes()).await?;
            let mut first = [0u8; 4096];
            let _ = stream.read(&mut first).await?;
        }
        drop(stream);
    }
    let elapsed = start.elapsed();
    // Give the server a moment to notice the last ones.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let close_wait = close_wait(args.quire.port());
    let staged = count_entries(&media_dir.join("tmp"));
    let fds_after = fds(pid);
    let met = close_wait == 0 && staged == 0 && fds_after <= fds_before;
    Ok(
        json!({"scenario": format!("media: {} transfers aborted mid-stream", args.aborts),
              "seconds": elapsed.as_secs_f64(), "close_wait": close_wait, "staged_uploads_left": staged,
              "fds_before": fds_before, "fds_after": fds_after,
              "goal": "no CLOSE_WAIT, no temporary files, no descriptor growth", "met": met}),
    )
}
