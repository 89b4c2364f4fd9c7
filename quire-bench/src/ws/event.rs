//! The fan-out probe: one write through quire's API (`POST /api/articles` with the subscribed
//! tag) and the spread of its arrival over every subscriber, counted from the moment the
//! write's response arrived. The HTTP request is written by hand (one request, `Connection:
//! close`) so the probe adds nothing between the response and the clock reading.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Creates an article tagged `tag` at `url` (`http://127.0.0.1:PORT/api/articles`) as the
/// holder of `token`; returns when the response head has arrived, with that instant.
pub async fn create_article(url: &str, token: &str, tag: &str) -> anyhow::Result<Instant> {
    let (addr, host, path) = split_http_url(url)?;
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let body = serde_json::json!({"article": {
        "title": format!("live fan-out probe {unique}"),
        "description": "written by quire-bench ws",
        "body": "one event for every subscriber",
        "tagList": [tag],
    }})
    .to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Token {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await?;
        ensure!(read > 0, "connection closed before the response head");
        head.extend_from_slice(&chunk[..read]);
    }
    let answered = Instant::now();
    let status = String::from_utf8_lossy(&head);
    let status = status.lines().next().unwrap_or_default();
    if !status.contains(" 201 ") {
        bail!("creating the probe article failed: {status}");
    }
    Ok(answered)
}

/// `http://host:port/path` -> (loopback address, Host header, path).
pub fn split_http_url(url: &str) -> anyhow::Result<(SocketAddr, String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("--event-url must start with http://, got {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = host
        .parse()
        .with_context(|| format!("--event-url needs an IP:port host, got {host}"))?;
    ensure!(addr.ip().is_loopback(), "--event-url must be on loopback");
    let path = if path.is_empty() { "/" } else { path };
    Ok((addr, host.to_owned(), path.to_owned()))
}

/// Delivery figures of one event.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FanOut {
    pub subscribers: usize,
    pub delivered: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl FanOut {
    /// From each subscriber's delay after the response (`None`: never arrived). Arrivals
    /// before the response count as zero.
    pub fn from_delays(delays: &[Option<Duration>]) -> Self {
        let mut arrived: Vec<Duration> = delays.iter().flatten().copied().collect();
        arrived.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Self {
            subscribers: delays.len(),
            delivered: arrived.len(),
            p50_ms: percentile(&arrived, 0.50).map_or(f64::NAN, ms),
            p99_ms: percentile(&arrived, 0.99).map_or(f64::NAN, ms),
            max_ms: arrived.last().copied().map_or(f64::NAN, ms),
        }
    }
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&values, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&values, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(
            percentile(&values[..1], 0.99),
            Some(Duration::from_millis(1))
        );
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn fan_out_counts_missing_subscribers() {
        let delays = [
            Some(Duration::from_millis(2)),
            None,
            Some(Duration::from_millis(4)),
        ];
        let fan_out = FanOut::from_delays(&delays);
        assert_eq!((fan_out.subscribers, fan_out.delivered), (3, 2));
        assert_eq!(fan_out.max_ms, 4.0);
    }

    #[test]
    fn event_urls() {
        let (addr, host, path) = split_http_url("http://127.0.0.1:18090/api/articles").unwrap();
        assert_eq!(addr.port(), 18090);
        assert_eq!(
            (host.as_str(), path.as_str()),
            ("127.0.0.1:18090", "/api/articles")
        );
        assert!(split_http_url("https://127.0.0.1:1/x").is_err());
        assert!(split_http_url("http://10.0.0.1:80/x").is_err());
    }
}
