//! Renderings of a [`ServiceMap`] other than ClientIntents: the `list` users know from Otterize (docs/design.md §6,
//! byte-for-byte), `json` for scripts, Graphviz `dot` and `mermaid` for pictures of a [`Graph`]. Pure string
//! builders.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::graph::{Graph, GraphEdge, Node, format_count, weight};
use super::model::{Call, ServiceMap};
use super::time::format_time;

/// The "X calls Y" listing:
///
/// ```text
/// cartservice in namespace otterize-ecom-demo calls:
///   - redis-cart
///   - kubernetes in namespace default
///   - api.stripe.com
/// ```
///
/// With `show_seen`, edges whose source has timestamps end in `(first seen …, last seen …)`.
pub fn render_list(map: &ServiceMap, show_seen: bool) -> String {
    let mut out = String::new();
    for client in &map.clients {
        let _ = writeln!(out, "{} in namespace {} calls:", client.name, client.namespace);
        for call in &client.calls {
            let _ = write!(out, "  - {}", call.server);
            if let Some(ns) = call.namespace.as_deref().filter(|ns| *ns != client.namespace) {
                let _ = write!(out, " in namespace {ns}");
            }
            if let Some(seen) = call.seen.filter(|_| show_seen) {
                let _ = write!(out, " (first seen {}, last seen {})", format_time(seen.first), format_time(seen.last));
            }
            out.push('\n');
        }
    }
    out
}

/// One edge of the `json` output, labelled as the metric (docs/design.md §2) plus the joined kinds and the count.
#[derive(Debug, Serialize)]
struct JsonEdge<'a> {
    client: &'a str,
    namespace: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_kind: Option<&'a str>,
    server: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_kind: Option<&'a str>,
    #[serde(flatten)]
    observed: Observed,
    /// TCP connections per server port (what NetworkPolicies need); absent for edges seen only through DNS.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<JsonPort>,
}

/// Connections of an edge to one server port, as `network_mapper_edge_connections_total` counts them.
#[derive(Debug, Serialize)]
struct JsonPort {
    port: u16,
    #[serde(serialize_with = "serialize_count")]
    connections: f64,
}

/// How often and when an edge was seen, as the JSON outputs write it.
#[derive(Debug, Serialize)]
pub(crate) struct Observed {
    #[serde(serialize_with = "serialize_count")]
    count: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<String>,
}

impl Observed {
    pub(crate) fn of(call: &Call) -> Observed {
        Observed {
            count: call.count,
            first_seen: call.seen.map(|s| format_time(s.first)),
            last_seen: call.seen.map(|s| format_time(s.last)),
        }
    }
}

/// Counts are whole numbers unless they came from `increase()`-style queries; write `17`, not `17.0`.
fn serialize_count<S: serde::Serializer>(count: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if count.fract() == 0.0 && *count >= 0.0 && *count < 9_007_199_254_740_992.0 {
        serializer.serialize_u64(*count as u64)
    } else {
        serializer.serialize_f64(*count)
    }
}

/// A JSON array of edges, pretty-printed, in the map's order (`[]` for an empty map); `netmap-reduce` reads it
/// back as input, with everything the other formats and policies need (kinds, first/last seen, ports).
pub fn render_json(map: &ServiceMap) -> String {
    let edges: Vec<JsonEdge<'_>> = map
        .clients
        .iter()
        .flat_map(|client| {
            client.calls.iter().map(move |call| JsonEdge {
                client: &client.name,
                namespace: &client.namespace,
                client_kind: client.kind.as_deref(),
                server: &call.server,
                server_namespace: call.namespace.as_deref(),
                server_kind: call.kind.as_deref(),
                observed: Observed::of(call),
                ports: call.ports.iter().map(|(&port, &connections)| JsonPort { port, connections }).collect(),
            })
        })
        .collect();
    // Serialising borrowed strings and finite floats cannot fail.
    let mut json = serde_json::to_string_pretty(&edges).unwrap_or_else(|e| unreachable!("serde_json: {e}"));
    json.push('\n');
    json
}

