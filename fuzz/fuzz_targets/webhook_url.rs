//! The webhook URL parser and the SSRF guard: an accepted URL is stored and read back
//! unchanged; an address literal is refused exactly when the guard forbids its address;
//! an IPv4 address the guard forbids stays forbidden written as IPv6.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::Host;
use verihook_core::WebhookUrl;
use verihook_server::delivery::guard::{check_literal, is_forbidden};

fuzz_target!(|data: &[u8]| {
    addresses(data);
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for allow_http in [false, true] {
        let Ok(url) = WebhookUrl::parse(s, allow_http) else {
            continue;
        };
        let stored = WebhookUrl::from_stored(url.as_str()).expect("a stored URL reads back");
        assert_eq!(stored.as_str(), url.as_str());
        let host = url.url().host_str().expect("an accepted URL has a host");
        let refused = check_literal(host, false).is_err();
        match url.url().host() {
            Some(Host::Ipv4(ip)) => assert_eq!(refused, is_forbidden(IpAddr::V4(ip))),
            Some(Host::Ipv6(ip)) => assert_eq!(refused, is_forbidden(IpAddr::V6(ip))),
            _ => assert!(
                !refused,
                "a name is checked when resolved, not as a literal"
            ),
        }
        assert!(check_literal(host, true).is_ok());
    }
});

/// The guard on the raw bytes as addresses: the IPv6 forms that carry an IPv4 address
/// (mapped, compatible, NAT64, 6to4) are refused whenever that address is.
fn addresses(data: &[u8]) {
    let (Some(v4), Some(v6)) = (data.get(..4), data.get(..16)) else {
        return;
    };
    let v4 = Ipv4Addr::from(<[u8; 4]>::try_from(v4).expect("4 bytes"));
    let _ = is_forbidden(IpAddr::V6(Ipv6Addr::from(
        <[u8; 16]>::try_from(v6).expect("16 bytes"),
    )));
    if is_forbidden(IpAddr::V4(v4)) {
        assert!(is_forbidden(IpAddr::V6(v4.to_ipv6_mapped())), "{v4} mapped");
        let [a, b, c, d] = v4.octets();
        let nat64 = Ipv6Addr::new(
            0x64,
            0xff9b,
            0,
            0,
            0,
            0,
            u16::from_be_bytes([a, b]),
            u16::from_be_bytes([c, d]),
        );
        assert!(is_forbidden(IpAddr::V6(nat64)), "{v4} in NAT64");
    }
}
