//! Where webhooks may connect. A webhook URL names a host the server will POST to, so without a
//! rule anyone who may register one could make the server reach its own network: loopback
//! services, cloud metadata (169.254.169.254), private ranges. The rule
//! ([`crate::net::webhook_may_reach`]) is applied twice:
//!
//! - at registration: the host (an address, or every address its name resolves to) must be
//!   reachable, else 400 `webhook_address_not_allowed`;
//! - at delivery: the HTTP client resolves names with [`GuardedResolver`], which checks every
//!   address and hands reqwest exactly the checked ones, so a DNS answer that changes after
//!   registration (DNS rebinding) cannot swap in an internal address; address literals are
//!   checked before sending. The client uses no proxy and follows no redirect.
//!
//! The delivery log records only a coarse class (`connect_failed`, `timeout`, `http_status`,
//! `address_not_allowed`), never the connection error's text, so that it cannot be used to
//! scan ports.

use crate::net::{IpNet, webhook_may_reach};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The refusal inside a resolver error, found again in the reqwest error's sources.
#[derive(Debug)]
pub(crate) struct AddressNotAllowed(pub String);

impl std::fmt::Display for AddressNotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "address not allowed for webhooks: {}", self.0)
    }
}

impl std::error::Error for AddressNotAllowed {}

/// The message of a refused webhook address.
pub(crate) fn refusal(host: &str) -> String {
    format!(
        "webhook 地址“{host}”指向内部网络（回环、链路本地、私有地址等），未被允许 / the webhook address {host} points into an internal network (loopback, link-local, private ...) and is not allowed (an operator may allow ranges with webhook_allow_cidrs)"
    )
}

/// Resolve `host` and check every address; `Err(message)` when one is not allowed or the name
/// does not resolve.
pub(crate) async fn check_host(url: &url::Url, allow: &[IpNet]) -> Result<(), String> {
    let host = url.host_str().unwrap_or("").to_string();
    let addrs: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(a)) => vec![IpAddr::V4(a)],
        Some(url::Host::Ipv6(a)) => vec![IpAddr::V6(a)],
        Some(url::Host::Domain(d)) => {
            match tokio::net::lookup_host((d, url.port_or_known_default().unwrap_or(80))).await {
                Ok(a) => a.map(|s| s.ip()).collect(),
                Err(_) => vec![],
            }
        }
        None => vec![],
    };
    if addrs.is_empty() {
        return Err(format!("无法解析 webhook 主机“{host}” / the webhook host {host} does not resolve"));
    }
    if addrs.iter().any(|a| !webhook_may_reach(*a, allow)) {
        return Err(refusal(&host));
    }
    Ok(())
}

/// `true` when `url`'s host is an address literal webhooks may not reach (reqwest does not
/// resolve literals; names are checked by [`GuardedResolver`] as they are resolved).
pub(crate) fn literal_refused(url: &url::Url, allow: &[IpNet]) -> bool {
    let ip = match url.host() {
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
        _ => return false,
    };
    !webhook_may_reach(ip, allow)
}

/// A DNS resolver for the webhook client that refuses a name when any address it resolves to
/// is not allowed, and otherwise returns exactly the checked addresses.
pub(crate) struct GuardedResolver {
    pub(crate) allow: Arc<Vec<IpNet>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| !webhook_may_reach(a.ip(), &allow)) {
                let e: Box<dyn std::error::Error + Send + Sync> = Box::new(AddressNotAllowed(host));
                return Err(e);
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The class of a failed delivery, for the log: never the error's text.
pub(crate) fn error_class(e: &reqwest::Error) -> &'static str {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.is::<AddressNotAllowed>() {
            return "address_not_allowed";
        }
        src = s.source();
    }
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect_failed"
    } else {
        "request_failed"
    }
}
