//! The client's address, as GeoIP and cookieless hashing see it: the connection's peer, unless
//! that peer is a configured trusted proxy (`--trusted-proxies`), in which case
//! `X-Forwarded-For` is read from the right — each proxy appends the address it received from —
//! and the first entry that is not itself a trusted proxy is the client. A header from anyone
//! else is ignored, so a client cannot claim another address (or country).

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

/// The client's address for a request with `headers` and `extensions` (the peer is put there by
/// [`crate::serve`]); `None` for a request that did not come over a socket (in-process tests).
pub fn client_address(
    headers: &HeaderMap,
    extensions: &Extensions,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()?
        .0
        .ip()
        .to_canonical();
    if !is_trusted(peer, trusted) {
        return Some(peer);
    }
    let mut client = peer;
    // Every X-Forwarded-For line, in order, as one list.
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for entry in forwarded.iter().rev() {
        let Some(ip) = parse_entry(entry) else {
            // Garbage in the chain: stop at the last address a trusted proxy vouched for.
            break;
        };
        client = ip;
        if !is_trusted(ip, trusted) {
            break;
        }
    }
    Some(client)
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[::1]:5678`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    entry
        .parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(peer: &str, xff: &[&str], trusted: &[&str]) -> Option<IpAddr> {
        let mut headers = HeaderMap::new();
        for v in xff {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        client_address(&headers, &ext, &trusted)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        // Untrusted peer: the header is the client's word, ignored.
        assert_eq!(ask("5.5.5.5:1", &["9.9.9.9"], &[]), ip("5.5.5.5"));
        assert_eq!(
            ask("5.5.5.5:1", &["9.9.9.9"], &["10.0.0.0/8"]),
            ip("5.5.5.5")
        );
        // Trusted peer: the rightmost untrusted entry.
        assert_eq!(
            ask("10.0.0.1:1", &["6.6.6.6, 9.9.9.9"], &["10.0.0.0/8"]),
            ip("9.9.9.9")
        );
        // A chain of trusted proxies is walked through; several header lines are one list.
        assert_eq!(
            ask("10.0.0.1:1", &["9.9.9.9", "10.0.0.7"], &["10.0.0.0/8"]),
            ip("9.9.9.9")
        );
        // Ports and IPv4-mapped addresses.
        assert_eq!(
            ask("[::ffff:10.0.0.1]:1", &["9.9.9.9:443"], &["10.0.0.0/8"]),
            ip("9.9.9.9")
        );
        // Garbage stops the walk at the last vouched-for address.
        assert_eq!(
            ask("10.0.0.1:1", &["9.9.9.9, nonsense"], &["10.0.0.0/8"]),
            ip("10.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(ask("10.0.0.1:1", &[], &["10.0.0.0/8"]), ip("10.0.0.1"));
    }
}
