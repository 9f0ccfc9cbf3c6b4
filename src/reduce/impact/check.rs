//! The observed map against a policy set: for every edge, on every port it was seen on, whether the set lets it
//! through. Edges seen only through DNS are checked on the target ports of the Services in front of the
//! server, else on an unknown port. Used by `netmap-reduce impact` and by the generator's self-check, so both
//! answer the same question the same way.

use std::collections::BTreeSet;

use super::evaluate::{Endpoint, Evaluator, Labels, Pod, Reach};
use super::ports::PortSet;
use super::set::Policy;
use crate::mesh;
use crate::reduce::model::{Call, Client, Edge, EdgePorts, ServiceMap};
use crate::reduce::policy::inventory::{ClusterInfo, PortRef, Workload};

/// One edge on one port, and what the policy set does to it.
#[derive(Debug, Clone)]
pub struct Checked<'m> {
    pub client: &'m Client,
    pub call: &'m Call,
    /// `None` when the port is not known (seen only through DNS, no Service names one).
    pub port: Option<u16>,
    pub verdict: Verdict,
}

/// The answer for one edge and port.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allowed,
    /// Denied at these sides (egress of the client, ingress of the server).
    Denied(Vec<DeniedSide>),
    /// It depends on what the inventory does not say (why).
    Unknown(String),
}

/// A direction that does not let the edge through: whose, and the policies that isolate it there.
#[derive(Debug, Clone, PartialEq)]
pub struct DeniedSide {
    /// `egress` or `ingress`.
    pub direction: &'static str,
    /// `namespace/workload` of the pods isolated.
    pub workload: String,
    /// `namespace/name` of every policy that isolates them in that direction.
    pub isolated_by: Vec<String>,
}

/// Checks every edge of `map` against `policies`.
pub fn check_map<'m>(
    map: &'m ServiceMap,
    ports: &EdgePorts,
    cluster: &ClusterInfo,
    policies: &[Policy],
) -> Vec<Checked<'m>> {
    let evaluator = Evaluator { policies, namespaces: &cluster.namespaces };
    let mut out = Vec::new();
    for client in &map.clients {
        for call in &client.calls {
            let edge = Edge {
                client: client.name.clone(),
                namespace: client.namespace.clone(),
                server: call.server.clone(),
                server_namespace: call.namespace.clone(),
            };
            for (port, verdict) in check_edge(&evaluator, cluster, &edge, call, ports) {
                out.push(Checked { client, call, port, verdict });
            }
        }
    }
    out
}

/// The pods of a workload: one per distinct label set; unknown labels when the inventory lacks it.
fn pods<'c>(namespace: &'c str, workload: Option<&'c Workload>) -> Vec<Pod<'c>> {
    let Some(workload) = workload else { return vec![Pod { namespace, labels: None, named_ports: None }] };
    let sets: BTreeSet<&Labels> = workload.pod_labels().iter().collect();
    sets.into_iter()
        .map(|labels| Pod { namespace, labels: Some(labels), named_ports: Some(&workload.named_ports) })
        .collect()
}

fn check_edge(
    evaluator: &Evaluator<'_>,
    cluster: &ClusterInfo,
    edge: &Edge,
    call: &Call,
    ports: &EdgePorts,
) -> Vec<(Option<u16>, Verdict)> {
    let client_workload = cluster.workload(&edge.namespace, &edge.client);
    let clients = pods(&edge.namespace, client_workload);
    let server_workload = edge.server_namespace.as_deref().and_then(|ns| cluster.workload(ns, &edge.server));
    let servers: Vec<Endpoint<'_>> = match (&edge.server_namespace, server_workload) {
        _ if call.is_api_server() && cluster.api_server.is_empty() => {
            vec![Endpoint::Address { address: None, api_server: true }]
        }
        _ if call.is_api_server() => {
            cluster.api_server.iter().map(|ip| Endpoint::Address { address: Some(*ip), api_server: true }).collect()
        }
        (None, _) => vec![Endpoint::Outside(&edge.server)],
        (Some(_), Some(w)) if w.host_network => vec![Endpoint::Address { address: None, api_server: false }],
        (Some(ns), w) => pods(ns, w).into_iter().map(Endpoint::Pod).collect(),
    };
    let reaches: Vec<Reach> = clients.iter().flat_map(|c| servers.iter().map(|s| evaluator.reach(*c, *s))).collect();
    let unknowns = unknown_facts(cluster, edge, call, client_workload.is_some(), server_workload);
    // Between pods of one mesh that tunnels (ambient's HBONE, Linkerd's 4143) the wire carries the call on the
    // mesh's port, whatever the target port it is reported on (docs/policies.md, "Service meshes").
    let tunnel = mesh::tunnel_port(server_workload.and_then(|w| w.mesh), client_workload.and_then(|w| w.mesh));
    let mut out = Vec::new();
    for port in ports_to_check(cluster, edge, call, ports, server_workload) {
        let on_the_wire = tunnel.map_or(port, Some);
        let verdicts = reaches.iter().map(|reach| verdict(reach, on_the_wire, evaluator, edge, &unknowns));
        out.push((port, worst(verdicts)));
    }
    out
}

