//! Command line of the `network-mapper` binary (docs/design.md §5). Every flag also reads `NETMAP_<FLAG_IN_CAPS>`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::IpNet;
use crate::exporter::metrics::Limits;
use crate::exporter::node_filter::NodeFilterSpec;
use crate::sources::capture::node_filter::{self, NodeAddresses};
use crate::sources::capture::source::Delivery;
use crate::sources::inventory::Plan;

/// The BPF filter that keeps DNS answers only (docs/design.md §3); with the SYN capture on (the default), client
/// SYNs are added to it (see [`Args::capture_filter`]).
pub const DEFAULT_BPF_FILTER: &str = "udp src port 53 or tcp src port 53";

/// The cluster domain when neither the flag nor `/etc/resolv.conf` names one.
pub const FALLBACK_CLUSTER_DOMAIN: &str = "cluster.local";

/// Node-level exporter of "who calls whom" edges between Kubernetes workloads, from DNS answers and TCP sockets.
#[derive(Parser, Debug, Clone)]
#[command(name = "network-mapper", version, about)]
pub struct Args {
    /// Address to serve /metrics (OpenMetrics), /healthz, /readyz and the landing page on. `IP:PORT`; an IPv6
    /// address may be written bare (`fd00::5:9953`), so the DaemonSet can bind to the node's IP alone with
    /// `--listen-address=$(HOST_IP):9953` (HOST_IP from the downward API's status.hostIP).
    #[arg(long, env = "NETMAP_LISTEN_ADDRESS", default_value = "0.0.0.0:9953", value_parser = parse_listen_address)]
    pub listen_address: SocketAddr,

    /// TLS and basic auth for the HTTP endpoints: a web configuration file in the format Prometheus and its
    /// exporters use (`tls_server_config`, `basic_auth_users` with bcrypt hashes).
    #[arg(long, env = "NETMAP_WEB_CONFIG_FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Capture device. `any` sees every pod veth of the node (needs hostNetwork).
    #[arg(long, env = "NETMAP_INTERFACE", default_value = "any")]
    pub interface: String,

    /// BPF filter applied to the capture [default: DNS answers (`udp src port 53 or tcp src port 53`) and,
    /// unless --no-syn-capture, client SYNs of IPv4 and IPv6]. A filter given here is used as it is.
    #[arg(long, env = "NETMAP_BPF_FILTER")]
    pub bpf_filter: Option<String>,

    /// Do not take client SYNs: connections are then seen by DNS answers and the socket scan only.
    #[arg(long, env = "NETMAP_NO_SYN_CAPTURE")]
    pub no_syn_capture: bool,

    /// Read this capture file (pcap or pcapng) instead of capturing on --interface.
    #[arg(long, env = "NETMAP_PCAP_FILE")]
    pub pcap_file: Option<PathBuf>,

    /// Take packets from the kernel one at a time (libpcap immediate mode) instead of in blocks: costs a wakeup per
    /// packet; kept only to compare the two in the live benchmark (`docs/capture.md`).
    #[arg(long, env = "NETMAP_CAPTURE_IMMEDIATE", hide = true)]
    pub capture_immediate: bool,

    /// With --pcap-file: process the file, write the metrics exposition to stdout and exit.
    #[arg(long, env = "NETMAP_PRINT_METRICS", requires = "pcap_file")]
    pub print_metrics: bool,

    /// Print the table of metric families the exporter serves (name, type, help, labels and their fixed values)
    /// as JSON and exit: what `scripts/check-grafana.py` checks the dashboard against.
    #[arg(long, env = "NETMAP_PRINT_METRIC_FAMILIES", hide = true)]
    pub print_metric_families: bool,

    /// Where the host's /proc is mounted (/host/proc in the DaemonSet).
    #[arg(long, env = "NETMAP_PROCFS_ROOT", default_value = "/proc")]
    pub procfs_root: PathBuf,

    /// Turn the TCP socket scanner off.
    #[arg(long, env = "NETMAP_NO_SOCKET_SCAN")]
    pub no_socket_scan: bool,

    /// Period of the TCP socket scan (e.g. 5s, 1m).
    #[arg(long, env = "NETMAP_SCAN_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub scan_interval: Duration,

    /// Count only clients on this node [default: $NODE_NAME; unset counts every resolvable client].
    #[arg(long, env = "NETMAP_NODE_NAME")]
    pub node_name: Option<String>,

