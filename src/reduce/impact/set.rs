//! A policy set as the evaluator sees it, whatever API it was written in: which pods each policy isolates in
//! which direction, and what its rules allow (peers and ports). [`super::kubernetes`] and [`super::cilium`]
//! translate their APIs into it, so one evaluator ([`super::evaluate`]) decides for both.

use std::fmt;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Where a policy came from, for messages: `shop/cart-ingress (NetworkPolicy in policies/cart.yaml)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub kind: String,
    /// `None` for cluster-wide policies.
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

/// Pods chosen by the labels of their namespace and their own labels. A namespace's labels include
/// `kubernetes.io/metadata.name`, so a namespace chosen by name is a selector on that label.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pods {
    pub namespaces: LabelSelector,
    pub pods: LabelSelector,
}

/// The policies' unit: the pods it selects and, per direction, whether it isolates them and what it allows.
#[derive(Debug, Clone)]
pub struct Policy {
    pub origin: Origin,
    pub subject: Pods,
    pub ingress: Direction,
    pub egress: Direction,
}

/// One direction of a policy. An isolated pod gets only what some rule of some policy selecting it allows;
/// rules of a policy that does not isolate (Cilium's `enableDefaultDeny: false`) still add to that.
#[derive(Debug, Clone, Default)]
pub struct Direction {
    pub isolates: bool,
    pub rules: Vec<Allow>,
}

/// One rule: traffic from (ingress) or to (egress) any of `peers`, on any of `ports`. `None` means any peer or
/// any port; an empty list means none.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    pub peers: Option<Vec<Peer>>,
    pub ports: Option<Vec<PortRule>>,
}

/// Who a rule names.
#[derive(Debug, Clone)]
pub enum Peer {
    Pods(Pods),
    /// An address block without the `except` blocks. Pods are never matched by address (see
    /// docs/policies.md: CNIs differ, and Kubernetes says ipBlock is for addresses outside the cluster).
    Block {
        cidr: Cidr,
        except: Vec<Cidr>,
    },
    /// A Cilium entity.
    Entity(Entity),
    /// A Cilium `toFQDNs` selector.
    Fqdn(NamePattern),
}

/// The Cilium entities that can name what the map holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    All,
    World,
    Cluster,
    Host,
    RemoteNode,
    KubeApiserver,
    /// Entities that are none of the map's peers (`health`, `init`, `ingress`, `unmanaged`, `none`).
    Other(String),
}

/// A DNS name, exactly (`matchName`) or with `*` wildcards (`matchPattern`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePattern {
    Exact(String),
    Pattern(String),
}

/// A port a rule allows: a protocol (`None` for Cilium's `ANY`) and the ports of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    pub protocol: Option<Protocol>,
    pub ports: PortSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// The ports of a [`PortRule`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// Every port of the protocol.
    All,
    /// `port` to `endPort`, both included.
    Range(u16, u16),
    /// A named container port of the destination pod.
    Named(String),
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8` or `fd00::/64`; a bare address is a host block.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("{text:?} is not a CIDR (expected e.g. 10.0.0.0/16 or fd00::/64)");
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().map_err(|_| bad())?, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text.parse::<IpAddr>().map_err(|_| bad())?, None),
        };
        let width = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(width);
        if prefix > width {
            return Err(bad());
        }
        Ok(Cidr { address, prefix })
    }

    /// Whether the block holds `ip` (an address of the other family never).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, addr, width) = match (self.address, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(u32::from(n)), u128::from(u32::from(a)), 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
            _ => return false,
        };
        let shift = width - u32::from(self.prefix);
        shift >= 128 || (net >> shift) == (addr >> shift)
    }

    /// Whether the block is a whole address family (`0.0.0.0/0`, `::/0`).
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_hold_their_addresses_only() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("192.0.2.1".parse().unwrap()));
        assert!(Cidr::parse("::/0").unwrap().is_everything());
        assert!(Cidr::parse("192.0.2.7").unwrap().contains("192.0.2.7".parse().unwrap()));
        assert!(Cidr::parse("fd00::/64").unwrap().contains("fd00::9".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x/8", "fd00::/129", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
