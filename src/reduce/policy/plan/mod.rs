//! The policy plan: from the map, its ports and the cluster view to a list of policies in the abstract (who is
//! selected, which peers on which ports, and why), before any API's shape. Pure; the renderers
//! ([`super::kubernetes`], [`super::cilium`]) only translate it.
//!
//! Decisions (`docs/policies.md`):
//! - ingress per server workload: each observed client on its observed ports; an edge seen only through DNS on
//!   the target ports of the Services in front of the server, else on all ports, noted;
//! - egress per client (optional): observed servers, the API server by address, DNS always;
//! - DNS servers (backends of a Service with port 53) accept DNS from everywhere;
//! - a `default-deny` policy in each client namespace, so pods the map never saw talk get nothing but DNS;
//! - only in the `scope` namespaces (`--namespace`), whose servers keep every observed client, from anywhere;
//! - a meshed pod is allowed what its mesh puts on the wire ([`mesh`]): HBONE's 15008 between ambient pods,
//!   4143 between Linkerd pods.
//!
//! Safe by construction: a peer that cannot be expressed (a workload missing from the inventory or without a
//! stable selector, a hostNetwork pod, for NetworkPolicy a name outside the cluster) is allowed as "any peer on
//! the edge's ports" and said so; a workload whose pods cannot be selected keeps its namespace free of the
//! `default-deny` direction that would cut it off. Never guessed, never silently denied.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

mod mesh;
mod workloads;

use super::inventory::{ClusterInfo, PortRef, TargetPort, Workload};
use crate::reduce::model::{Call, Client, Edge, EdgePorts, ServiceMap};

/// Which directions get policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Ingress,
    Egress,
    Both,
}

impl Direction {
    pub fn ingress(self) -> bool {
        self != Direction::Egress
    }
    pub fn egress(self) -> bool {
        self != Direction::Ingress
    }
}

/// What the planner is told besides the map.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub direction: Direction,
    /// Node-local DNS cache addresses (`--node-local-dns`), reached from pods by address.
    pub node_local_dns: Vec<IpAddr>,
    /// Sources allowed into every selected pod (`--allow-from-cidr`: nodes for kubelet probes, ingress ranges).
    pub allow_from_cidrs: Vec<String>,
    /// Write a `default-deny` policy per client namespace.
    pub default_deny: bool,
    /// The target can name servers by DNS name (Cilium `toFQDNs`).
    pub fqdn: bool,
    /// Namespaces to write policies in (`--namespace`); `None` for every namespace of the map.
    pub scope: Option<BTreeSet<String>>,
}

/// Who a rule allows.
#[derive(Debug, Clone, PartialEq)]
pub enum Peer {
    /// The pods of a selector in a namespace.
    Pods { namespace: String, selector: LabelSelector },
    /// An address block.
    Cidr(String),
    /// The API server: by entity where the target can, else by these addresses.
    ApiServer(Vec<String>),
    /// A name outside the cluster (only planned when [`PlanOptions::fqdn`]).
    Fqdn(String),
}

/// One rule: peers (none = every source or destination) on ports (none = all ports). A rule without peers
/// also stands for a peer that could not be expressed: any peer on that edge's ports.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub peers: Vec<Peer>,
    pub ports: Vec<TargetPort>,
    /// DNS traffic: Cilium's DNS proxy must see it (`rules: dns`) for `toFQDNs` to learn addresses.
    pub dns: bool,
}

/// One policy in the abstract.
#[derive(Debug, Clone)]
pub struct Policy {
    pub namespace: String,
    pub name: String,
    /// The pods it selects; empty selects every pod of the namespace.
    pub selector: LabelSelector,
    pub ingress: Option<Vec<Rule>>,
    pub egress: Option<Vec<Rule>>,
    /// Annotations explaining it (`network-mapper.io/…` keys without the prefix).
    pub notes: BTreeMap<String, String>,
}

/// Every policy, with what could not be expressed.
#[derive(Debug, Default)]
pub struct Plan {
    pub policies: Vec<Policy>,
    /// Workloads and edges left out, and why (stderr and the header comment).
    pub left_out: Vec<String>,
}

