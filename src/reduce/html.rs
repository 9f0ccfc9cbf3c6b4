//! `--format html`: one self-contained page with the interactive map: search, click to focus a workload and its
//! neighbours, group by namespace, edge counts. A small map is a layered graph; a large one a ring of every
//! workload's name with the calls inside it, or one node per namespace (`html/app.js` says why). The graph
//! library (cytoscape with the dagre layered layout, MIT) is compiled in from `src/reduce/html/vendor/`, pinned
//! and put there by `scripts/vendor-html.sh`; its licences are embedded in the page. The page's
//! Content-Security-Policy allows no request at all, so opening it never touches the network.

use serde::Serialize;

use super::GraphRequest;
use super::graph::{Graph, format_count, weight};
use super::time::format_time;

const PAGE: &str = include_str!("html/page.html");
const APP: &str = include_str!("html/app.js");
const CYTOSCAPE: &str = include_str!("html/vendor/cytoscape.min.js");
const CYTOSCAPE_DAGRE: &str = include_str!("html/vendor/cytoscape-dagre.min.js");
const LICENCES: [(&str, &str); 4] = [
    ("cytoscape", include_str!("html/vendor/cytoscape.LICENSE")),
    ("cytoscape-dagre", include_str!("html/vendor/cytoscape-dagre.LICENSE")),
    ("dagre (bundled in cytoscape-dagre)", include_str!("html/vendor/dagre.LICENSE")),
    ("graphlib (bundled in cytoscape-dagre)", include_str!("html/vendor/graphlib.LICENSE")),
];
const VERSIONS: &str = include_str!("html/vendor/VERSIONS");

#[derive(Serialize)]
struct PageData<'a> {
    grouped: bool,
    nodes: Vec<PageNode<'a>>,
    edges: Vec<PageEdge>,
}

#[derive(Serialize)]
struct PageNode<'a> {
    id: &'a str,
    name: &'a str,
    namespace: Option<&'a str>,
    kind: Option<&'a str>,
    external: bool,
}

#[derive(Serialize)]
struct PageEdge {
    from: String,
    to: String,
    count: f64,
    label: String,
    width: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<String>,
}

/// The page for `graph` (ungrouped: grouping is a switch in the page; `--group-by namespace` turns it on).
pub fn render_html(graph: &Graph, request: &GraphRequest) -> String {
    let max = graph.edges.iter().map(|e| e.count).fold(1.0, f64::max);
    let data = PageData {
        grouped: request.group_by_namespace,
        nodes: graph
            .nodes
            .iter()
            .map(|n| PageNode {
                id: &n.id,
                name: &n.name,
                namespace: n.namespace.as_deref(),
                kind: n.kind.as_deref(),
                external: n.is_external(),
            })
            .collect(),
        edges: graph
            .edges
            .iter()
            .map(|e| PageEdge {
                from: graph.nodes[e.from].id.clone(),
                to: graph.nodes[e.to].id.clone(),
                count: e.count,
                label: format_count(e.count),
                width: weight(e.count, max),
                first_seen: e.seen.map(|s| format_time(s.first)),
                last_seen: e.seen.map(|s| format_time(s.last)),
            })
            .collect(),
    };
    // Serialising plain structs cannot fail; `</` is escaped so no name can close the script element.
    let json = serde_json::to_string(&data).unwrap_or_else(|e| unreachable!("serde_json: {e}")).replace("</", "<\\/");
    let title = match &request.focus {
        Some(focus) => format!("{} nodes around {}", graph.nodes.len(), html_escape(focus)),
        None => format!("{} nodes, {} edges", graph.nodes.len(), graph.edges.len()),
    };
    // The libraries go in last, so that their text is never searched for the placeholders.
    PAGE.replace("@@TITLE@@", &title)
        .replace("@@DATA@@", &json)
        .replace("@@APP@@", APP)
        .replace("</body>", &format!("{}</body>", licence_comment()))
        .replacen("@@CYTOSCAPE_DAGRE@@", CYTOSCAPE_DAGRE, 1)
        .replacen("@@CYTOSCAPE@@", CYTOSCAPE, 1)
}

/// The vendored libraries' licences, in an HTML comment at the end of the page.
fn licence_comment() -> String {
    let mut text = format!("<!--\nThird-party software in this page.\n{VERSIONS}");
    for (name, licence) in LICENCES {
        text.push_str(&format!("\n== {name} ==\n{}", licence.replace("--", "- -")));
    }
    text.push_str("-->\n");
    text
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reduce::graph::build;
    use crate::reduce::model::{Edge, Filter, Snapshot};

    #[test]
    fn the_page_is_self_contained_and_names_cannot_break_out_of_the_data() {
        let mut snapshot = Snapshot::default();
        let edge = Edge {
            client: "web".into(),
            namespace: "shop".into(),
            server: "x</script><script>alert(1)</script>.com".into(),
            server_namespace: None,
        };
        snapshot.add_edge(edge, 3.0);
        let page = render_html(&build(&snapshot.into_map(&Filter::default())), &GraphRequest::default());
        assert_eq!(page.matches("</script>").count(), 4, "only the page's own script elements close");
        assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
        assert!(page.contains("Content-Security-Policy") && page.contains("default-src 'none'"));
        assert!(page.contains("== cytoscape ==") && page.contains("Permission is hereby granted"));
    }
}
