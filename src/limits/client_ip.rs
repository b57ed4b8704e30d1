//! The client IP: the socket address, unless that address is a trusted proxy, then the right-most untrusted `X-Forwarded-For` entry.

use std::net::IpAddr;

use ipnet::IpNet;

/// Resolve the client address from the peer and its `X-Forwarded-For` header(s).
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return canonical(peer);
    }
    let hops: Vec<IpAddr> = forwarded_for
        .into_iter()
        .flat_map(|h| h.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect();
    // Walk from the nearest hop outwards; the first address we do not trust is the client.
    let mut client = peer;
    for hop in hops.iter().rev() {
        client = *hop;
        if !is_trusted(hop) {
            break;
        }
    }
    canonical(client)
}

/// IPv4-mapped IPv6 addresses as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(ip("203.0.113.9"), ["1.2.3.4"], &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("203.0.113.9"), ["1.2.3.4"], &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxies_yield_the_rightmost_untrusted_hop() {
        let trusted: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.1/32".parse().unwrap(),
        ];
        // spoofed, real client, inner proxy
        assert_eq!(
            client_ip(
                ip("127.0.0.1"),
                ["6.6.6.6, 198.51.100.7, 10.0.0.2"],
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("10.1.1.1"), ["198.51.100.7", "10.0.0.3"], &trusted),
            ip("198.51.100.7")
        );
        // No header: the proxy itself.
        assert_eq!(client_ip(ip("10.1.1.1"), [], &trusted), ip("10.1.1.1"));
        // Garbage entries are skipped.
        assert_eq!(
            client_ip(ip("10.1.1.1"), ["nonsense, 198.51.100.8"], &trusted),
            ip("198.51.100.8")
        );
        assert_eq!(
            client_ip(ip("::ffff:10.1.1.1"), ["198.51.100.8"], &trusted),
            ip("198.51.100.8")
        );
    }
}
