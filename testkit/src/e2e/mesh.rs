//! Meshed pods in the simulated node, simulated faithfully enough that the node sees what it sees under a real
//! mesh: each pod gets the rules its mesh writes into its network namespace, and a proxy (`mesh_proxy.py`) that
//! makes the same sockets, in the same namespaces, under the same uids as the real one:
//!
//! - **Istio sidecar** (`istio-iptables`, REDIRECT mode, `tools/istio-iptables/pkg/capture/testdata/*.golden` in
//!   istio/istio): nat OUTPUT sends TCP of every uid but 1337 to 15001, PREROUTING sends inbound TCP to 15006
//!   (15008, 15090, 15020, 15021 excepted); with DNS capture, UDP 53 of the application goes to 15053. Envoy runs
//!   as uid 1337, pools its upstreams to other sidecars, and reaches the application from 127.0.0.6.
//! - **Istio ambient**, in-pod redirection (`cni/pkg/iptables/iptables.go`, `AppendInpodRules`): OUTPUT REDIRECT
//!   to 15001 and PREROUTING REDIRECT to 15006 (15008 and packets marked 0x539 excepted), UDP 53 to 15053, the
//!   0x539 → 0x111 connmark and the `fwmark 0x111 lookup 100` / `local 0.0.0.0/0 dev lo table 100` routes that
//!   bring the application's replies back to ztunnel's transparent sockets. ztunnel is one root process in its own
//!   pod whose threads enter each ambient pod's namespace (ztunnel's DaemonSet runs as uid 0).
//! - **Linkerd** (`linkerd2-proxy-init`, `iptables/iptables.go`): PREROUTING REDIRECT to 4143 (4190, 4191
//!   excepted), OUTPUT REDIRECT to 4140 except uid 2102 and loopback. linkerd-proxy runs as uid 2102 and speaks
//!   to other Linkerd pods on 4143.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::Stdio;

use serde_json::{Value, json};

use super::Lab;
use super::cluster::{Cluster, DOMAIN, Dataplane};
use crate::cmd::LineChild;
use crate::netns::{command_in, ip_in};

const PROXY: &str = include_str!("mesh_proxy.py");
/// Envoy's uid in Istio (`istio-proxy`), also the waypoint's.
pub const ISTIO_PROXY_UID: u32 = 1337;
/// linkerd-proxy's uid.
pub const LINKERD_PROXY_UID: u32 = 2102;

const SIDECAR_RULES: &str = "*nat
:ISTIO_INBOUND - [0:0]
:ISTIO_REDIRECT - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
";
const SIDECAR_DNS_RULES: &str = "-A ISTIO_OUTPUT -p udp --dport 53 -j REDIRECT --to-ports 15053\n";
const SIDECAR_TAIL: &str = "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
";

const AMBIENT_RULES: &str = "*mangle
:ISTIO_PRERT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A PREROUTING -j ISTIO_PRERT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff
-A ISTIO_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff
COMMIT
*nat
:ISTIO_PRERT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A OUTPUT -j ISTIO_OUTPUT
-A PREROUTING -j ISTIO_PRERT
-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006
-A ISTIO_OUTPUT ! -o lo -p udp -m mark ! --mark 0x539/0xfff -m udp --dport 53 -j REDIRECT --to-ports 15053
-A ISTIO_OUTPUT -p tcp -m mark --mark 0x111/0xfff -j ACCEPT
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001
COMMIT
";

const LINKERD_RULES: &str = "*nat
:PROXY_INIT_REDIRECT - [0:0]
:PROXY_INIT_OUTPUT - [0:0]
-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -j RETURN
-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143
-A PREROUTING -j PROXY_INIT_REDIRECT
-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN
-A PROXY_INIT_OUTPUT -o lo -j RETURN
-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140
-A OUTPUT -j PROXY_INIT_OUTPUT
COMMIT
";

/// The mesh around the cluster's meshed pods: where the control plane, ztunnel and the waypoints are.
#[derive(Clone, Debug)]
pub struct MeshSetup {
    /// istiod's Service address, `ip:port`.
    pub istiod: String,
    /// The workload whose pod runs ztunnel (a DaemonSet pod of the node).
    pub ztunnel: &'static str,
    /// Services that have a waypoint: (service name, waypoint workload).
    pub waypoints: Vec<(&'static str, &'static str)>,
}

/// Writes each meshed pod's rules and starts the proxies: a sidecar or Linkerd proxy per pod, ztunnel for every
/// ambient pod, a proxy in each waypoint's pod. Returns when every proxy listens.
pub fn wire(lab: &mut Lab, setup: &MeshSetup) -> io::Result<()> {
    let pods = meshed_pods(lab);
    let mut ambient = BTreeMap::new();
    for (ip, netns, dataplane) in &pods {
        install_rules(netns, *dataplane)?;
        let uid = match dataplane {
            Dataplane::IstioSidecar { .. } => ISTIO_PROXY_UID,
            Dataplane::Linkerd => LINKERD_PROXY_UID,
            Dataplane::IstioAmbient => {
                ambient.insert(ip.clone(), netns.clone());
                continue;
            }
        };
        let mut config = config(&lab.cluster, setup, &pods);
        config["pod_ip"] = json!(ip);
        config["dns_capture"] = json!(matches!(dataplane, Dataplane::IstioSidecar { dns_capture: true }));
        let mode = if uid == LINKERD_PROXY_UID { "linkerd" } else { "sidecar" };
        lab.proxies.push(start(netns, mode, Some(uid), &config)?);
    }
    for (_, waypoint) in &setup.waypoints {
        let netns = lab.agent(&lab.pod_of(waypoint)).netns.clone();
        lab.proxies.push(start(&netns, "waypoint", Some(ISTIO_PROXY_UID), &config(&lab.cluster, setup, &pods))?);
    }
    if !ambient.is_empty() {
        let mut config = config(&lab.cluster, setup, &pods);
        config["ambient_pods"] = json!(ambient);
        let netns = lab.agent(&lab.pod_of(setup.ztunnel)).netns.clone();
        lab.proxies.push(start(&netns, "ztunnel", None, &config)?);
    }
    Ok(())
}

