//! A Kubernetes node built from network namespaces, the way a CNI plugin such as Calico wires one:
//! - the "node" namespace is the router (`ip_forward=1`) and holds kube-proxy's DNAT rules for every ClusterIP;
//! - each pod is a namespace whose veth `eth0` has the pod IP as /32, a route to `169.254.1.1` and a default
//!   route through it; the node side of each veth holds `169.254.1.1/32` and a /32 route to the pod;
//! - `/etc/netns/<pod>/resolv.conf` carries the kubelet's search list and `options ndots:5`;
//! - one veth pair joins the root namespace to the node (link-local /30), so /metrics and the Prometheus UI are
//!   reachable from the machine. Pod and Service addresses exist only inside these namespaces: the node has no
//!   default route, and unNATed ClusterIP traffic ends in a sink device, so nothing leaves the lab.
//!
//! Names start with `nme2e-<pid>-`, so a run killed before its Drop guards ran is cleaned up by the next one.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::cluster::DOMAIN;
use crate::cmd::{run, run_quietly};
use crate::netns::{Netns, ip_in, remove_leftovers};

const PREFIX: &str = "nme2e-";
/// The node side of every pod veth (Calico's convention): pods route everything through this address.
pub const GATEWAY: &str = "169.254.1.1";

/// A pod's network namespace.
#[derive(Debug)]
pub struct PodNs {
    pub netns: Netns,
    pub ip: Ipv4Addr,
}

/// The simulated node. Dropping it removes every namespace, the root veth and the resolv.conf files.
pub struct SimNode {
    pub netns: String,
    /// The node's own address (the node side of the root link): hostNetwork pods have it.
    pub node_ip: Ipv4Addr,
    pub root_ip: Ipv4Addr,
    root_if: String,
    run_prefix: String,
    pods: Vec<PodNs>,
    _guard: Netns,
}

impl SimNode {
    /// Creates the node namespace and its link to the root namespace on `169.254.<third>.<4k+1,4k+2>/30`.
    pub fn create(third: u8, search_namespace: &str) -> io::Result<SimNode> {
        remove_leftovers(PREFIX);
        let pid = std::process::id();
        let run_prefix = format!("{PREFIX}{pid}-");
        let guard = Netns::create(format!("{run_prefix}node"))?;
        let (root_ip, node_ip) = free_link_addresses(third)?;
        let (netns, root_if) = (guard.name.clone(), format!("nme{pid}h"));
        let mut node = SimNode { netns, node_ip, root_ip, root_if, run_prefix, pods: Vec::new(), _guard: guard };
        node.configure_router()?;
        node.write_resolv_conf(&node.netns.clone(), search_namespace)?;
        Ok(node)
    }