    /// Kubeconfig for the Kubernetes API [default: in-cluster, else $KUBECONFIG or ~/.kube/config].
    #[arg(long, env = "NETMAP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// How the pods of other nodes are known when --node-name is set: `fetch` them from the API when an
    /// observation needs one (the agent watches only its node's pods, plus Services and EndpointSlices), or
    /// `watch` every pod of the cluster (and ReplicaSets and Jobs), as earlier releases did. docs/operating.md
    /// states what each costs.
    #[arg(long, env = "NETMAP_REMOTE_PODS", value_enum, default_value_t = RemotePods::Fetch)]
    pub remote_pods: RemotePods,

    /// The cluster's pod networks: an address in them that no known pod or endpoint holds is looked up as a pod
    /// (with --remote-pods=fetch). Comma-separated [default: the private ranges 10.0.0.0/8, 172.16.0.0/12,
    /// 192.168.0.0/16, 100.64.0.0/10, fc00::/7].
    #[arg(long, env = "NETMAP_CLUSTER_CIDR", value_delimiter = ',')]
    pub cluster_cidr: Vec<IpNet>,

    /// The window the agent's first API request is delayed within, by a hash of the node name, so a DaemonSet
    /// restarted at once spreads its lists (0s: no delay; no delay without --node-name).
    #[arg(long, env = "NETMAP_START_JITTER", default_value = "5s", value_parser = humantime::parse_duration)]
    pub start_jitter: Duration,

    /// Static inventory instead of the API: a Kubernetes List, YAML or JSON.
    #[arg(
        long,
        env = "NETMAP_INVENTORY_FILE",
        help = format!("Static inventory instead of the API: a Kubernetes List, YAML or JSON, as `{}` writes it", crate::sources::inventory::naming::KUBECTL_GET)
    )]
    pub inventory_file: Option<PathBuf>,

    /// Cluster DNS domain [default: from the /etc/resolv.conf search list, else cluster.local].
    #[arg(long, env = "NETMAP_CLUSTER_DOMAIN")]
    pub cluster_domain: Option<String>,

    /// Cap on distinct edge series; beyond it new edges are refused and counted.
    #[arg(long, env = "NETMAP_MAX_EDGES", default_value_t = 10_000)]
    pub max_edges: usize,

    /// Cap on distinct external names per client workload.
    #[arg(long, env = "NETMAP_MAX_EXTERNAL_NAMES", default_value_t = 50)]
    pub max_external_names: usize,
}

impl Args {
    /// The node whose clients count: the flag, else `$NODE_NAME` (what the downward API sets).
    pub fn node_name(&self) -> Option<String> {
        self.node_name.clone().or_else(|| std::env::var("NODE_NAME").ok()).filter(|n| !n.is_empty())
    }

    /// The cluster domain: the flag, else detected from `/etc/resolv.conf`, else `cluster.local`.
    pub fn cluster_domain(&self) -> String {
        let detected =
            || std::fs::read_to_string("/etc/resolv.conf").ok().and_then(|t| cluster_domain_from_resolv_conf(&t));
        let domain =
            self.cluster_domain.clone().or_else(detected).unwrap_or_else(|| FALLBACK_CLUSTER_DOMAIN.to_owned());
        domain.trim_matches('.').to_ascii_lowercase()
    }

    /// How the live capture takes packets from the kernel.
    pub fn delivery(&self) -> Delivery {
        if self.capture_immediate { Delivery::Immediate } else { Delivery::Batched }
    }

    /// The capture filter: `--bpf-filter`, else DNS answers plus (unless `--no-syn-capture`) client SYNs.
    pub fn capture_filter(&self) -> String {
        match (&self.bpf_filter, self.no_syn_capture) {
            (Some(filter), _) => filter.clone(),
            (None, true) => DEFAULT_BPF_FILTER.to_owned(),
            (None, false) => format!("{DEFAULT_BPF_FILTER} or {}", crate::sources::capture::syn::SYN_FILTER),
        }
    }

    /// The node filter of a live capture: with `--node-name` and the default filter, the kernel passes only
    /// answers to and SYNs from this node's pods (docs/design.md §7).
    pub fn node_filter(&self) -> Option<NodeFilterSpec> {
        let node = self.node_name().filter(|_| self.bpf_filter.is_none())?;
        let syns = (!self.no_syn_capture).then(|| crate::sources::capture::syn::SYN_FILTER.to_owned());
        Some(NodeFilterSpec { node, answers: node_filter::countable_answers(), syns })
    }