/// Plans the policies of `map`.
pub fn plan(map: &ServiceMap, ports: &EdgePorts, info: &ClusterInfo, options: &PlanOptions) -> Plan {
    let mut planner = Planner { info, ports, options, plan: Plan::default(), no_deny: BTreeMap::new() };
    if options.direction.ingress() {
        planner.ingress(map);
    }
    if options.direction.egress() {
        for client in &map.clients {
            if planner.in_scope(&client.namespace) {
                planner.egress(client);
            }
        }
    }
    // Last: which namespaces may get which direction of default-deny depends on what could be selected.
    if options.default_deny {
        planner.default_deny(map);
    }
    planner.plan.left_out.extend(info.warnings.iter().map(|w| format!("warning: {w}")));
    planner.plan.policies.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    planner.plan
}

struct Planner<'a> {
    info: &'a ClusterInfo,
    ports: &'a EdgePorts,
    options: &'a PlanOptions,
    plan: Plan,
    /// (namespace, `ingress`/`egress`) → why a default-deny in that direction would cut off observed traffic.
    no_deny: BTreeMap<(String, &'static str), String>,
}

/// Why a workload cannot be selected, and whether policies still apply to its pods (a workload missing from the
/// inventory or without a stable selector has pods a namespace-wide policy isolates; a hostNetwork one not).
struct Unselectable {
    why: String,
    isolatable: bool,
}

/// A Kubernetes object name from a workload name (`_`, which stands for `.`, is not allowed in names).
pub fn object_name(workload: &str, suffix: &str) -> String {
    format!("{}-{suffix}", workload.replace('_', "-").to_ascii_lowercase())
}

fn tcp(port: u16) -> TargetPort {
    TargetPort { port: PortRef::Number(port), protocol: "TCP".to_owned() }
}

fn describe_ports(ports: &[TargetPort]) -> String {
    if ports.is_empty() {
        return "all ports".to_owned();
    }
    let shown: Vec<String> = ports
        .iter()
        .map(|p| match &p.port {
            PortRef::Number(n) => format!("{} {n}", p.protocol),
            PortRef::Name(name) => format!("{} {name}", p.protocol),
        })
        .collect();
    shown.join(", ")
}

