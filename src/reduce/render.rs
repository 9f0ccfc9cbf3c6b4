//! Renderings of a [`ServiceMap`] other than ClientIntents: the `list` users know from Otterize (docs/design.md §6,
//! byte-for-byte), `json` for scripts, Graphviz `dot` and `mermaid` for pictures. Pure string builders.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::model::{Call, ServiceMap};

/// The "X calls Y" listing:
///
/// ```text
/// cartservice in namespace otterize-ecom-demo calls:
///   - redis-cart
///   - kubernetes in namespace default
///   - api.stripe.com
/// ```
pub fn render_list(map: &ServiceMap) -> String {
    let mut out = String::new();
    for client in &map.clients {
        let _ = writeln!(out, "{} in namespace {} calls:", client.name, client.namespace);
        for call in &client.calls {
            match call.namespace.as_deref() {
                Some(ns) if ns != client.namespace => {
                    let _ = writeln!(out, "  - {} in namespace {ns}", call.server);
                }
                _ => {
                    let _ = writeln!(out, "  - {}", call.server);
                }
            }
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
    #[serde(serialize_with = "serialize_count")]
    count: f64,
}

/// Counts are whole numbers unless they came from `increase()`-style queries; write `17`, not `17.0`.
fn serialize_count<S: serde::Serializer>(count: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if count.fract() == 0.0 && *count >= 0.0 && *count < 9_007_199_254_740_992.0 {
        serializer.serialize_u64(*count as u64)
    } else {
        serializer.serialize_f64(*count)
    }
}

/// A JSON array of edges, pretty-printed, in the map's order.
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
                count: call.count,
            })
        })
        .collect();
    // Serialising borrowed strings and finite floats cannot fail.
    let mut json = serde_json::to_string_pretty(&edges).unwrap_or_else(|e| unreachable!("serde_json: {e}"));
    json.push('\n');
    json
}

/// A node of a graph: a workload in a namespace, or a name outside the cluster (`namespace` `None`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Node<'a> {
    namespace: Option<&'a str>,
    name: &'a str,
}

impl Node<'_> {
    fn id(&self) -> String {
        match self.namespace {
            Some(ns) => format!("{}.{ns}", self.name),
            None => self.name.to_owned(),
        }
    }
}

fn server_node(call: &Call) -> Node<'_> {
    Node { namespace: call.namespace.as_deref(), name: &call.server }
}

/// Every node once, grouped by namespace (`None` first: the outside world), and every edge.
struct Graph<'a> {
    nodes: BTreeMap<Option<&'a str>, Vec<Node<'a>>>,
    edges: Vec<(Node<'a>, Node<'a>)>,
}

fn graph(map: &ServiceMap) -> Graph<'_> {
    let mut nodes: BTreeMap<Option<&str>, Vec<Node<'_>>> = BTreeMap::new();
    let mut edges = Vec::new();
    for client in &map.clients {
        let from = Node { namespace: Some(&client.namespace), name: &client.name };
        nodes.entry(from.namespace).or_default().push(from.clone());
        for call in &client.calls {
            let to = server_node(call);
            nodes.entry(to.namespace).or_default().push(to.clone());
            edges.push((from.clone(), to));
        }
    }
    for members in nodes.values_mut() {
        members.sort();
        members.dedup();
    }
    Graph { nodes, edges }
}

/// Graphviz: one cluster per namespace, names outside the cluster as dashed boxes.
pub fn render_dot(map: &ServiceMap) -> String {
    let Graph { nodes, edges } = graph(map);
    let mut out = String::from("digraph network_map {\n  rankdir=LR;\n  node [shape=ellipse];\n");
    for (index, (namespace, members)) in nodes.iter().enumerate() {
        match namespace {
            Some(ns) => {
                let _ = writeln!(out, "  subgraph cluster_{index} {{\n    label={};", dot_quote(ns));
                for node in members {
                    let _ = writeln!(out, "    {} [label={}];", dot_quote(&node.id()), dot_quote(node.name));
                }
                out.push_str("  }\n");
            }
            None => {
                for node in members {
                    let _ = writeln!(out, "  {} [shape=box, style=dashed];", dot_quote(&node.id()));
                }
            }
        }
    }
    for (from, to) in &edges {
        let _ = writeln!(out, "  {} -> {};", dot_quote(&from.id()), dot_quote(&to.id()));
    }
    out.push_str("}\n");
    out
}

fn dot_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Mermaid flowchart: one subgraph per namespace, names outside the cluster as stadium-shaped nodes.
/// Node ids are generated (`n0`, `n1`…) because Mermaid ids cannot hold dots or most punctuation.
pub fn render_mermaid(map: &ServiceMap) -> String {
    let Graph { nodes, edges } = graph(map);
    let mut ids: BTreeMap<Node<'_>, String> = BTreeMap::new();
    let mut out = String::from("flowchart LR\n");
    for (index, (namespace, members)) in nodes.iter().enumerate() {
        if let Some(ns) = namespace {
            let _ = writeln!(out, "  subgraph ns{index}[{}]", mermaid_quote(ns));
        }
        for node in members {
            let id = format!("n{}", ids.len());
            match namespace {
                Some(_) => {
                    let _ = writeln!(out, "    {id}[{}]", mermaid_quote(node.name));
                }
                None => {
                    let _ = writeln!(out, "  {id}([{}])", mermaid_quote(node.name));
                }
            }
            ids.insert(node.clone(), id);
        }
        if namespace.is_some() {
            out.push_str("  end\n");
        }
    }
    for (from, to) in &edges {
        let _ = writeln!(out, "  {} --> {}", ids[from], ids[to]);
    }
    out
}

fn mermaid_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "#quot;"))
}