/// Observed ports; for an edge seen only through DNS, the Services' target ports (named ones resolved on the
/// server's pods), else the API server's ports, else an unknown port.
fn ports_to_check(
    cluster: &ClusterInfo,
    edge: &Edge,
    call: &Call,
    ports: &EdgePorts,
    server: Option<&Workload>,
) -> Vec<Option<u16>> {
    if let Some(observed) = ports.get(edge) {
        return observed.iter().copied().map(Some).collect();
    }
    let mut found = BTreeSet::new();
    if call.is_api_server() {
        found.extend(cluster.api_server_ports.iter().copied().map(Some));
    } else if let Some(server) = server {
        for service in cluster.services_of(server) {
            for (_, target) in service.ports.iter().filter(|(_, t)| t.protocol == "TCP") {
                found.extend(match &target.port {
                    PortRef::Number(n) => vec![Some(*n)],
                    PortRef::Name(name) => match server.named_ports.get(name) {
                        Some(numbers) => numbers.iter().filter(|(_, p)| p == "TCP").map(|(n, _)| Some(*n)).collect(),
                        None => vec![None],
                    },
                });
            }
        }
    }
    if found.is_empty() {
        found.insert(None);
    }
    found.into_iter().collect()
}

fn verdict(reach: &Reach, port: Option<u16>, evaluator: &Evaluator<'_>, edge: &Edge, unknowns: &[String]) -> Verdict {
    let (sure, possible) = (reach.sure(), reach.possible());
    let (allowed, denied) = match port {
        Some(p) => (sure.contains(p), !possible.contains(p)),
        None => (sure.is_all(), possible.is_empty()),
    };
    if allowed {
        return Verdict::Allowed;
    }
    if denied {
        return Verdict::Denied(denied_sides(reach, port, evaluator, edge));
    }
    let mut facts = unknowns.to_vec();
    if port.is_none() {
        facts.push(format!("the port is unknown (seen only through DNS) and only {sure} is surely allowed"));
    }
    Verdict::Unknown(facts.join("; "))
}

fn denied_sides(reach: &Reach, port: Option<u16>, evaluator: &Evaluator<'_>, edge: &Edge) -> Vec<DeniedSide> {
    let denies = |possible: &PortSet| port.map_or(possible.is_empty(), |p| !possible.contains(p));
    let names = |indexes: &[usize]| {
        let mut names: Vec<String> = indexes.iter().map(|&i| evaluator.policies[i].origin.to_string()).collect();
        names.sort();
        names.dedup();
        names
    };
    let mut sides = Vec::new();
    if denies(&reach.egress.possible) {
        let workload = format!("{}/{}", edge.namespace, edge.client);
        sides.push(DeniedSide { direction: "egress", workload, isolated_by: names(&reach.egress.isolated_by) });
    }
    if denies(&reach.ingress.possible) {
        let workload = format!("{}/{}", edge.server_namespace.as_deref().unwrap_or_default(), edge.server);
        sides.push(DeniedSide { direction: "ingress", workload, isolated_by: names(&reach.ingress.isolated_by) });
    }
    sides
}

/// Denied beats unknown beats allowed: a workload is as reachable as its least reachable pod.
fn worst(verdicts: impl Iterator<Item = Verdict>) -> Verdict {
    let mut result = Verdict::Allowed;
    for verdict in verdicts {
        result = match (&result, &verdict) {
            (Verdict::Denied(_), _) => result,
            (_, Verdict::Denied(_)) | (Verdict::Allowed, Verdict::Unknown(_)) => verdict,
            _ => result,
        };
    }
    result
}

/// What the inventory does not say about this edge, for an unknown verdict.
fn unknown_facts(
    cluster: &ClusterInfo,
    edge: &Edge,
    call: &Call,
    client_known: bool,
    server: Option<&Workload>,
) -> Vec<String> {
    let mut facts = Vec::new();
    if !client_known {
        facts.push(format!("the inventory has no workload {}/{}", edge.namespace, edge.client));
    }
    match &edge.server_namespace {
        _ if call.is_api_server() && cluster.api_server.is_empty() => facts.push(
            "the API server's addresses are unknown (add the endpointslices of namespace default to the inventory)"
                .to_owned(),
        ),
        None => facts.push(format!("the addresses of {} are not known here", edge.server)),
        Some(ns) if call.is_service() && !call.is_api_server() => {
            facts.push(format!("{ns}/{} is a Service the exporter found no backing pods for", edge.server));
        }
        Some(ns) if server.is_none() && !call.is_api_server() => {
            facts.push(format!("the inventory has no workload {ns}/{}", edge.server));
        }
        Some(_) if server.is_some_and(|w| w.host_network) => {
            facts.push(format!("{} runs with hostNetwork (its addresses are the nodes')", edge.server));
        }
        _ => {}
    }
    let namespaces: BTreeSet<&str> =
        [Some(edge.namespace.as_str()), edge.server_namespace.as_deref()].into_iter().flatten().collect();
    let unread: Vec<&str> = namespaces.into_iter().filter(|ns| !cluster.namespaces.contains_key(*ns)).collect();
    if !unread.is_empty() {
        facts.push(format!(
            "the labels of namespace {} are not in the inventory (add `namespaces` to the kubectl get)",
            unread.join(", ")
        ));
    }
    facts
}