impl Planner<'_> {
    fn left_out(&mut self, message: String) {
        self.plan.left_out.push(message);
    }

    fn in_scope(&self, namespace: &str) -> bool {
        self.options.scope.as_ref().is_none_or(|scope| scope.contains(namespace))
    }

    /// A workload that a selector can express, or why not.
    fn selectable(&self, namespace: &str, name: &str) -> Result<&Workload, Unselectable> {
        let workload = self.info.workload(namespace, name).ok_or_else(|| Unselectable {
            why: format!("{namespace}/{name} is not in the inventory (no pods or controller by that name)"),
            isolatable: true,
        })?;
        if workload.host_network {
            return Err(Unselectable {
                why: format!(
                    "{namespace}/{name} runs with hostNetwork: NetworkPolicies do not select its pods and pod \
                     selectors do not match its traffic (its address is the node's; use --allow-from-cidr for node \
                     ranges)"
                ),
                isolatable: false,
            });
        }
        match &workload.selector {
            Some(_) => Ok(workload),
            None => Err(Unselectable {
                why: format!(
                    "{namespace}/{name} ({}) has no stable pod selector (only volatile labels such as \
                     pod-template-hash); label its pods",
                    workload.kind
                ),
                isolatable: true,
            }),
        }
    }

    /// Records that `namespace` must not get the `direction` half of default-deny, because of `why`.
    fn keep_open(&mut self, namespace: &str, direction: &'static str, why: &str) {
        self.no_deny.entry((namespace.to_owned(), direction)).or_insert_with(|| why.to_owned());
    }

    fn peer_of(workload: &Workload) -> Peer {
        Peer::Pods { namespace: workload.namespace.clone(), selector: workload.selector.clone().unwrap_or_default() }
    }

    /// The ports a client reaches a server on, and how they were found.
    fn edge_ports(&self, edge: &Edge, server: &Workload) -> (Vec<TargetPort>, String) {
        if let Some(ports) = self.ports.get(edge) {
            return (ports.iter().copied().map(tcp).collect(), "observed connections".to_owned());
        }
        let mut from_services = BTreeSet::new();
        let mut names = Vec::new();
        for service in self.info.services_of(server) {
            names.push(format!("{}/{}", service.namespace, service.name));
            from_services.extend(service.ports.iter().map(|(_, target)| target.clone()));
        }
        if from_services.is_empty() {
            let why = "seen only through DNS and no Service selects its pods: all ports".to_owned();
            return (Vec::new(), why);
        }
        let why = format!("seen only through DNS: target ports of Service {}", names.join(", "));
        (from_services.into_iter().collect(), why)
    }

    /// Rules allowing DNS: the DNS Services' pods on their port-53 target ports, and node-local caches.
    fn dns_rules(&mut self) -> Vec<Rule> {
        let mut peers = Vec::new();
        let mut ports = BTreeSet::new();
        for service in self.info.dns_services() {
            let selector = LabelSelector { match_labels: Some(service.selector.clone()), match_expressions: None };
            peers.push(Peer::Pods { namespace: service.namespace.clone(), selector });
            ports.extend(service.ports.iter().filter(|(port, _)| *port == 53).map(|(_, target)| target.clone()));
        }
        if peers.is_empty() {
            // Every mainstream distribution labels its cluster DNS so (kube-dns, CoreDNS, k3s, kubeadm, EKS, GKE).
            let labels = BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())]);
            let selector = LabelSelector { match_labels: Some(labels), match_expressions: None };
            peers.push(Peer::Pods { namespace: "kube-system".to_owned(), selector });
        }
        if ports.is_empty() {
            ports = dns_ports();
        }
        let mut rules = vec![Rule { peers, ports: ports.into_iter().collect(), dns: true }];
        if !self.options.node_local_dns.is_empty() {
            let peers = self.options.node_local_dns.iter().map(|ip| Peer::Cidr(host_cidr(*ip))).collect();
            rules.push(Rule { peers, ports: dns_ports().into_iter().collect(), dns: true });
        }
        rules
    }

    fn allow_from_rules(&self) -> Vec<Rule> {
        if self.options.allow_from_cidrs.is_empty() {
            return Vec::new();
        }
        let peers = self.options.allow_from_cidrs.iter().cloned().map(Peer::Cidr).collect();
        vec![Rule { peers, ports: Vec::new(), dns: false }]
    }

    fn default_deny(&mut self, map: &ServiceMap) {
        let namespaces: BTreeSet<&str> =
            map.clients.iter().map(|c| c.namespace.as_str()).filter(|ns| self.in_scope(ns)).collect();
        let direction = self.options.direction;
        for namespace in namespaces {
            let ingress = direction.ingress() && !self.withheld(namespace, "ingress");
            let egress = direction.egress() && !self.withheld(namespace, "egress");
            if !ingress && !egress {
                continue;
            }
            let notes = BTreeMap::from([(
                "notes".to_owned(),
                "every pod of the namespace: nothing but DNS unless another policy allows it".to_owned(),
            )]);
            let ingress = ingress.then(|| self.allow_from_rules());
            let egress = egress.then(|| self.dns_rules());
            self.plan.policies.push(Policy {
                namespace: namespace.to_owned(),
                name: "default-deny".to_owned(),
                selector: LabelSelector::default(),
                ingress,
                egress,
                notes,
            });
        }
    }

    /// Whether the `direction` half of default-deny is withheld in `namespace` (and says why, once).
    fn withheld(&mut self, namespace: &str, direction: &'static str) -> bool {
        let Some(why) = self.no_deny.get(&(namespace.to_owned(), direction)).cloned() else { return false };
        self.left_out(format!(
            "no default-deny {direction} in namespace {namespace}: {why}, and a default-deny would cut off its \
             observed traffic"
        ));
        true
    }
}

fn edge(client: &Client, call: &Call) -> Edge {
    Edge {
        client: client.name.clone(),
        namespace: client.namespace.clone(),
        server: call.server.clone(),
        server_namespace: call.namespace.clone(),
    }
}

fn workload_notes(workload: &Workload) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("workload".to_owned(), format!("{}/{}", workload.kind, workload.name)),
        ("selector-from".to_owned(), workload.selector_source.clone()),
    ])
}

fn dns_ports() -> BTreeSet<TargetPort> {
    ["TCP", "UDP"].map(|protocol| TargetPort { port: PortRef::Number(53), protocol: protocol.to_owned() }).into()
}

fn host_cidr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}/32"),
        IpAddr::V6(v6) => format!("{v6}/128"),
    }
}
