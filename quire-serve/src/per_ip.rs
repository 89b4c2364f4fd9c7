//! Open connections counted per client IP address, against a ceiling: one address (a
//! slowloris attacker, say) cannot take the places every other client needs. Exempt
//! networks (the trusted proxies in front of the server) are not counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

/// The ceiling and the counts.
#[derive(Debug)]
pub struct PerIpLimit {
    max: usize,
    exempt: Vec<IpNet>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it frees its place.
#[derive(Debug)]
pub struct PerIpGuard {
    limit: Arc<PerIpLimit>,
    ip: Option<IpAddr>,
}

impl PerIpLimit {
    pub fn new(max: usize, exempt: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            exempt,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a connection from `ip`, or `None` when that address is at its ceiling.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<PerIpGuard> {
        let ip = ip.to_canonical();
        if self.exempt.iter().any(|net| net.contains(&ip)) {
            return Some(PerIpGuard {
                limit: self.clone(),
                ip: None,
            });
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(PerIpGuard {
            limit: self.clone(),
            ip: Some(ip),
        })
    }

    /// Connections open from `ip` now.
    #[cfg(test)]
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

impl Drop for PerIpGuard {
    fn drop(&mut self) {
        let Some(ip) = self.ip else { return };
        let mut open = self.limit.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_ceiling_and_places_come_back() {
        let limit = PerIpLimit::new(2, vec!["10.0.0.0/8".parse().unwrap()]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limit.admit(a).unwrap();
        let _second = limit.admit(a).unwrap();
        assert!(limit.admit(a).is_none());
        assert!(limit.admit(b).is_some());
        drop(first);
        assert_eq!(limit.open_from(a), 1);
        assert!(limit.admit(a).is_some());
        // Exempt networks are never refused nor counted.
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let guards: Vec<_> = (0..5).map(|_| limit.admit(proxy).unwrap()).collect();
        assert_eq!(limit.open_from(proxy), 0);
        drop(guards);
        // IPv4-mapped IPv6 peers count as their IPv4 address.
        let mapped: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        assert_eq!(limit.open_from(mapped), 0);
    }
}
