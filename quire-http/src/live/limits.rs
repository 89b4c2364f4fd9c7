//! Ceilings on live connections, in all and per client IP. Past either, the request gets
//! 503 with `Retry-After` before any upgrade; connections already open are untouched.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::http::request::Parts;
use quire_serve::PeerAddr;

use crate::client_ip::ClientIp;

use crate::ApiError;

/// Counts of open live connections.
#[derive(Debug)]
pub struct LiveLimits {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
pub struct LiveGuard {
    limits: Arc<LiveLimits>,
    ip: Option<IpAddr>,
}

impl LiveLimits {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            open: Mutex::new(Open::default()),
        })
    }

    /// Open live connections now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    /// Admits a connection from the request's peer, or answers 503.
    pub fn admit(self: &Arc<Self>, parts: &Parts) -> Result<LiveGuard, ApiError> {
        let ip = parts
            .extensions
            .get::<ClientIp>()
            .map(|c| c.0)
            .or_else(|| parts.extensions.get::<PeerAddr>().map(|p| p.0.ip()));
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from_ip = ip.map_or(0, |ip| open.per_ip.get(&ip).copied().unwrap_or(0));
        if open.total >= self.max_total || from_ip >= self.max_per_ip {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "live",
                "has too many connections, try again shortly",
            ));
        }
        open.total += 1;
        if let Some(ip) = ip {
            *open.per_ip.entry(ip).or_default() += 1;
        }
        Ok(LiveGuard {
            limits: self.clone(),
            ip,
        })
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        if let Some(ip) = self.ip
            && let Some(count) = open.per_ip.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                open.per_ip.remove(&ip);
            }
        }
    }
}
