//! The node filter (docs/design.md §7): a node's agent counts only the answers to its own pods and the SYNs
//! they send, so its kernel filter passes only those. A node hosting CoreDNS sees every answer of the cluster;
//! without this filter it would copy all of them to user space to drop most as other nodes'.
//!
//! The addresses are the node's `spec.podCIDRs` where they describe its pods, otherwise the pods' own addresses.
//! Pure: the exporter computes the addresses from the inventory and hands the expression to the live source.

use std::fmt::Write;
use std::net::IpAddr;

use crate::IpNet;

/// What the node's pods send from and receive at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeAddresses {
    /// Whole networks: the node's pod CIDRs.
    pub networks: Vec<IpNet>,
    /// Single addresses: pods' own, where no CIDR describes them.
    pub hosts: Vec<IpAddr>,
    /// The node's DNS servers (CoreDNS, a node-local cache pod): answers to them are lookups they forwarded,
    /// never counted (docs/design.md §3), so the kernel keeps them out; their SYNs still pass.
    pub dns_servers: Vec<IpAddr>,
}

impl NodeAddresses {
    /// The node's pod CIDRs when every pod address is inside them (they describe the node's pods, and cover a
    /// new pod before its address is known); otherwise the pods' addresses. Some CNIs (Calico's IPAM, AWS VPC CNI,
    /// Cilium's cluster pool) ignore `spec.podCIDRs`.
    pub fn of(cidrs: &[IpNet], pod_addresses: &[IpAddr]) -> NodeAddresses {
        let described = pod_addresses.iter().all(|ip| cidrs.iter().any(|net| net.contains(ip)));
        if !cidrs.is_empty() && described {
            NodeAddresses { networks: cidrs.to_vec(), ..NodeAddresses::default() }
        } else {
            NodeAddresses { hosts: pod_addresses.to_vec(), ..NodeAddresses::default() }
        }
    }

    /// The same, without answers to these DNS servers (the node's own ones among them).
    pub fn except_dns_servers(mut self, servers: impl IntoIterator<Item = IpAddr>) -> NodeAddresses {
        let own = |ip: &IpAddr| self.hosts.contains(ip) || self.networks.iter().any(|net| net.contains(ip));
        let mut servers: Vec<IpAddr> = servers.into_iter().filter(own).collect();
        servers.sort_unstable();
        servers.dedup();
        self.dns_servers = servers;
        self
    }

    /// How many networks and addresses the filter names.
    pub fn len(&self) -> usize {
        self.networks.len() + self.hosts.len()
    }

    /// Whether nothing is known yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `dst net N or dst host H ...` (with `dir` = `dst` or `src`).
    fn terms(&self, dir: &str) -> String {
        let nets = self.networks.iter().map(|net| format!("{dir} net {net}"));
        nets.chain(self.hosts.iter().map(|host| format!("{dir} host {host}"))).collect::<Vec<_>>().join(" or ")
    }

    /// ` and not (dst host D ...)` for the DNS servers, or nothing.
    fn except_answers_to_dns_servers(&self) -> String {
        if self.dns_servers.is_empty() {
            return String::new();
        }
        let hosts: Vec<String> = self.dns_servers.iter().map(|ip| format!("dst host {ip}")).collect();
        format!(" and not ({})", hosts.join(" or "))
    }
}

