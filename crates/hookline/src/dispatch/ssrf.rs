//! The SSRF guard: deliveries never reach private, loopback, link-local,
//! CGNAT, multicast or unspecified addresses, unless an operator allowed a
//! range. The check runs on resolved addresses inside the HTTP client's
//! resolver, and the client connects to exactly the addresses that passed:
//! there is no second lookup a DNS rebinding could swing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, Clone, Default)]
pub struct SsrfGuard {
    allowed: Vec<IpNet>,
}

/// Why an address was refused; shown in the attempt log.
#[derive(Debug)]
pub struct Refused {
    pub host: String,
    pub addr: IpAddr,
    pub class: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refused by the SSRF guard: {} resolves to {} ({}); allow it with HOOKLINE_ALLOWED_PRIVATE_CIDRS",
            self.host, self.addr, self.class
        )
    }
}

impl std::error::Error for Refused {}

impl SsrfGuard {
    pub fn new(allowed: Vec<IpNet>) -> SsrfGuard {
        SsrfGuard { allowed }
    }

    /// `Err(class)` when the address may not be reached.
    pub fn check(&self, addr: IpAddr) -> Result<(), &'static str> {
        if self.allowed.iter().any(|net| net.contains(&addr)) {
            return Ok(());
        }
        match forbidden_class(addr) {
            Some(class) => Err(class),
            None => Ok(()),
        }
    }
}

fn forbidden_class(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("carrier-grade NAT")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if o[0] == 0 {
        Some("unspecified")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking (198.18.0.0/15)")
    } else if o[0..3] == [192, 0, 0] {
        Some("IETF protocol assignments (192.0.0.0/24)")
    } else if matches!(o[0..3], [192, 0, 2] | [198, 51, 100] | [203, 0, 113]) {
        Some("documentation")
    } else if ip.is_broadcast() || o[0] >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.to_ipv4_mapped().is_some() {
        Some("IPv4-mapped")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("unique local (private)")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if s[0..6] == [0, 0, 0, 0, 0, 0] {
        Some("IPv4-compatible")
    } else if s[0] & 0xffc0 == 0xfec0 {
        Some("site-local (private)")
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // RFC 8215 local-use translation: whatever it reaches is local.
        Some("local-use NAT64 (64:ff9b:1::/48)")
    } else if s[0] == 0x2001 && s[1] == 0xdb8 {
        Some("documentation")
    } else if s[0] == 0x2001 && s[1] == 0 {
        // Teredo tunnels to an address we cannot see.
        Some("Teredo")
    } else if let Some(v4) = embedded_v4(&s) {
        // NAT64 and 6to4 reach the IPv4 address they carry.
        v4_class(v4).map(|_| "IPv4 embedded in IPv6 (NAT64/6to4) to a forbidden address")
    } else {
        None
    }
}

/// The IPv4 address carried by a NAT64 (64:ff9b::/96), 6to4 (2002::/16) or
/// IPv4-translated (::ffff:0:0/96) address.
fn embedded_v4(s: &[u16; 8]) -> Option<Ipv4Addr> {
    let from = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[0..6] == [0, 0, 0, 0, 0xffff, 0] {
        Some(from(s[6], s[7]))
    } else if s[0] == 0x2002 {
        Some(from(s[1], s[2]))
    } else {
        None
    }
}

/// `localhost`, `localhost.` and names under `.localhost`.
fn loopback_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// The HTTP client's resolver: looks the name up and keeps only allowed addresses.
pub struct GuardedResolver {
    pub guard: Arc<SsrfGuard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved: Vec<SocketAddr> = match loopback_name(&host) {
                // Never asked of DNS (RFC 6761): these names are loopback,
                // whatever a resolver would say.
                true => vec![SocketAddr::from(([127, 0, 0, 1], 0)), SocketAddr::from((Ipv6Addr::LOCALHOST, 0))],
                false => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| match guard.check(a.ip()) {
                    Ok(()) => true,
                    Err(class) => {
                        refused.get_or_insert(Refused { host: host.clone(), addr: a.ip(), class });
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = match refused {
                    Some(r) => Box::new(r),
                    None => format!("{host} did not resolve to any address").into(),
                };
                return Err(err);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_ranges_are_refused() {
        let guard = SsrfGuard::default();
        for addr in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2001:0:4136:e378::1",
            "fec0::1",
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "64:ff9b:1::5db8:d822",
            "2001:db8::1",
            "::ffff:0:7f00:1",
        ] {
            assert!(guard.check(addr.parse().unwrap()).is_err(), "{addr} should be refused");
        }
        for addr in [
            "93.184.216.34",
            "2606:4700::1111",
            "100.128.0.1",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "198.20.0.1",
            "192.0.1.1",
        ] {
            assert!(guard.check(addr.parse().unwrap()).is_ok(), "{addr} should be allowed");
        }
    }

    #[test]
    fn allowed_cidrs_override() {
        let guard = SsrfGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(guard.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(guard.check("10.0.0.1".parse().unwrap()).is_err());
    }
}
