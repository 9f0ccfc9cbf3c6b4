//! Shared by the reducer's graph and html tests: a generated 200-service map.

use std::fmt::Write as _;

const NAMESPACES: [&str; 10] =
    ["shop", "payments", "search", "identity", "catalog", "shipping", "ads", "ml", "data", "platform"];
const ROLES: [&str; 20] = [
    "api",
    "worker",
    "db",
    "cache",
    "gateway",
    "frontend",
    "scheduler",
    "indexer",
    "exporter",
    "notifier",
    "reader",
    "writer",
    "auth",
    "billing",
    "ledger",
    "queue",
    "router",
    "store",
    "sync",
    "web",
];
/// Distinct edges in the generated map.
pub const EDGES: usize = 861;

/// The generated map as an exposition: deterministic (a fixed linear congruential sequence), mostly calls inside
/// a namespace, some across, a few names outside the cluster, and every workload calling `kubernetes`.
pub fn generated_map() -> String {
    let workloads: Vec<(String, &str)> =
        NAMESPACES.iter().flat_map(|ns| ROLES.iter().map(move |role| (format!("{ns}-{role}"), *ns))).collect();
    let mut seed: u64 = 0x5eed;
    let mut next = |n: usize| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n
    };
    let mut edges = std::collections::BTreeSet::new();
    for (name, ns) in &workloads {
        edges.insert((name.clone(), ns.to_string(), "kubernetes".to_owned(), Some("default".to_owned())));
    }
    while edges.len() < EDGES {
        let (client, ns) = &workloads[next(workloads.len())];
        let edge = match next(10) {
            0..=5 => {
                let same: Vec<&(String, &str)> = workloads.iter().filter(|(_, n)| n == ns).collect();
                let (server, server_ns) = same[next(same.len())];
                (client.clone(), ns.to_string(), server.clone(), Some(server_ns.to_string()))
            }
            6..=8 => {
                let (server, server_ns) = &workloads[next(workloads.len())];
                (client.clone(), ns.to_string(), server.clone(), Some(server_ns.to_string()))
            }
            _ => (client.clone(), ns.to_string(), format!("api.vendor{}.example.com", next(6)), None),
        };
        if edge.0 != edge.2 {
            edges.insert(edge);
        }
    }
    let mut text = String::from("# TYPE network_mapper_edge counter\n");
    for (i, (client, ns, server, server_ns)) in edges.iter().enumerate() {
        let server_ns = server_ns.as_ref().map(|s| format!(",server_namespace=\"{s}\"")).unwrap_or_default();
        let count = 1 + (i * 7919) % 500;
        let _ = writeln!(
            text,
            "network_mapper_edge_total{{client=\"{client}\",namespace=\"{ns}\",server=\"{server}\"{server_ns}}} {count}"
        );
    }
    text.push_str("# TYPE network_mapper_workload info\n");
    for (i, (name, ns)) in workloads.iter().enumerate() {
        let kind = ["Deployment", "Deployment", "StatefulSet", "Deployment", "DaemonSet"][i % 5];
        let _ =
            writeln!(text, "network_mapper_workload_info{{workload=\"{name}\",namespace=\"{ns}\",kind=\"{kind}\"}} 1");
    }
    text.push_str(
        "network_mapper_workload_info{workload=\"kubernetes\",namespace=\"default\",kind=\"Service\"} 1\n# EOF\n",
    );
    text
}
