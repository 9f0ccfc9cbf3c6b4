//! End-to-end harness: a Kubernetes node simulated with network namespaces, a real DNS server, real clients and
//! connections, the fake API server, the exporter, Prometheus and the reducer, all torn down by Drop guards.
//! Shared by the test (`tests/e2e_node.rs`) and the demo (`examples/demo_node.rs`, run by `make demo`).
//!
//! - [`cluster`]: the cluster as data, and the API objects, DNS records and NAT rules derived from it.
//! - [`node`]: namespaces, veths, routes, resolv.conf, iptables: the node's plumbing.
//! - [`procs`]: dnsmasq (kube-dns, an upstream resolver, a NodeLocal DNSCache), the per-pod applications, glibc
//!   lookups, `dig +tcp`, process usage.
//! - [`monitor`]: the exporter, Prometheus, `netmap-reduce`.
//! - [`shop`]: the scenario (a shop of 12 workloads) with its traffic and the exact map it must produce.
//! - [`mesh`]: meshed pods: each mesh's rules in the pod's namespace and stand-ins for its proxies.
//! - [`meshed`]: the mesh scenario (Istio sidecars, ambient with and without a waypoint, Linkerd, and pods without
//!   a mesh calling them and called by them) with the exact map it must produce.

pub mod cluster;
pub mod mesh;
pub mod meshed;
pub mod monitor;
pub mod node;
pub mod procs;
pub mod shop;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::fake_apiserver::FakeApi;
use cluster::Cluster;
use monitor::{Binaries, Exporter, Prometheus};
use node::SimNode;
use procs::Agent;

use crate::cmd::Guarded;
use crate::netns::LiveLock;

/// Why the lab cannot run here, if it cannot: it needs root and a few programs.
pub fn missing_prerequisite() -> Option<String> {
    crate::live::missing(crate::live::NODE_LAB)
}

/// Everything running. Fields drop in declaration order: processes first, then the API, the node, the files.
pub struct Lab {
    pub exporter: Option<Exporter>,
    pub prometheus: Option<Prometheus>,
    /// The application of each simulated pod, by pod name; `node` is a process of the node itself.
    pub agents: BTreeMap<String, Agent>,
    /// Mesh proxies of meshed pods ([`mesh`]).
    pub proxies: Vec<crate::cmd::LineChild>,
    pub dns: Option<Guarded>,
    /// DNS servers besides kube-dns: an upstream resolver outside the cluster, a NodeLocal DNSCache.
    pub more_dns: Vec<Guarded>,
    pub api: FakeApi,
    pub node: SimNode,
    pub cluster: Cluster,
    pub bins: Binaries,
    pub dir: tempfile::TempDir,
    _lock: LiveLock,
}

impl Lab {
    /// Builds the node for the cluster `describe` returns for the node's IP (pods, kube-proxy rules, kube-dns)
    /// and starts the fake API inside it. `third` picks the link subnet `169.254.<third>.0/24` to the root
    /// namespace.
    pub fn build(bins: Binaries, describe: impl FnOnce(std::net::Ipv4Addr) -> Cluster, third: u8) -> io::Result<Lab> {
        let lock = LiveLock::acquire()?;
        let dir = tempfile::Builder::new().prefix("nme2e-").tempdir()?;
        let node = SimNode::create(third, "monitoring")?;
        let cluster = describe(node.node_ip);
        let node_ns = node.netns.clone();
        // The fake API listens on 127.0.0.1 inside the node, where the exporter (hostNetwork) reaches it.
        let api = crate::netns::in_netns(&node_ns, FakeApi::start)?;
        let mut lab = Lab {
            exporter: None,
            prometheus: None,
            agents: BTreeMap::new(),
            proxies: Vec::new(),
            dns: None,
            more_dns: Vec::new(),
            api,
            node,
            cluster,
            bins,
            dir,
            _lock: lock,
        };
        lab.wire_pods()?;
        lab.start_dns()?;
        lab.api.apply_yaml(&lab.cluster.api_list());
        Ok(lab)
    }

    fn wire_pods(&mut self) -> io::Result<()> {
        let pods: Vec<_> =
            self.cluster.workloads.iter().filter(|w| w.created.is_none()).flat_map(|w| w.pod_names()).collect();
        for pod in pods.iter().filter(|p| shop::simulated_here(p)) {
            self.add_pod(pod)?;
        }
        for (ip, port, proto, backend, target) in self.cluster.nat_rules() {
            self.node.add_service_nat(ip, port, proto, backend, target)?;
        }
        self.agents.insert("node".into(), Agent::start(&self.node.netns)?);
        Ok(())
    }

    /// Wires one pod into the node and starts its application.
    pub fn add_pod(&mut self, pod: &cluster::PodName) -> io::Result<()> {
        let netns = self.node.add_pod(&pod.name, pod.namespace, pod.ip)?;
        self.agents.insert(pod.name.clone(), Agent::start(&netns)?);
        Ok(())
    }

    fn start_dns(&mut self) -> io::Result<()> {
        let dns_pod = self.pod_of("coredns");
        let netns = self.agent(&dns_pod).netns.clone();
        let ip = self.cluster.workload("coredns").pods[0].ip.to_string();
        let log = self.dir.path().join("dnsmasq.log");
        self.dns = Some(procs::start_dnsmasq(&netns, &ip, &self.cluster.dns_records(), &log)?);
        // Ready when the node's resolver gets an answer through the kube-dns DNAT rule (absolute name: one query).
        let probe = format!("{}.", self.cluster.service("kube-dns").fqdn());
        let node = self.node.netns.clone();
        crate::http::until("kube-dns to answer", Duration::from_secs(10), || procs::getent_v4(&node, &probe).ok())?;
        Ok(())
    }

