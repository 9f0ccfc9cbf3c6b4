//! Declared edges: read the ClientIntents a team has committed (v1alpha2/v1alpha3/v1beta1 `spec.service` +
//! `calls`, or v2alpha1/v2beta1 `spec.workload` + `targets`; one or many documents per file, `List`s, whole
//! directories) and write Prometheus recording rules with one static `network_mapper:edge:declared` series per
//! declared edge, labelled exactly as `network_mapper_edge_total` (docs/design.md §2). An alert can then say "this edge
//! is not in your intents":
//!
//! ```promql
//! network_mapper:edge:present unless on(client, namespace, server, server_namespace) network_mapper:edge:declared
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use super::error::Result;
use super::intents::{API_GROUP, ClientIntentsV1, ClientIntentsV2, KIND};
use super::manifests;
use super::model::{Edge, LabelSet, edge_from_labels};
use super::model::{Filter, ServiceMap};
use super::yaml::to_yaml;
use super::{Outcome, write_out};
use std::io::Write;

/// The recorded series.
pub const DECLARED_METRIC: &str = "network_mapper:edge:declared";
/// The rule group that holds them.
pub const RULE_GROUP: &str = "network-mapper-declared-edges";

/// What the intents declare.
#[derive(Debug, Default, PartialEq)]
pub struct DeclaredEdges {
    pub edges: BTreeSet<Edge>,
    /// Things the user should know that do not stop the run (wildcard domains, targets that are not network
    /// edges we can observe).
    pub warnings: Vec<String>,
}

/// Reads every ClientIntents in `paths` (files, or directories searched recursively for `.yaml`, `.yml` and
/// `.json`, in name order).
pub fn read_declared(paths: &[PathBuf]) -> Result<DeclaredEdges> {
    let mut declared = DeclaredEdges::default();
    manifests::visit_objects(paths, &mut |_, object| add_object(object, &mut declared))?;
    if declared.edges.is_empty() {
        // Still a valid rule file (every edge is then undeclared), but most likely the wrong path.
        declared.warnings.push("no declared edges found: the rule file has no rules".to_owned());
    }
    Ok(declared)
}

/// Parses one file's YAML (or JSON) documents into `declared`.
pub fn parse_intents_text(name: &str, text: &str, declared: &mut DeclaredEdges) -> Result<()> {
    manifests::visit_text(name, text, &mut |object| add_object(object, declared))
}

/// Manifest directories hold other objects too; they declare nothing.
fn add_object(value: &serde_yaml::Value, declared: &mut DeclaredEdges) -> Result<(), String> {
    match value.get("kind").and_then(|k| k.as_str()) {
        Some(KIND) => add_client_intents(value, declared),
        _ => Ok(()),
    }
}

fn add_client_intents(value: &serde_yaml::Value, declared: &mut DeclaredEdges) -> Result<(), String> {
    let api_version = value.get("apiVersion").and_then(|v| v.as_str()).unwrap_or_default();
    let version = api_version.strip_prefix(API_GROUP).and_then(|v| v.strip_prefix('/')).unwrap_or_default();
    match version {
        "v2alpha1" | "v2beta1" => {
            let intents: ClientIntentsV2 = serde_yaml::from_value(value.clone()).map_err(|e| e.to_string())?;
            let namespace = namespace_of(&intents.metadata.namespace, &intents.metadata.name)?;
            add_v2(&intents, namespace, declared)
        }
        "v1alpha2" | "v1alpha3" | "v1beta1" => {
            let intents: ClientIntentsV1 = serde_yaml::from_value(value.clone()).map_err(|e| e.to_string())?;
            let namespace = namespace_of(&intents.metadata.namespace, &intents.metadata.name)?;
            add_v1(&intents, namespace, declared)
        }
        _ => Err(format!(
            "ClientIntents with apiVersion {api_version:?}; expected {API_GROUP}/v1alpha2, v1alpha3, v1beta1, \
             v2alpha1 or v2beta1"
        )),
    }
}

fn namespace_of<'a>(namespace: &'a Option<String>, name: &str) -> Result<&'a str, String> {
    namespace.as_deref().filter(|ns| !ns.is_empty()).ok_or_else(|| {
        format!("ClientIntents {name:?} has no metadata.namespace, and the client's namespace is part of every edge")
    })
}

