//! Network address rules: which peers are trusted proxies (whose `X-Forwarded-For` names the
//! client), and which addresses webhooks may reach (not loopback, link-local — cloud metadata
//! at 169.254.169.254 —, private or unique-local ranges unless an operator allows them).

pub use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parse CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses (`127.0.0.1`).
pub fn parse_cidrs(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("not a CIDR or IP address: {s:?}"))
        })
        .collect()
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it carries.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// `ip` is in one of `nets` (IPv4-mapped addresses count as IPv4).
pub fn contains(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    nets.iter().any(|n| n.contains(&ip))
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24, protocol assignments
        || o[0] >= 240 // reserved
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local
        || (s[0] & 0xffc0) == 0xfec0 // fec0::/10 site-local (deprecated)
        || ip.to_ipv4().is_some_and(|v4| s[0..5] == [0; 5] && internal_v4(v4)) // mapped / compatible
        || (s[0] == 0x64 && s[1] == 0xff9b && internal_v4(Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32))) // NAT64
}

/// An address inside the server's own network: loopback, link-local (incl. cloud metadata),
/// unspecified, private (RFC 1918, CGNAT, IPv6 unique-local), multicast, reserved.
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

/// Webhooks may reach `ip`: it is public, or inside one of the operator's `allow` ranges.
pub fn webhook_may_reach(ip: IpAddr, allow: &[IpNet]) -> bool {
    !is_internal(ip) || contains(allow, ip)
}

/// Resolve `host` (an address literal or a name) and check every address against the outgoing
/// rule ([`webhook_may_reach`]): the rule for every connection a user's settings make the server
/// open (webhooks, collection sources, MQTT brokers). Returns the checked addresses, so that the
/// caller connects to exactly those and a second DNS answer cannot swap in an internal one.
/// `Err` is a zh/en message naming the host.
pub async fn resolve_allowed(host: &str, port: u16, allow: &[IpNet]) -> Result<Vec<IpAddr>, String> {
    let host = host.trim_matches(['[', ']']);
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(a) => vec![a],
        Err(_) => match tokio::net::lookup_host((host, port)).await {
            Ok(a) => a.map(|s| s.ip()).collect(),
            Err(_) => vec![],
        },
    };
    if addrs.is_empty() {
        return Err(format!("无法解析主机“{host}” / the host {host} does not resolve"));
    }
    if addrs.iter().any(|a| !webhook_may_reach(*a, allow)) {
        return Err(format!(
            "地址“{host}”指向内部网络（回环、链路本地、私有地址等），未被允许 / the address {host} points into an internal network and is not allowed (an operator may allow ranges with webhook_allow_cidrs)"
        ));
    }
    Ok(addrs)
}

/// The client's address: the direct peer, unless the peer is a trusted proxy; then the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy (entries to its left
/// may be forged by the client). Unparsable entries end the walk at the peer.
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    if !contains(trusted, peer) {
        return peer;
    }
    let Some(xff) = forwarded_for else { return peer };
    let mut last = peer;
    for entry in xff.rsplit(',') {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else { return last };
        if !contains(trusted, ip) {
            return canonical(ip);
        }
        last = ip;
    }
    canonical(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_internal(ip(a)), "{a}");
        }
        for a in ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"] {
            assert!(!is_internal(ip(a)), "{a}");
        }
        let allow = parse_cidrs(&["10.0.0.0/8".into(), "127.0.0.1".into()]).unwrap();
        assert!(webhook_may_reach(ip("10.9.9.9"), &allow));
        assert!(webhook_may_reach(ip("::ffff:10.9.9.9"), &allow));
        assert!(!webhook_may_reach(ip("169.254.169.254"), &allow));
        assert!(parse_cidrs(&["nonsense".into()]).is_err());
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted = parse_cidrs(&["10.0.0.0/8".into()]).unwrap();
        let xff = Some("1.1.1.1, 2.2.2.2, 10.0.0.7");
        assert_eq!(client_address(ip("9.9.9.9"), xff, &trusted), ip("9.9.9.9"), "untrusted peer: header ignored");
        assert_eq!(client_address(ip("10.0.0.5"), xff, &trusted), ip("2.2.2.2"), "right-most untrusted entry");
        assert_eq!(client_address(ip("10.0.0.5"), None, &trusted), ip("10.0.0.5"));
        assert_eq!(client_address(ip("10.0.0.5"), Some("junk"), &trusted), ip("10.0.0.5"));
    }
}
