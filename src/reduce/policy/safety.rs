//! What makes generated policies safe to apply: the scope of `--namespace` (servers there keep every observed
//! client, from any namespace), refusing an inventory that names none of the map's workloads, and the
//! self-check: the rendered policies are read back by the same code as `netmap-reduce impact` and evaluated
//! against the observed map before anything is written. An edge they would deny stops the run.

use std::collections::BTreeSet;

use super::inventory::ClusterInfo;
use super::{ClusterSource, Document};
use crate::reduce::error::{ReduceError, Result};
use crate::reduce::impact::report::render_text;
use crate::reduce::impact::set::Policy;
use crate::reduce::impact::{Checked, Verdict, check_map, load};
use crate::reduce::model::{Client, EdgePorts, Filter, FilterReport, ServiceMap, Snapshot};
use crate::sources::inventory::naming;

/// The map policies are generated from. Without `--namespace`, the filtered map. With it, every edge whose
/// client *or server* is in those namespaces: a server there must keep its clients from other namespaces.
pub fn scoped_map(snapshot: Snapshot, filter: &Filter) -> (ServiceMap, FilterReport) {
    let wide = Filter { namespaces: Vec::new(), ..filter.clone() };
    let (mut map, mut report) = snapshot.into_map_reported(&wide);
    if filter.namespaces.is_empty() {
        return (map, report);
    }
    let in_scope = |ns: Option<&str>| ns.is_some_and(|ns| filter.namespaces.iter().any(|n| n == ns));
    for client in &mut map.clients {
        let client_in_scope = in_scope(Some(&client.namespace));
        client.calls.retain(|call| client_in_scope || in_scope(call.namespace.as_deref()));
    }
    map.clients.retain(|client| !client.calls.is_empty());
    let left = map.clients.iter().map(|c| c.calls.len()).sum();
    report.stages.push((format!("--namespace {} (as client or server)", filter.namespaces.join(",")), left));
    (map, report)
}

/// An inventory that names none of the map's workloads is the wrong one (another cluster, another context, a
/// file of the wrong kinds): every policy and every verdict would rest on nothing, so it is bad input.
pub fn check_inventory(map: &ServiceMap, cluster: &ClusterInfo, source: &ClusterSource) -> Result<()> {
    let mut workloads = BTreeSet::new();
    for client in &map.clients {
        workloads.insert((client.namespace.as_str(), client.name.as_str()));
        for call in client.calls.iter().filter(|c| !c.is_service()) {
            workloads.extend(call.namespace.as_deref().map(|ns| (ns, call.server.as_str())));
        }
    }
    if workloads.is_empty() || workloads.iter().any(|(ns, name)| cluster.workload(ns, name).is_some()) {
        return Ok(());
    }
    let examples: Vec<String> = workloads.iter().take(3).map(|(ns, name)| format!("{ns}/{name}")).collect();
    Err(ReduceError::bad_input(
        &source.describe(),
        format!(
            "the inventory names none of the map's {} workload(s) (e.g. {}): it is not the inventory of the cluster \
             the map comes from. Give that cluster's: {} (or --kubeconfig with its context)",
            workloads.len(),
            examples.join(", "),
            naming::KUBECTL_GET
        ),
    ))
}

/// How many edges denied because a filter left them out are named one by one; the rest are counted.
const FILTERED_OUT_SHOWN: usize = 20;

/// The maps and the cluster view the generated policies are checked against.
pub struct SelfCheck<'a> {
    /// The map the policies are meant to allow.
    pub map: &'a ServiceMap,
    /// Every observed edge, before the filters.
    pub unfiltered: &'a ServiceMap,
    pub ports: &'a EdgePorts,
    pub cluster: &'a ClusterInfo,
}

