//! IP networks written as `10.244.3.0/24` or `fd00:10:244:3::/64`: a node's `spec.podCIDRs`, `--cluster-cidr`,
//! and the networks of the capture's node filter. Shared vocabulary of every layer, like [`crate::UnixMicros`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network: an address and a prefix length, host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// The address ranges pod networks are taken from in practice: RFC 1918, the shared address space of
/// RFC 6598 (GKE, EKS custom networking) and IPv6 unique local addresses (docs/design.md §7).
pub const PRIVATE_NETWORKS: [&str; 5] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"];

impl IpNet {
    /// The network of `addr` with `prefix` bits; `None` when the prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then(|| IpNet { addr: mask(addr, prefix), prefix })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }

    /// [`PRIVATE_NETWORKS`], parsed.
    pub fn private() -> Vec<IpNet> {
        PRIVATE_NETWORKS.iter().map(|n| n.parse().expect("a valid network")).collect()
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

/// Why a network did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP network (write it as 10.244.0.0/16 or fd00:10:244::/56)")]
pub struct ParseIpNetError(String);

impl FromStr for IpNet {
    type Err = ParseIpNetError;

    fn from_str(text: &str) -> Result<IpNet, ParseIpNetError> {
        let error = || ParseIpNetError(text.to_owned());
        let (addr, prefix) = text.trim().split_once('/').ok_or_else(error)?;
        let addr: IpAddr = addr.parse().map_err(|_| error())?;
        IpNet::new(addr, prefix.parse().map_err(|_| error())?).ok_or_else(error)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_parse_clear_host_bits_and_contain_their_addresses() {
        let net: IpNet = "10.244.3.7/24".parse().unwrap();
        assert_eq!(net.to_string(), "10.244.3.0/24");
        assert!(net.contains(&ip("10.244.3.250")) && !net.contains(&ip("10.244.4.1")));
        assert!(net.contains(&ip("::ffff:10.244.3.1")), "IPv4-mapped IPv6 is IPv4");
        let v6: IpNet = "fd00:10:244:3::/64".parse().unwrap();
        assert!(v6.contains(&ip("fd00:10:244:3::1a")) && !v6.contains(&ip("10.244.3.1")));
        assert!("0.0.0.0/0".parse::<IpNet>().unwrap().contains(&ip("203.0.113.9")));
        for bad in ["10.0.0.0", "10.0.0.0/33", "fd00::/129", "x/8", "10.0.0.0/-1"] {
            assert!(bad.parse::<IpNet>().unwrap_err().to_string().contains("is not an IP network"), "{bad}");
        }
    }

    #[test]
    fn private_networks_hold_pod_addresses_and_not_public_ones() {
        let private = IpNet::private();
        let holds = |text: &str| private.iter().any(|n| n.contains(&ip(text)));
        assert!(holds("10.244.1.5") && holds("172.20.0.1") && holds("100.96.0.3") && holds("fd00::5"));
        assert!(!holds("203.0.113.9") && !holds("2001:db8::1") && !holds("172.32.0.1"));
    }
}