/// Graphviz. Workloads sit in one cluster per namespace with their kind under the name; names outside the
/// cluster are dashed boxes; edges carry their count and a width that grows with it. Grouped by namespace,
/// each node is a namespace and says how many workloads it holds.
pub fn render_dot(graph: &Graph) -> String {
    let mut out = String::from(
        "digraph network_map {\n  graph [rankdir=LR, nodesep=0.2, ranksep=0.9, fontname=\"Helvetica\", fontsize=11];\n  \
         node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", color=\"#5b7bb5\", fontname=\"Helvetica\", \
         fontsize=10];\n  edge [color=\"#44444499\", arrowsize=0.6, fontname=\"Helvetica\", fontsize=8];\n",
    );
    if graph.nodes.iter().any(|node| node.members > 0) {
        // Namespaces call each other in every direction: a layered layout of a dense graph of a dozen nodes is
        // a poster (2940x2133 px for 10 namespaces and 112 lines), a circle is a page (1075x970).
        out.push_str("  graph [layout=circo];\n");
    }
    let mut by_namespace: BTreeMap<Option<&str>, Vec<&Node>> = BTreeMap::new();
    for node in &graph.nodes {
        let grouped = node.members > 0;
        by_namespace.entry(if grouped { None } else { node.namespace.as_deref() }).or_default().push(node);
    }
    for (index, (namespace, members)) in by_namespace.iter().enumerate() {
        let indent = if namespace.is_some() { "    " } else { "  " };
        if let Some(ns) = namespace {
            let _ = writeln!(
                out,
                "  subgraph cluster_{index} {{\n    label={};\n    style=rounded;\n    color=\"#9aa5b1\";",
                dot_quote(ns)
            );
        }
        for node in members {
            let _ = writeln!(out, "{indent}{} [{}];", node.id, dot_node_attributes(node));
        }
        if namespace.is_some() {
            out.push_str("  }\n");
        }
    }
    let max = graph.edges.iter().map(|e| e.count).fold(1.0, f64::max);
    for edge in &graph.edges {
        let label = edge_label(edge);
        let _ = writeln!(
            out,
            "  {} -> {} [label={}, penwidth={}];",
            graph.nodes[edge.from].id,
            graph.nodes[edge.to].id,
            dot_quote(&label),
            weight(edge.count, max)
        );
    }
    out.push_str("}\n");
    out
}

fn dot_node_attributes(node: &Node) -> String {
    if node.members > 0 {
        let label = format!("{}\n{}", node.name, members_text(node));
        return format!("label={}, shape=box3d, fillcolor=\"#fff7e0\"", dot_quote(&label));
    }
    if node.is_external() {
        return format!("label={}, style=\"dashed\", color=\"#888888\"", dot_quote(&node.name));
    }
    let label = match &node.kind {
        Some(kind) => format!("{}\n{kind}", node.name),
        None => node.name.clone(),
    };
    let shape = match node.kind.as_deref() {
        Some("StatefulSet") => ", shape=cylinder",
        Some("Service") => ", shape=hexagon",
        Some("DaemonSet") => ", shape=box3d",
        Some("CronJob" | "Job") => ", shape=component",
        _ => "",
    };
    format!("label={}{shape}", dot_quote(&label))
}

/// `12 workloads`, `1 workload`, `3 names` (outside the cluster).
fn members_text(node: &Node) -> String {
    let what = if node.is_outside_group() { "name" } else { "workload" };
    format!("{} {what}{}", node.members, if node.members == 1 { "" } else { "s" })
}

/// The count, and with grouped nodes how many edges the line stands for.
fn edge_label(edge: &GraphEdge) -> String {
    match edge.edges {
        1 => format_count(edge.count),
        n => format!("{n} edges, {}", format_count(edge.count)),
    }
}

fn dot_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

/// Mermaid flowchart: one subgraph per namespace, names outside the cluster as stadium-shaped nodes, counts on
/// the edges, kinds under the names.
pub fn render_mermaid(graph: &Graph) -> String {
    let mut out = String::from("flowchart LR\n");
    let mut by_namespace: BTreeMap<Option<&str>, Vec<&Node>> = BTreeMap::new();
    for node in &graph.nodes {
        by_namespace.entry(if node.members > 0 { None } else { node.namespace.as_deref() }).or_default().push(node);
    }
    for (index, (namespace, members)) in by_namespace.iter().enumerate() {
        if let Some(ns) = namespace {
            let _ = writeln!(out, "  subgraph ns{index}[{}]", mermaid_quote(ns));
        }
        for node in members {
            let indent = if namespace.is_some() { "    " } else { "  " };
            let text = match (&node.kind, node.members) {
                (_, n) if n > 0 => format!("{}<br/>{}", node.name, members_text(node)),
                (Some(kind), _) => format!("{}<br/><small>{kind}</small>", node.name),
                (None, _) => node.name.clone(),
            };
            if node.is_external() {
                let _ = writeln!(out, "{indent}{}([{}])", node.id, mermaid_quote(&text));
            } else {
                let _ = writeln!(out, "{indent}{}[{}]", node.id, mermaid_quote(&text));
            }
        }
        if namespace.is_some() {
            out.push_str("  end\n");
        }
    }
    for edge in &graph.edges {
        let _ = writeln!(
            out,
            "  {} -->|{}| {}",
            graph.nodes[edge.from].id,
            mermaid_quote(&edge_label(edge)),
            graph.nodes[edge.to].id
        );
    }
    out
}

fn mermaid_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "#quot;"))
}