    fn configure_router(&mut self) -> io::Result<()> {
        let ns = self.netns.clone();
        run("ip", &["link", "add", &self.root_if, "type", "veth", "peer", "name", "host0", "netns", &ns])?;
        run("ip", &["addr", "add", &format!("{}/30", self.root_ip), "dev", &self.root_if])?;
        run("ip", &["link", "set", &self.root_if, "up"])?;
        ip_in(&ns, &["addr", "add", &format!("{}/30", self.node_ip), "dev", "host0"])?;
        ip_in(&ns, &["link", "set", "host0", "up"])?;
        // Locally generated packets to a ClusterIP need a route before kube-proxy's OUTPUT DNAT rewrites them;
        // whatever is not rewritten ends in this sink instead of leaving the lab: a veth whose peer stays down
        // drops every packet (a dummy device would do, but containers often lack the module).
        ip_in(&ns, &["link", "add", "cluster0", "type", "veth", "peer", "name", "cluster0-sink"])?;
        ip_in(&ns, &["link", "set", "cluster0", "up"])?;
        ip_in(&ns, &["route", "add", "10.96.0.0/12", "dev", "cluster0", "src", &self.node_ip.to_string()])?;
        run("ip", &["netns", "exec", &ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        Ok(())
    }

    /// What kubelet writes for a ClusterFirst pod in `namespace` (ClusterFirstWithHostNet for the node).
    fn write_resolv_conf(&self, netns: &str, namespace: &str) -> io::Result<()> {
        let dir = PathBuf::from("/etc/netns").join(netns);
        fs::create_dir_all(&dir)?;
        let text =
            format!("nameserver 10.96.0.10\nsearch {namespace}.svc.{DOMAIN} svc.{DOMAIN} {DOMAIN}\noptions ndots:5\n");
        fs::write(dir.join("resolv.conf"), text)
    }

    /// Adds a pod namespace wired to the node; returns its namespace name.
    pub fn add_pod(&mut self, pod_name: &str, namespace: &str, ip: Ipv4Addr) -> io::Result<String> {
        let netns = format!("{}{pod_name}", self.run_prefix);
        let host_if = format!("cali{}", self.pods.len());
        self.pods.push(PodNs { netns: Netns::create(netns.clone())?, ip });
        self.write_resolv_conf(&netns, namespace)?;
        run(
            "ip",
            &["link", "add", &host_if, "netns", &self.netns, "type", "veth", "peer", "name", "eth0", "netns", &netns],
        )?;
        let ip = ip.to_string();
        ip_in(&netns, &["addr", "add", &format!("{ip}/32"), "dev", "eth0"])?;
        ip_in(&netns, &["link", "set", "eth0", "up"])?;
        ip_in(&netns, &["route", "add", GATEWAY, "dev", "eth0", "scope", "link"])?;
        ip_in(&netns, &["route", "add", "default", "via", GATEWAY, "dev", "eth0"])?;
        ip_in(&self.netns, &["addr", "add", &format!("{GATEWAY}/32"), "dev", &host_if])?;
        ip_in(&self.netns, &["link", "set", &host_if, "up"])?;
        ip_in(&self.netns, &["route", "add", &format!("{ip}/32"), "dev", &host_if])?;
        Ok(netns)
    }

    /// kube-proxy: DNAT `cluster_ip:port` to the backend's `target` port, for pods (PREROUTING) and the node
    /// itself (OUTPUT).
    pub fn add_service_nat(
        &self,
        cluster_ip: Ipv4Addr,
        port: u16,
        proto: &str,
        backend: Ipv4Addr,
        target: u16,
    ) -> io::Result<()> {
        let (dst, port_text, to) = (format!("{cluster_ip}/32"), port.to_string(), format!("{backend}:{target}"));
        for chain in ["PREROUTING", "OUTPUT"] {
            let rule = ["-t", "nat", "-A", chain, "-d", &dst, "-p", proto, "--dport", &port_text, "-j", "DNAT"];
            let mut args = vec!["netns", "exec", &self.netns, "iptables", "-w"];
            args.extend(rule);
            args.extend(["--to-destination", &to]);
            run("ip", &args)?;
        }
        Ok(())
    }

    /// Gives the node an address of its own on `lo` (a NodeLocal DNSCache's link-local address).
    pub fn add_local_address(&self, ip: Ipv4Addr) -> io::Result<()> {
        ip_in(&self.netns, &["addr", "add", &format!("{ip}/32"), "dev", "lo"])
    }

    /// Points a pod's resolver at `nameserver` instead of kube-dns (what a NodeLocal DNSCache setup does).
    pub fn set_nameserver(&self, netns: &str, nameserver: Ipv4Addr) -> io::Result<()> {
        let path = PathBuf::from("/etc/netns").join(netns).join("resolv.conf");
        let text = fs::read_to_string(&path)?.replace("nameserver 10.96.0.10", &format!("nameserver {nameserver}"));
        fs::write(path, text)
    }

    /// The pod namespaces created so far.
    pub fn pods(&self) -> &[PodNs] {
        &self.pods
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        // Pods first, newest first; the node's namespace (`_guard`) goes last, as the field drops.
        while self.pods.pop().is_some() {}
        run_quietly("ip", &["link", "del", &self.root_if]);
    }
}

/// Picks a /30 in `169.254.<third>.0/24` that no root-namespace interface uses yet.
fn free_link_addresses(third: u8) -> io::Result<(Ipv4Addr, Ipv4Addr)> {
    let used = String::from_utf8_lossy(&run("ip", &["-4", "-o", "addr", "show"])?.stdout).into_owned();
    let start = (std::process::id() % 63) as u8;
    (0..63u8)
        .map(|i| (start + i) % 63)
        .map(|slot| (Ipv4Addr::new(169, 254, third, slot * 4 + 1), Ipv4Addr::new(169, 254, third, slot * 4 + 2)))
        .find(|(root, node)| !used.contains(&format!(" {root}/")) && !used.contains(&format!(" {node}/")))
        .ok_or_else(|| io::Error::other(format!("no free /30 left in 169.254.{third}.0/24")))
}
