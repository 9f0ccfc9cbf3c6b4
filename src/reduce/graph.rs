//! The map as a graph, for the picture formats (`dot`, `mermaid`, `html`): nodes with generated ids (so an
//! outside name `cart.shop` and the workload `cart` in namespace `shop` can never share one), edges with their
//! counts; `--focus` (a workload and its neighbours up to `--depth` hops, either direction) and `--group-by
//! namespace` (one node per namespace, edges summed) so that a 200-service map still reads.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::model::{Client, ServiceMap};
use super::time::Seen;

/// A node: a workload in a namespace, a name outside the cluster (`namespace` `None`), or with `--group-by
/// namespace` a whole namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// `n0`, `n1`…: safe in every output language, unique by construction.
    pub id: String,
    pub name: String,
    pub namespace: Option<String>,
    pub kind: Option<String>,
    /// With `--group-by namespace`: how many workloads the node stands for.
    pub members: usize,
}

impl Node {
    pub fn is_external(&self) -> bool {
        self.namespace.is_none() && self.members == 0
    }

    /// With `--group-by namespace`: the node of all names outside the cluster.
    pub fn is_outside_group(&self) -> bool {
        self.namespace.is_none() && self.members > 0
    }
}

/// An edge between two nodes (indexes into [`Graph::nodes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GraphEdge {
    pub from: usize,
    pub to: usize,
    /// Observations (summed over the edges it stands for).
    pub count: f64,
    /// How many map edges it stands for (1 unless grouped).
    pub edges: usize,
    pub seen: Option<Seen>,
}

/// Nodes sorted by (namespace, name), outside names first; edges in map order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<GraphEdge>,
}

type Key = (Option<String>, String);

fn client_key(client: &Client) -> Key {
    (Some(client.namespace.clone()), client.name.clone())
}

/// The graph of a map.
pub fn build(map: &ServiceMap) -> Graph {
    let mut kinds: BTreeMap<Key, Option<String>> = BTreeMap::new();
    for client in &map.clients {
        kinds.entry(client_key(client)).or_insert_with(|| client.kind.clone());
        for call in &client.calls {
            let known = kinds.entry((call.namespace.clone(), call.server.clone())).or_insert(None);
            if known.is_none() {
                known.clone_from(&call.kind);
            }
        }
    }
    let index: BTreeMap<Key, usize> = kinds.keys().enumerate().map(|(i, k)| (k.clone(), i)).collect();
    let nodes = kinds
        .into_iter()
        .enumerate()
        .map(|(i, ((namespace, name), kind))| Node { id: format!("n{i}"), name, namespace, kind, members: 0 })
        .collect();
    let mut edges = Vec::new();
    for client in &map.clients {
        let from = index[&client_key(client)];
        for call in &client.calls {
            let to = index[&(call.namespace.clone(), call.server.clone())];
            edges.push(GraphEdge { from, to, count: call.count, edges: 1, seen: call.seen });
        }
    }
    Graph { nodes, edges }
}

/// Keeps the workloads named `focus` (`name` in any namespace, or `name.namespace`) and everything within
/// `depth` hops of them, calls followed in either direction. Errors when no workload has that name.
pub fn focus(map: ServiceMap, focus: &str, depth: usize) -> Result<ServiceMap, String> {
    let graph = build(&map);
    let starts: Vec<usize> = (0..graph.nodes.len()).filter(|&i| matches(&graph.nodes[i], focus)).collect();
    if starts.is_empty() {
        return Err(format!(
            "--focus {focus}: no workload or server of that name in the map (after the filters); give `name` or \
             `name.namespace` as the list output writes them"
        ));
    }
    let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); graph.nodes.len()];
    for edge in &graph.edges {
        neighbours[edge.from].push(edge.to);
        neighbours[edge.to].push(edge.from);
    }
    let mut distance: Vec<Option<usize>> = vec![None; graph.nodes.len()];
    let mut queue: VecDeque<usize> = starts.iter().copied().collect();
    for &start in &starts {
        distance[start] = Some(0);
    }
    while let Some(node) = queue.pop_front() {
        let next = distance[node].unwrap_or(0) + 1;
        if next > depth {
            continue;
        }
        for &other in &neighbours[node] {
            if distance[other].is_none() {
                distance[other] = Some(next);
                queue.push_back(other);
            }
        }
    }
    let kept: BTreeSet<Key> = (0..graph.nodes.len())
        .filter(|&i| distance[i].is_some())
        .map(|i| (graph.nodes[i].namespace.clone(), graph.nodes[i].name.clone()))
        .collect();
    let clients = map
        .clients
        .into_iter()
        .filter(|client| kept.contains(&client_key(client)))
        .filter_map(|mut client| {
            client.calls.retain(|call| kept.contains(&(call.namespace.clone(), call.server.clone())));
            (!client.calls.is_empty()).then_some(client)
        })
        .collect();
    Ok(ServiceMap { clients })
}

fn matches(node: &Node, pattern: &str) -> bool {
    node.name == pattern
        || node.namespace.as_deref().is_some_and(|ns| {
            pattern.strip_prefix(node.name.as_str()).and_then(|rest| rest.strip_prefix('.')) == Some(ns)
        })
}

/// Name of the node that stands for every name outside the cluster when grouping by namespace.
pub const OUTSIDE: &str = "outside the cluster";