    /// A resolver outside the cluster at `ip` (its own namespace, routed through the node like a host beyond
    /// the node's uplink), authoritative for `domain` with `records` (`name,address`). kube-dns forwards
    /// `domain` to it when the cluster lists it in `upstreams`.
    pub fn start_upstream_dns(&mut self, ip: std::net::Ipv4Addr, domain: &str, records: &[&str]) -> io::Result<()> {
        let netns = self.node.add_pod("upstream-dns", "none", ip)?;
        let mut args = vec![format!("--local=/{domain}/")];
        args.extend(records.iter().map(|r| format!("--host-record={r}")));
        let log = self.dir.path().join("upstream-dns.log");
        self.more_dns.push(procs::start_dnsmasq(&netns, &ip.to_string(), &args, &log)?);
        Ok(())
    }

    /// A NodeLocal DNSCache: a DNS server of the node itself (hostNetwork) on `ip`, forwarding to kube-dns,
    /// used by the first pod of each of `workloads` instead of kube-dns.
    pub fn start_node_local_dns(&mut self, ip: std::net::Ipv4Addr, workloads: &[&str]) -> io::Result<()> {
        self.node.add_local_address(ip)?;
        let upstream = self.cluster.service("kube-dns").cluster_ip.expect("kube-dns has a ClusterIP");
        let log = self.dir.path().join("node-local-dns.log");
        let args = [format!("--server={upstream}")];
        self.more_dns.push(procs::start_dnsmasq(&self.node.netns.clone(), &ip.to_string(), &args, &log)?);
        for workload in workloads {
            let netns = self.agent(&self.pod_of(workload)).netns.clone();
            self.node.set_nameserver(&netns, ip)?;
        }
        Ok(())
    }

    /// `dig +tcp` from the first pod of `workload` to `server`; fails unless it yields `expected`.
    pub fn dig_tcp(&mut self, workload: &str, server: &str, name: &str, expected: &str) -> io::Result<()> {
        let netns = self.agent(&self.pod_of(workload)).netns.clone();
        let ips = procs::dig_tcp(&netns, server, name)?;
        if ips.iter().any(|ip| ip == expected) {
            return Ok(());
        }
        Err(io::Error::other(format!("{workload}: dig +tcp {name} gave {ips:?}, expected {expected}")))
    }

    /// The name of the first pod of `workload`.
    pub fn pod_of(&self, workload: &str) -> String {
        self.cluster.workload(workload).pod_names()[0].name.clone()
    }

    /// The application of pod `pod` (or `node`).
    pub fn agent(&mut self, pod: &str) -> &mut Agent {
        self.agents.get_mut(pod).unwrap_or_else(|| panic!("no simulated pod {pod}"))
    }

    /// Runs `command` in the application of the first pod of `workload`.
    pub fn ask(&mut self, workload: &str, command: &str) -> io::Result<String> {
        let pod = if workload == "node" { "node".to_owned() } else { self.pod_of(workload) };
        self.agent(&pod).ask(command)
    }

    /// A glibc lookup from the first pod of `workload` (or the node); fails unless it yields `expected`.
    pub fn resolve(&mut self, workload: &str, name: &str, expected: &str) -> io::Result<()> {
        let netns =
            if workload == "node" { self.node.netns.clone() } else { self.agent(&self.pod_of(workload)).netns.clone() };
        let ips = procs::getent_v4(&netns, name)?;
        if ips.iter().any(|ip| ip == expected) {
            return Ok(());
        }
        Err(io::Error::other(format!("{workload}: {name} resolved to {ips:?}, expected {expected}")))
    }

    /// Starts the exporter in the node against the fake API and waits until it is ready. With a non-zero
    /// `api_down`, the API refuses every connection for that long after the start (a node rebooting while the
    /// control plane is busy): the exporter must serve `/metrics` meanwhile and report not ready.
    pub fn start_exporter(&mut self, api_down: Duration) -> io::Result<&Exporter> {
        let kubeconfig = self.api.write_kubeconfig(self.dir.path());
        self.api.set_down(!api_down.is_zero());
        let exporter = Exporter::start(&self.node, &self.bins, &kubeconfig, self.dir.path())?;
        if !api_down.is_zero() {
            let started = std::time::Instant::now();
            let readyz = format!("{}/readyz", exporter.base_url);
            crate::http::until("/readyz to say 503 while the API is down", Duration::from_secs(10), || {
                crate::http::get(&readyz).filter(|(code, _)| *code == 503)
            })
            .map_err(|e| exporter.with_log(e))?;
            exporter
                .metrics()
                .ok_or_else(|| exporter.with_log(io::Error::other("no /metrics while the API is down")))?;
            std::thread::sleep(api_down.saturating_sub(started.elapsed()));
            self.api.set_down(false);
        }
        exporter.wait_ready(Duration::from_secs(30))?;
        Ok(self.exporter.insert(exporter))
    }

    pub fn start_prometheus(&mut self) -> io::Result<&Prometheus> {
        let prometheus = Prometheus::start(&self.node, self.dir.path())?;
        Ok(self.prometheus.insert(prometheus))
    }

    pub fn exporter(&self) -> &Exporter {
        self.exporter.as_ref().expect("the exporter was started")
    }

    pub fn prometheus(&self) -> &Prometheus {
        self.prometheus.as_ref().expect("Prometheus was started")
    }

    /// Where logs and Prometheus' data are (removed with the lab).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}