fn add_v2(intents: &ClientIntentsV2, namespace: &str, declared: &mut DeclaredEdges) -> Result<(), String> {
    let client = &intents.spec.workload.name;
    for target in &intents.spec.targets {
        let named = target.kubernetes.as_ref().map(|k| &k.name).or(target.service.as_ref().map(|s| &s.name));
        if let Some(name) = named.or(target.kafka.as_ref().map(|k| &k.name)) {
            add_in_cluster(client, namespace, name, declared)?;
        } else if let Some(internet) = &target.internet {
            for domain in &internet.domains {
                add_domain(client, namespace, domain, declared)?;
            }
        }
    }
    Ok(())
}

fn add_v1(intents: &ClientIntentsV1, namespace: &str, declared: &mut DeclaredEdges) -> Result<(), String> {
    let client = &intents.spec.service.name;
    for call in &intents.spec.calls {
        match call.call_type.as_deref() {
            Some("internet") => {
                for domain in call.internet.iter().flat_map(|i| &i.domains) {
                    add_domain(client, namespace, domain, declared)?;
                }
            }
            None | Some("http") | Some("kafka") => {
                let name = call.name.as_deref().ok_or_else(|| format!("a call of {client:?} has no `name`"))?;
                add_in_cluster(client, namespace, name, declared)?;
            }
            // Databases and cloud APIs are not edges the exporter observes.
            Some(_) => {}
        }
    }
    Ok(())
}

/// `server`, `server.namespace`, or either with the `svc:` prefix of Kubernetes Service targets.
fn add_in_cluster(client: &str, namespace: &str, target: &str, declared: &mut DeclaredEdges) -> Result<(), String> {
    let target = target.strip_prefix("svc:").unwrap_or(target);
    let (server, server_namespace) = target.split_once('.').unwrap_or((target, namespace));
    insert(client, namespace, server, Some(server_namespace), declared)
}

/// Domains are compared with the metric's server label, which is lower case without a trailing dot.
fn add_domain(client: &str, namespace: &str, domain: &str, declared: &mut DeclaredEdges) -> Result<(), String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if domain.contains('*') {
        declared.warnings.push(format!(
            "{client} in namespace {namespace}: the wildcard domain {domain:?} is recorded as written; the \
             exporter reports exact names, so it matches none of them"
        ));
    }
    insert(client, namespace, &domain, None, declared)
}

fn insert(
    client: &str,
    namespace: &str,
    server: &str,
    server_namespace: Option<&str>,
    declared: &mut DeclaredEdges,
) -> Result<(), String> {
    let labels = LabelSet {
        client: Some(client.into()),
        namespace: Some(namespace.into()),
        server: Some(server.into()),
        server_namespace: server_namespace.map(Into::into),
        ..LabelSet::default()
    };
    declared.edges.insert(edge_from_labels(&labels)?);
    Ok(())
}

/// `--declared`: writes the declared edges that the map does not hold, one per line (`<client> in namespace
/// <ns> calls <server>[ in namespace <ns>]`), keeping to the map's `--namespace` filter.
pub fn run_unseen(paths: &[PathBuf], filter: &Filter, map: &ServiceMap, out: &mut dyn Write) -> Result<Outcome> {
    let declared = read_declared(paths)?;
    let observed: BTreeSet<Edge> = map_edges(map).collect();
    let in_scope: Vec<&Edge> = declared
        .edges
        .iter()
        .filter(|edge| filter.namespaces.is_empty() || filter.namespaces.contains(&edge.namespace))
        .collect();
    let unseen: Vec<&Edge> = in_scope.iter().copied().filter(|edge| !observed.contains(*edge)).collect();
    let text: String = unseen.iter().map(|edge| format!("{}\n", describe_edge(edge))).collect();
    write_out(out, &text)?;
    Ok(Outcome::Unseen { count: unseen.len(), declared: in_scope.len(), warnings: declared.warnings })
}

/// The edges of a map, as labelled in the metric.
pub fn map_edges(map: &ServiceMap) -> impl Iterator<Item = Edge> + '_ {
    map.clients.iter().flat_map(|client| {
        client.calls.iter().map(move |call| Edge {
            client: client.name.clone(),
            namespace: client.namespace.clone(),
            server: call.server.clone(),
            server_namespace: call.namespace.clone(),
        })
    })
}

/// `a in namespace shop calls b`, `… calls b in namespace other`, `… calls api.example.com`.
pub fn describe_edge(edge: &Edge) -> String {
    let mut text = format!("{} in namespace {} calls {}", edge.client, edge.namespace, edge.server);
    if let Some(ns) = edge.server_namespace.as_deref().filter(|ns| *ns != edge.namespace) {
        text.push_str(&format!(" in namespace {ns}"));
    }
    text
}