/// One node per namespace (and one for all names outside the cluster); edges between namespaces summed; calls
/// inside a namespace become a loop on its node.
pub fn group_by_namespace(graph: &Graph) -> Graph {
    let group_of = |node: &Node| node.namespace.clone().unwrap_or_else(|| OUTSIDE.to_owned());
    let mut members: BTreeMap<String, usize> = BTreeMap::new();
    for node in &graph.nodes {
        *members.entry(group_of(node)).or_insert(0) += 1;
    }
    let index: BTreeMap<&str, usize> = members.keys().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let mut summed: BTreeMap<(usize, usize), GraphEdge> = BTreeMap::new();
    for edge in &graph.edges {
        let from = index[group_of(&graph.nodes[edge.from]).as_str()];
        let to = index[group_of(&graph.nodes[edge.to]).as_str()];
        summed
            .entry((from, to))
            .and_modify(|e| {
                e.count += edge.count;
                e.edges += 1;
                e.seen = match (e.seen, edge.seen) {
                    (Some(a), Some(b)) => Some(a.merge(b)),
                    (a, b) => a.or(b),
                };
            })
            .or_insert(GraphEdge { from, to, ..edge.clone() });
    }
    let nodes = members
        .iter()
        .enumerate()
        .map(|(i, (name, &count))| Node {
            id: format!("n{i}"),
            name: name.clone(),
            namespace: (name != OUTSIDE).then(|| name.clone()),
            kind: Some(if name == OUTSIDE { "external names" } else { "Namespace" }.to_owned()),
            members: count,
        })
        .collect();
    Graph { nodes, edges: summed.into_values().collect() }
}

/// Counts as written on edges: whole numbers without `.0`, `1.2k`/`3.4M` above ten thousand.
pub fn format_count(count: f64) -> String {
    if count >= 1e6 {
        format!("{:.1}M", count / 1e6)
    } else if count >= 1e4 {
        format!("{:.1}k", count / 1e3)
    } else if count.fract() == 0.0 {
        format!("{count:.0}")
    } else {
        format!("{count:.2}")
    }
}

/// Line width for an edge: 1 for a single observation, growing with the logarithm of the count up to 6, so a
/// hub's million observations do not drown everything else.
pub fn weight(count: f64, max: f64) -> f64 {
    if max <= 1.0 {
        return 1.0;
    }
    let ratio = (count.max(1.0)).ln() / max.ln();
    ((1.0 + 5.0 * ratio) * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reduce::model::{Edge, Filter, Snapshot};

    fn map(edges: &[(&str, &str, &str, Option<&str>, f64)]) -> ServiceMap {
        let mut snapshot = Snapshot::default();
        for (client, ns, server, server_ns, count) in edges {
            let edge = Edge {
                client: (*client).into(),
                namespace: (*ns).into(),
                server: (*server).into(),
                server_namespace: server_ns.map(Into::into),
            };
            snapshot.add_edge(edge, *count);
        }
        snapshot.into_map(&Filter::default())
    }

    #[test]
    fn an_outside_name_with_dots_never_shares_a_node_with_a_workload() {
        let graph = build(&map(&[("web", "shop", "cart.shop", None, 1.0), ("web", "shop", "cart", Some("shop"), 1.0)]));
        assert_eq!(graph.nodes.len(), 3);
        let ids: BTreeSet<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids.len(), 3);
        assert_ne!(graph.edges[0].to, graph.edges[1].to);
    }

    #[test]
    fn focus_keeps_neighbours_up_to_the_depth_in_both_directions() {
        let chain = [
            ("a", "s", "b", Some("s"), 1.0),
            ("b", "s", "c", Some("s"), 1.0),
            ("c", "s", "d", Some("s"), 1.0),
            ("x", "s", "b", Some("s"), 1.0),
        ];
        let one = focus(map(&chain), "b", 1).unwrap();
        let names: Vec<(&str, usize)> = one.clients.iter().map(|c| (c.name.as_str(), c.calls.len())).collect();
        assert_eq!(names, [("a", 1), ("b", 1), ("x", 1)]);
        let two = focus(map(&chain), "b.s", 2).unwrap();
        assert_eq!(two.clients.len(), 4);
        assert!(focus(map(&chain), "nope", 1).unwrap_err().contains("--focus nope"));
    }

    #[test]
    fn grouping_sums_edges_between_namespaces() {
        let graph = build(&map(&[
            ("a", "s", "b", Some("t"), 2.0),
            ("c", "s", "d", Some("t"), 3.0),
            ("a", "s", "c", Some("s"), 1.0),
            ("a", "s", "x.com", None, 1.0),
        ]));
        let grouped = group_by_namespace(&graph);
        let names: Vec<&str> = grouped.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["outside the cluster", "s", "t"]);
        let s_to_t = grouped.edges.iter().find(|e| e.from == 1 && e.to == 2).unwrap();
        assert_eq!((s_to_t.count, s_to_t.edges), (5.0, 2));
        assert_eq!(grouped.edges.len(), 3);
    }

    #[test]
    fn counts_and_weights_read_at_a_glance() {
        assert_eq!(format_count(17.0), "17");
        assert_eq!(format_count(12_345.0), "12.3k");
        assert_eq!(weight(1.0, 1000.0), 1.0);
        assert_eq!(weight(1000.0, 1000.0), 6.0);
    }
}