/// (pod IP, namespace, data plane) of every meshed pod simulated here.
fn meshed_pods(lab: &Lab) -> Vec<(String, String, Dataplane)> {
    let mut pods = Vec::new();
    for workload in &lab.cluster.workloads {
        let Some(dataplane) = workload.dataplane else { continue };
        for pod in workload.pod_names() {
            if let Some(agent) = lab.agents.get(&pod.name) {
                pods.push((pod.ip.to_string(), agent.netns.clone(), dataplane));
            }
        }
    }
    pods
}

/// What every proxy knows from its control plane: endpoints of each Service port, which pods are meshed how,
/// the waypoints, the names its DNS proxy answers.
fn config(cluster: &Cluster, setup: &MeshSetup, pods: &[(String, String, Dataplane)]) -> Value {
    let mut services = BTreeMap::new();
    let mut dns = BTreeMap::new();
    let mut waypoints = BTreeMap::new();
    for (ip, port, proto, backend, target) in cluster.nat_rules() {
        if proto == "tcp" {
            services.insert(format!("{ip}:{port}"), json!([backend.to_string(), target]));
        }
    }
    for service in cluster.services.iter().filter(|s| s.cluster_ip.is_some()) {
        let ip = service.cluster_ip.expect("filtered").to_string();
        dns.insert(service.fqdn(), ip.clone());
        if let Some((_, waypoint)) = setup.waypoints.iter().find(|(name, _)| *name == service.name) {
            let address = cluster.workload(waypoint).pods[0].ip.to_string();
            waypoints.insert(format!("{ip}:{}", service.port), address);
        }
    }
    let kind = |d: &Dataplane| match d {
        Dataplane::IstioSidecar { .. } => "sidecar",
        Dataplane::IstioAmbient => "ambient",
        Dataplane::Linkerd => "linkerd",
    };
    let meshed: BTreeMap<&str, &str> = pods.iter().map(|(ip, _, d)| (ip.as_str(), kind(d))).collect();
    let kube_dns = cluster.service("kube-dns").cluster_ip.expect("kube-dns has a ClusterIP");
    json!({"services": services, "pods": meshed, "waypoints": waypoints, "dns": dns, "domain": DOMAIN,
           "upstream_dns": kube_dns.to_string(), "istiod": setup.istiod})
}

/// The rules of `dataplane` in namespace `netns` (iptables-restore, as the meshes apply them), and for ambient
/// the routes that deliver replies to ztunnel's transparent sockets.
fn install_rules(netns: &str, dataplane: Dataplane) -> io::Result<()> {
    let rules = match dataplane {
        Dataplane::IstioSidecar { dns_capture } => {
            let dns = if dns_capture { SIDECAR_DNS_RULES } else { "" };
            format!("{SIDECAR_RULES}{dns}{SIDECAR_TAIL}")
        }
        Dataplane::IstioAmbient => AMBIENT_RULES.to_owned(),
        Dataplane::Linkerd => LINKERD_RULES.to_owned(),
    };
    let mut restore = command_in(netns, "iptables-restore").args(["-w", "--noflush"]).stdin(Stdio::piped()).spawn()?;
    restore.stdin.take().expect("piped stdin").write_all(rules.as_bytes())?;
    let status = restore.wait()?;
    if !status.success() {
        return Err(io::Error::other(format!("{netns}: iptables-restore of the {dataplane:?} rules: {status}")));
    }
    if dataplane == Dataplane::IstioAmbient {
        ip_in(netns, &["rule", "add", "fwmark", "0x111/0xfff", "pref", "32764", "lookup", "100"])?;
        ip_in(netns, &["route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100"])?;
    }
    Ok(())
}

/// Starts `mesh_proxy.py <mode>` in `netns` (as `uid`, else root) and waits until it listens.
fn start(netns: &str, mode: &str, uid: Option<u32>, config: &Value) -> io::Result<LineChild> {
    let mut command = match uid {
        Some(uid) => {
            let mut setpriv = command_in(netns, "setpriv");
            setpriv.args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into()]);
            setpriv.arg("/usr/bin/python3");
            setpriv
        }
        None => command_in(netns, "/usr/bin/python3"),
    };
    command.args(["-u", "-c", PROXY, mode, &config.to_string()]);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut proxy = LineChild::spawn(&mut command)?;
    match proxy.read_line() {
        Ok(line) if line == "ready" => Ok(proxy),
        other => Err(io::Error::other(format!("{netns}: the {mode} proxy did not start: {other:?}"))),
    }
}