impl SelfCheck<'_> {
    /// Fails when the documents would deny an edge of the map. Returns notes: edges it cannot decide, and
    /// observed edges the filters left out that the policies deny (the user chose that, but should see it).
    pub fn run(&self, documents: &[Document], filter: &Filter) -> Result<Vec<String>> {
        let text: String = documents.iter().map(|d| format!("---\n{}", d.yaml)).collect();
        let policies = load::policies_from_text("<generated policies>", &text)
            .map_err(|e| ReduceError::SelfCheck(format!("self-check: the generated policies do not read back: {e}")))?;
        let checked = check_map(self.map, self.ports, self.cluster, &policies);
        let denied: Vec<Checked<'_>> =
            checked.iter().filter(|c| matches!(c.verdict, Verdict::Denied(_))).cloned().collect();
        if !denied.is_empty() {
            return Err(ReduceError::SelfCheck(format!(
                "self-check failed: the generated policies would deny {} observed edge port(s), so nothing was \
                 written:\n{}The notes above say what the inventory made hard to express (a selector that also \
                 selects another workload's pods, a workload without a stable selector): give those pods labels of \
                 their own. If none applies, please report it with the map and the inventory; `netmap-reduce \
                 impact` explains any policy set the same way.",
                denied.len(),
                render_text(&denied)
            )));
        }
        let mut notes: Vec<String> =
            checked.iter().filter(|c| matches!(c.verdict, Verdict::Unknown(_))).map(unknown_note).collect();
        notes.extend(self.filtered_out_denied(&policies, filter));
        Ok(notes)
    }

    fn filtered_out_denied(&self, policies: &[Policy], filter: &Filter) -> Vec<String> {
        let left_out = minus(self.unfiltered, self.map);
        let checked = check_map(&left_out, self.ports, self.cluster, policies);
        let denied: Vec<Checked<'_>> =
            checked.into_iter().filter(|c| matches!(c.verdict, Verdict::Denied(_))).collect();
        if denied.is_empty() {
            return Vec::new();
        }
        let flags = describe_filter(filter);
        let lines = render_text(&denied);
        let mut notes: Vec<String> = lines
            .lines()
            .take(FILTERED_OUT_SHOWN)
            .map(|line| format!("left out by {flags}, so denied: {}", line.trim_start_matches("deny: ")))
            .collect();
        if denied.len() > FILTERED_OUT_SHOWN {
            notes.push(format!(
                "left out by {flags}, so denied: {} more edge port(s) (`netmap-reduce impact` without the filters \
                 lists them all)",
                denied.len() - FILTERED_OUT_SHOWN
            ));
        }
        notes
    }
}

fn unknown_note(checked: &Checked<'_>) -> String {
    let line = render_text(std::slice::from_ref(checked));
    format!("not verified: {}", line.trim_end().trim_start_matches("unknown: "))
}

/// The filters as written on the command line, for notes.
fn describe_filter(filter: &Filter) -> String {
    let mut flags = Vec::new();
    if filter.min_count > 1.0 {
        flags.push(format!("--min-count {}", filter.min_count));
    }
    if !filter.exclude_namespaces.is_empty() {
        flags.push(format!("--exclude-namespace {}", filter.exclude_namespaces.join(",")));
    }
    if !filter.exclude_servers.is_empty() {
        flags.push(format!("--exclude-server {}", filter.exclude_servers.join(",")));
    }
    if flags.is_empty() { "the filters".to_owned() } else { flags.join(" ") }
}

/// The edges of `all` that `kept` does not hold.
fn minus(all: &ServiceMap, kept: &ServiceMap) -> ServiceMap {
    let key = |client: &Client, server: &str, ns: Option<&str>| {
        (client.name.clone(), client.namespace.clone(), server.to_owned(), ns.map(str::to_owned))
    };
    let kept: BTreeSet<_> = kept
        .clients
        .iter()
        .flat_map(|c| c.calls.iter().map(move |call| key(c, &call.server, call.namespace.as_deref())))
        .collect();
    let mut out = all.clone();
    for client in &mut out.clients {
        let snapshot = client.clone();
        client.calls.retain(|call| !kept.contains(&key(&snapshot, &call.server, call.namespace.as_deref())));
    }
    out.clients.retain(|c| !c.calls.is_empty());
    out
}
