//! The SSRF guard. A webhook URL is chosen by a customer, so without care it could point the
//! sender at the operator's own network (a metadata service, an admin port, a database).
//! Unless `--allow-private-networks` is given, every address a delivery would connect to
//! must be globally routable:
//!
//! - host names go through [`GuardedResolver`], which drops non-global addresses from the
//!   DNS answer; the connector then connects only to what the resolver returned, so a name
//!   that resolves to a public address at check time and a private one later (DNS
//!   rebinding) gains nothing: the check is on the address actually connected to;
//! - IP-literal hosts never reach a resolver, so [`check_literal`] checks them before any
//!   connection is made.

use futures_util::future::BoxFuture;
use hyper_util::client::legacy::connect::dns::Name;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll};

/// Why no address could be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("DNS lookup of {host} failed: {source}")]
    Dns {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    // The address is not named: the organization sees this message, and it would tell
    // it what the host resolves to inside the operator's network.
    #[error("{host} resolves only to non-public addresses; refused")]
    Blocked { host: String, address: IpAddr },
}

/// A resolver that only ever returns globally routable addresses (unless told otherwise).
#[derive(Clone)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future = BoxFuture<'static, Result<Self::Response, ResolveError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ResolveError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|source| ResolveError::Dns {
                    host: host.clone(),
                    source,
                })?
                .collect();
            let first = resolved
                .first()
                .map(SocketAddr::ip)
                .ok_or_else(|| ResolveError::NoAddress { host: host.clone() })?;
            let usable: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| allow_private || !is_forbidden(a.ip()))
                .collect();
            if usable.is_empty() {
                return Err(ResolveError::Blocked {
                    host,
                    address: first,
                });
            }
            Ok(usable.into_iter())
        })
    }
}

/// `Err` when `host` is an IP literal the guard refuses.
pub fn check_literal(host: &str, allow_private: bool) -> Result<(), ResolveError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(address) if !allow_private && is_forbidden(address) => Err(ResolveError::Blocked {
            host: host.to_owned(),
            address,
        }),
        _ => Ok(()),
    }
}

/// Whether `ip` is anything but a globally routable unicast address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    const RANGES: [([u8; 4], u32); 16] = [
        ([0, 0, 0, 0], 8),          // "this network", unspecified
        ([10, 0, 0, 0], 8),         // private
        ([100, 64, 0, 0], 10),      // shared address space (carrier-grade NAT)
        ([127, 0, 0, 0], 8),        // loopback
        ([169, 254, 0, 0], 16),     // link-local (cloud metadata services live here)
        ([172, 16, 0, 0], 12),      // private
        ([192, 0, 0, 0], 24),       // IETF protocol assignments
        ([192, 0, 2, 0], 24),       // documentation (TEST-NET-1)
        ([192, 88, 99, 0], 24),     // 6to4 relay anycast
        ([192, 168, 0, 0], 16),     // private
        ([198, 18, 0, 0], 15),      // benchmarking
        ([198, 51, 100, 0], 24),    // documentation (TEST-NET-2)
        ([203, 0, 113, 0], 24),     // documentation (TEST-NET-3)
        ([224, 0, 0, 0], 4),        // multicast
        ([240, 0, 0, 0], 4),        // reserved, and broadcast
        ([255, 255, 255, 255], 32), // broadcast
    ];
    RANGES.iter().any(|(net, prefix)| in_v4(ip, *net, *prefix))
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Forms that embed an IPv4 address are judged by that address.
    if let Some(v4) = embedded_v4(ip) {
        return is_forbidden_v4(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0x0000) // Teredo
        || (s[0] == 0x2001 && s[1] & 0xfff0 == 0x0010) // ORCHID
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard-only
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001) // local-use NAT64
        || (s[0] & 0xe000) != 0x2000 // outside global unicast 2000::/3
}

/// The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d),
/// NAT64 (64:ff9b::a.b.c.d) or 6to4 (2002:aabb:ccdd::) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0; 5]
        && (s[5] == 0xffff || (s[5] == 0 && !ip.is_loopback() && !ip.is_unspecified()))
    {
        return Some(tail());
    }
    if s[..6] == [0x0064, 0xff9b, 0, 0, 0, 0] {
        return Some(tail());
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(s: &str) -> bool {
        is_forbidden(s.parse().expect("an address"))
    }

    #[test]
    fn non_global_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2001::1",
            "64:ff9b:1::1",
        ] {
            assert!(forbidden(ip), "{ip} must be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!forbidden(ip), "{ip} must be allowed");
        }
    }

    #[test]
    fn literals_are_checked_with_or_without_brackets() {
        assert!(check_literal("127.0.0.1", false).is_err());
        assert!(check_literal("[::1]", false).is_err());
        assert!(check_literal("[::ffff:127.0.0.1]", false).is_err());
        assert!(check_literal("127.0.0.1", true).is_ok());
        assert!(check_literal("example.com", false).is_ok());
        assert!(check_literal("8.8.8.8", false).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_private_addresses() {
        use tower_service::Service;
        let name: Name = "localhost".parse().expect("a name");
        let mut guarded = GuardedResolver {
            allow_private: false,
        };
        let refused = guarded.call(name.clone()).await;
        assert!(
            matches!(refused, Err(ResolveError::Blocked { .. })),
            "{refused:?}"
        );
        let mut open = GuardedResolver {
            allow_private: true,
        };
        let addresses: Vec<_> = open.call(name).await.expect("resolves").collect();
        assert!(addresses.iter().all(|a| a.ip().is_loopback()));
    }
}