    /// The filter a live capture opens with: with a node filter (docs/design.md §7), answers to and SYNs from
    /// the pod networks until the node's pods are known, so nothing outside them is copied even then; else
    /// [`Args::capture_filter`].
    pub fn live_capture_filter(&self) -> String {
        let Some(spec) = self.node_filter() else { return self.capture_filter() };
        let networks = NodeAddresses { networks: self.pod_networks(), ..NodeAddresses::default() };
        node_filter::for_node(&spec.answers, spec.syns.as_deref(), &networks).unwrap_or_else(|| self.capture_filter())
    }

    /// `--cluster-cidr`, else the private ranges.
    pub fn pod_networks(&self) -> Vec<IpNet> {
        if self.cluster_cidr.is_empty() { IpNet::private() } else { self.cluster_cidr.clone() }
    }

    /// What the live inventory watches and fetches (docs/design.md §7).
    pub fn inventory_plan(&self) -> Plan {
        Plan {
            node: self.node_name(),
            fetch_remote: self.remote_pods == RemotePods::Fetch,
            pod_networks: self.pod_networks(),
            start_window: self.start_jitter,
        }
    }

    /// The cardinality caps.
    pub fn limits(&self) -> Limits {
        Limits { max_edges: self.max_edges, max_external_names: self.max_external_names }
    }
}

/// How an agent with a node name knows the pods of other nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RemotePods {
    /// Fetched from the API when an observation needs one.
    Fetch,
    /// Every pod of the cluster watched.
    Watch,
}

/// Parses `IP:PORT`, also accepting an IPv6 address without brackets (the last `:` separates the port), which
/// is what `$(HOST_IP):9953` expands to on an IPv6 node.
pub fn parse_listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let bare_v6 = text.rsplit_once(':').and_then(|(ip, port)| {
        let ip: std::net::Ipv6Addr = ip.parse().ok()?;
        Some(SocketAddr::from((ip, port.parse::<u16>().ok()?)))
    });
    bare_v6.ok_or_else(|| format!("{text:?} is not IP:PORT (e.g. 0.0.0.0:9953, 10.0.0.5:9953, [fd00::5]:9953)"))
}

/// Finds the cluster domain in a resolv.conf search list: the part after `svc.` in an entry such as
/// `svc.cluster.local` or `<ns>.svc.cluster.local` (what kubelet writes for ClusterFirst pods).
pub fn cluster_domain_from_resolv_conf(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("search"))
        .flat_map(str::split_whitespace)
        .find_map(|entry| {
            let entry = entry.trim_end_matches('.');
            entry.strip_prefix("svc.").or_else(|| entry.split_once(".svc.").map(|(_, d)| d))
        })
        .filter(|d| !d.is_empty())
        .map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_domain_comes_from_the_kubelet_search_list() {
        let conf = "nameserver 10.96.0.10\nsearch monitoring.svc.corp.example svc.corp.example corp.example\noptions ndots:5\n";
        assert_eq!(cluster_domain_from_resolv_conf(conf).as_deref(), Some("corp.example"));
        assert_eq!(cluster_domain_from_resolv_conf("search example.com\n"), None);
        assert_eq!(cluster_domain_from_resolv_conf("nameserver 1.1.1.1\n"), None);
    }

    #[test]
    fn listen_address_takes_a_bare_ipv6_host_ip() {
        assert_eq!(parse_listen_address("10.0.0.5:9953"), Ok("10.0.0.5:9953".parse().unwrap()));
        assert_eq!(parse_listen_address("[fd00::5]:9953"), Ok("[fd00::5]:9953".parse().unwrap()));
        assert_eq!(parse_listen_address("fd00::5:9953"), Ok("[fd00::5]:9953".parse().unwrap()));
        assert!(parse_listen_address(":9953").unwrap_err().contains("is not IP:PORT"));
        assert!(parse_listen_address("node-1:9953").is_err());
    }

    #[test]
    fn every_flag_has_an_environment_fallback() {
        let cmd = <Args as clap::CommandFactory>::command();
        for arg in cmd.get_arguments().filter(|a| a.get_long().is_some_and(|l| l != "help" && l != "version")) {
            let long = arg.get_long().unwrap_or_default();
            let expected = format!("NETMAP_{}", long.to_ascii_uppercase().replace('-', "_"));
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(expected.as_str()), "--{long}");
        }
    }
}