#[derive(Serialize)]
struct RuleFile<'a> {
    groups: Vec<RuleGroup<'a>>,
}

#[derive(Serialize)]
struct RuleGroup<'a> {
    name: &'a str,
    rules: Vec<RecordingRule<'a>>,
}

#[derive(Serialize)]
struct RecordingRule<'a> {
    record: &'a str,
    expr: &'a str,
    labels: BTreeMap<&'a str, &'a str>,
}

/// The Prometheus rule file: one `vector(1)` recording rule per declared edge, in edge order.
pub fn render_rules(declared: &DeclaredEdges) -> String {
    let rules = declared
        .edges
        .iter()
        .map(|edge| {
            let mut labels = BTreeMap::from([
                ("client", edge.client.as_str()),
                ("namespace", edge.namespace.as_str()),
                ("server", edge.server.as_str()),
            ]);
            if let Some(ns) = &edge.server_namespace {
                labels.insert("server_namespace", ns.as_str());
            }
            RecordingRule { record: DECLARED_METRIC, expr: "vector(1)", labels }
        })
        .collect();
    let file = RuleFile { groups: vec![RuleGroup { name: RULE_GROUP, rules }] };
    format!(
        "# Generated by netmap-reduce --declared-rules-from: one series per edge declared in ClientIntents.\n\
         # Regenerate instead of editing.\n{}",
        to_yaml(&file)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(text: &str) -> Result<DeclaredEdges> {
        let mut declared = DeclaredEdges::default();
        parse_intents_text("intents.yaml", text, &mut declared)?;
        Ok(declared)
    }

    fn edge(client: &str, ns: &str, server: &str, server_ns: Option<&str>) -> Edge {
        Edge {
            client: client.into(),
            namespace: ns.into(),
            server: server.into(),
            server_namespace: server_ns.map(Into::into),
        }
    }

    #[test]
    fn v2beta1_targets_become_edges() {
        let text = "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: web, namespace: shop}\n\
            spec:\n  workload: {name: web, kind: Deployment}\n  targets:\n\
            \x20   - kubernetes: {name: cart, kind: Deployment}\n    - service: {name: kubernetes.default}\n\
            \x20   - kafka: {name: kafka.streaming, topics: [{name: t, operations: [produce]}]}\n\
            \x20   - internet: {domains: [API.Stripe.com.], ips: [1.2.3.4]}\n    - sql: {name: db}\n";
        let got = declared(text).unwrap();
        let want: BTreeSet<Edge> = [
            edge("web", "shop", "cart", Some("shop")),
            edge("web", "shop", "kubernetes", Some("default")),
            edge("web", "shop", "kafka", Some("streaming")),
            edge("web", "shop", "api.stripe.com", None),
        ]
        .into();
        assert_eq!(got.edges, want);
    }

    #[test]
    fn v1alpha3_calls_lists_and_other_kinds() {
        let text = "kind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\n---\n\
            apiVersion: v1\nkind: List\nitems:\n- apiVersion: k8s.otterize.com/v1alpha3\n  kind: ClientIntents\n\
            \x20 metadata: {name: web, namespace: shop}\n  spec:\n    service: {name: web}\n    calls:\n\
            \x20   - name: svc:kubernetes.default\n    - name: cart\n      type: http\n\
            \x20   - type: internet\n      internet: {domains: ['*.example.com']}\n    - name: db\n      type: database\n";
        let got = declared(text).unwrap();
        assert_eq!(got.edges.len(), 3);
        assert!(got.edges.contains(&edge("web", "shop", "kubernetes", Some("default"))));
        assert_eq!(got.warnings.len(), 1, "{:?}", got.warnings);
    }

    #[test]
    fn bad_documents_name_the_document_and_the_problem() {
        for (text, needle) in [
            ("a: [", "document 1: malformed YAML"),
            ("---\nfoo: 1\n", "document 1: not a Kubernetes object"),
            ("apiVersion: k8s.otterize.com/v9\nkind: ClientIntents\n", "apiVersion"),
            (
                "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a}\nspec: {workload: {name: a}, targets: []}\n",
                "no metadata.namespace",
            ),
            ("apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a}\n", "spec"),
        ] {
            let err = declared(text).unwrap_err().to_string();
            assert!(err.starts_with("intents.yaml: ") && err.contains(needle), "{text:?}: {err}");
        }
    }
}