/// The answers a node filter passes: UDP answers whose DNS header says they can count (the rules of
/// [`super::prefilter::header_verdict`]: a response, a standard query, NOERROR, a question and an answer record),
/// a UDP header too short to say (user space counts it `malformed`), and every TCP answer (where its DNS header
/// starts depends on the TCP header and the segment). NXDOMAIN answers to a pod's search-list candidates are most
/// of what a node's pods receive, and none of them can count: they stay in the kernel.
///
/// pcap's `udp[i]` reads IPv4 packets only, so IPv6 reads the UDP header right after the fixed 40-byte header, as
/// libpcap's own `udp src port` does for IPv6 (a packet with extension headers passes neither).
pub fn countable_answers() -> String {
    let header = |at: &dyn Fn(usize, &str) -> String| {
        let (udp_len, flags_hi, flags_lo) = (at(4, ":2"), at(10, ""), at(11, ""));
        let (questions, answers) = (at(12, ":2"), at(14, ":2"));
        format!(
            "({udp_len} < 20 or ({flags_hi} & 0xf8 == 0x80 and {flags_lo} & 0xf == 0 and {questions} != 0 and \
             {answers} != 0))"
        )
    };
    let v4 = header(&|offset, size| format!("udp[{offset}{size}]"));
    let v6 = header(&|offset, size| format!("ip6[{}{size}]", 40 + offset));
    format!("(udp src port 53 and ((ip and {v4}) or (ip6 and {v6}))) or tcp src port 53")
}

/// The capture filter restricted to the node: answers (`answers`, e.g. `udp src port 53 or tcp src port 53`)
/// to its pods, and with `syns` (a SYN expression) SYNs from them. `None` while no address is known: the
/// capture then keeps its unrestricted filter.
pub fn for_node(answers: &str, syns: Option<&str>, node: &NodeAddresses) -> Option<String> {
    if node.is_empty() {
        return None;
    }
    // pcap's `and` and `or` bind equally, left to right: each conjunction needs its own parentheses.
    let mut filter = format!("(({answers}) and ({}){})", node.terms("dst"), node.except_answers_to_dns_servers());
    if let Some(syns) = syns {
        let _ = write!(filter, " or (({syns}) and ({}))", node.terms("src"));
    }
    Some(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn cidrs_that_hold_every_pod_are_the_filter_otherwise_the_pods_are() {
        let cidrs: Vec<IpNet> = vec!["10.244.3.0/24".parse().unwrap()];
        let inside = NodeAddresses::of(&cidrs, &ips(&["10.244.3.5", "10.244.3.9"]));
        assert_eq!(inside, NodeAddresses { networks: cidrs.clone(), ..NodeAddresses::default() });
        let elsewhere = NodeAddresses::of(&cidrs, &ips(&["10.244.3.5", "192.168.7.2"]));
        assert_eq!(elsewhere.hosts, ips(&["10.244.3.5", "192.168.7.2"]));
        assert!(elsewhere.networks.is_empty());
        assert_eq!(NodeAddresses::of(&cidrs, &[]).networks, cidrs, "a new node's CIDR covers its first pods");
        assert!(NodeAddresses::of(&[], &[]).is_empty());
    }

    #[test]
    fn the_filter_keeps_answers_to_and_syns_from_the_node() {
        let node = NodeAddresses {
            networks: vec!["10.244.3.0/24".parse().unwrap()],
            hosts: ips(&["fd00::7"]),
            ..NodeAddresses::default()
        };
        assert_eq!(
            for_node("udp src port 53", Some("tcp[13] == 2"), &node).unwrap(),
            "((udp src port 53) and (dst net 10.244.3.0/24 or dst host fd00::7)) or ((tcp[13] == 2) and \
             (src net 10.244.3.0/24 or src host fd00::7))"
        );
        assert_eq!(for_node("udp", None, &node).unwrap(), "((udp) and (dst net 10.244.3.0/24 or dst host fd00::7))");
        assert_eq!(for_node("udp", None, &NodeAddresses::default()), None);
        let dns = node.except_dns_servers(ips(&["10.244.3.53", "10.96.0.10"]));
        assert_eq!(dns.dns_servers, ips(&["10.244.3.53"]), "only the node's own");
        assert_eq!(
            for_node("udp", Some("syn"), &dns).unwrap(),
            "((udp) and (dst net 10.244.3.0/24 or dst host fd00::7) and not (dst host 10.244.3.53)) or ((syn) and \
             (src net 10.244.3.0/24 or src host fd00::7))"
        );
    }
}
