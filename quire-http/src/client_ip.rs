//! The client's IP address: the TCP peer, or, when the peer is one of the configured trusted
//! proxies, the address that proxy reports in `X-Forwarded-For`. Rate limits and per-IP
//! ceilings key on it; an untrusted peer cannot choose its own address by sending the header.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

const FORWARDED_FOR: &str = "x-forwarded-for";

/// The address a request is attributed to, put in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Networks whose `X-Forwarded-For` is believed (a load balancer or reverse proxy in front).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses and networks: `10.0.0.0/8`, `127.0.0.1`, `::1`.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is not an IP address or network"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer`: walking `X-Forwarded-For` from the
    /// right (the hop nearest to us), the first address that is not a trusted proxy. A hop
    /// that is not an IP address stops the walk at the last trusted one.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        let hops = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip.to_canonical();
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_claim_an_address() {
        let none = TrustedProxies::default();
        let headers = forwarded(&["1.2.3.4"]);
        assert_eq!(none.client_ip(ip("9.9.9.9"), &headers), ip("9.9.9.9"));
        let lb = proxies(&["10.0.0.0/8"]);
        assert_eq!(lb.client_ip(ip("9.9.9.9"), &headers), ip("9.9.9.9"));
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let lb = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The client forged the first hop; the proxy appended the real one.
        let headers = forwarded(&["6.6.6.6, 1.2.3.4", "10.0.0.7"]);
        assert_eq!(lb.client_ip(ip("127.0.0.1"), &headers), ip("1.2.3.4"));
        assert_eq!(
            lb.client_ip(ip("10.1.1.1"), &forwarded(&[])),
            ip("10.1.1.1")
        );
        // Every hop trusted: the leftmost is the best we know.
        assert_eq!(
            lb.client_ip(ip("10.1.1.1"), &forwarded(&["10.0.0.2,10.0.0.3"])),
            ip("10.0.0.2")
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            lb.client_ip(ip("10.1.1.1"), &forwarded(&["1.2.3.4, bogus"])),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn mapped_ipv6_addresses_count_as_ipv4() {
        let lb = proxies(&["127.0.0.1"]);
        assert_eq!(
            lb.client_ip(ip("::ffff:127.0.0.1"), &forwarded(&["::ffff:1.2.3.4"])),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
        assert!(TrustedProxies::parse(&["".into(), "::1".into()]).is_ok());
    }
}
