//! The traffic the agents of the API-load benchmark map: DNS answers to the agent's node's pods for servers of
//! every shape whose name the agent must fetch to know (Deployments and StatefulSets behind Services, per-pod
//! names of headless Services, pods no Service selects, by their pod DNS name), and the edges that must come of
//! them, from the scale cluster's own account of each pod's workload.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use testkit::capfile::Pcap;
use testkit::packets::{self as synth, Record, dlt};
use testkit::scale::{ScaleCluster, ScalePod, Workload};

/// Servers asked for by Service name, by per-pod name, and by pod name.
const SERVICES: usize = 40;
const PER_POD_NAMES: usize = 6;
const POD_NAMES: usize = 6;
/// Lookups per client pod (round robin over the servers).
const LOOKUPS_PER_CLIENT: usize = 12;

/// A name to look up and the workload it must resolve to.
struct Server {
    name: String,
    workload: Workload,
}

/// The expected `network_mapper_edge_total` label sets (without values), with their counts.
pub type Expected = BTreeMap<String, usize>;

/// Writes the capture to `path`; returns the edges it must produce.
pub fn write(cluster: &ScaleCluster, node: &str, path: &Path) -> Expected {
    let servers = servers(cluster);
    let clients: Vec<&ScalePod> =
        cluster.pods_on(node).filter(|p| !p.host_network && p.workload.name != "coredns").collect();
    let mut pcap = Pcap::create(path, dlt::EN10MB).expect("create the capture");
    let dns: SocketAddr = "10.96.0.10:53".parse().unwrap();
    let mut at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64;
    let mut expected = Expected::new();
    let mut lookup = 0usize;
    for (c, client) in clients.iter().enumerate() {
        for k in 0..LOOKUPS_PER_CLIENT {
            let server = &servers[(c * LOOKUPS_PER_CLIENT + k) % servers.len()];
            lookup += 1;
            let client_addr = SocketAddr::new(client.ip.parse().unwrap(), 30_000 + (lookup % 30_000) as u16);
            let answer = Record::A(&server.name, Ipv4Addr::new(10, 96, 200, 1));
            let payload = synth::response(lookup as u16, &server.name, &[answer]);
            pcap.write(at, &synth::ethernet_frame(&[], &synth::udp_packet(dns, client_addr, &payload)));
            at += 100;
            *expected.entry(edge(&client.workload, &server.workload)).or_insert(0) += 1;
        }
    }
    pcap.finish().expect("write the capture");
    expected
}

/// `network_mapper_edge_total{…}` as the exporter writes it.
fn edge(client: &Workload, server: &Workload) -> String {
    format!(
        "network_mapper_edge_total{{client=\"{}\",namespace=\"{}\",server=\"{}\",server_namespace=\"{}\"}}",
        client.name.replace('.', "_"),
        client.namespace,
        server.name.replace('.', "_"),
        server.namespace
    )
}

/// Every shape of server, spread over the cluster.
fn servers(cluster: &ScaleCluster) -> Vec<Server> {
    let slices = slices_by_service(cluster);
    let pod = |ns: &str, name: &str| cluster.pods().iter().find(|p| p.namespace == ns && p.name == name);
    let mut servers = Vec::new();
    let backed: Vec<_> = slices.iter().filter(|(_, eps)| !eps.is_empty()).collect();
    let step = (backed.len() / SERVICES).max(1);
    for ((ns, service), endpoints) in backed.iter().step_by(step).take(SERVICES) {
        let Some(backing) = pod(ns, &endpoints[0].0).filter(|p| !p.host_network) else { continue };
        let name = format!("{service}.{ns}.svc.cluster.local");
        servers.push(Server { name, workload: backing.workload.clone() });
    }
    let headless = backed.iter().flat_map(|((ns, service), eps)| {
        eps.iter().filter_map(move |(pod, host)| Some((ns.clone(), service.clone(), pod.clone(), host.clone()?)))
    });
    for (ns, service, pod_name, host) in headless.take(PER_POD_NAMES) {
        let Some(backing) = pod(&ns, &pod_name) else { continue };
        servers.push(Server {
            name: format!("{host}.{service}.{ns}.svc.cluster.local"),
            workload: backing.workload.clone(),
        });
    }
    let unselected = cluster.pods().iter().filter(|p| !p.in_service && !p.host_network);
    for pod in unselected.step_by(97).take(POD_NAMES) {
        let name = format!("{}.{}.pod.cluster.local", pod.ip.replace('.', "-"), pod.namespace);
        servers.push(Server { name, workload: pod.workload.clone() });
    }
    servers
}

/// A Service's endpoints: (pod name, hostname), by (namespace, Service).
type Endpoints = BTreeMap<(String, String), Vec<(String, Option<String>)>>;

/// Every Service's endpoints, from the EndpointSlices the cluster serves.
fn slices_by_service(cluster: &ScaleCluster) -> Endpoints {
    let mut by_service = Endpoints::new();
    for slice in cluster.objects().into_iter().filter(|o| o["kind"] == "EndpointSlice") {
        let ns = slice["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
        let service = slice["metadata"]["labels"]["kubernetes.io/service-name"].as_str().unwrap_or_default();
        let endpoints = slice["endpoints"].as_array().cloned().unwrap_or_default();
        let entry = by_service.entry((ns, service.to_owned())).or_default();
        for endpoint in endpoints.iter().filter(|e| e["targetRef"]["kind"] == "Pod") {
            let name = endpoint["targetRef"]["name"].as_str().unwrap_or_default().to_owned();
            entry.push((name, endpoint["hostname"].as_str().map(str::to_owned)));
        }
    }
    by_service
}

/// The agent's edges without their values, with their values: `label set → count`.
pub fn counted(edges: &[String]) -> Expected {
    let split = |line: &String| -> Option<(String, usize)> {
        let (labels, value) = line.rsplit_once(' ')?;
        Some((labels.to_owned(), value.parse::<f64>().ok()? as usize))
    };
    edges.iter().filter_map(split).collect()
}
