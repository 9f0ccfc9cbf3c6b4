//! The reducer's data model. Parsers feed labelled samples into a [`Snapshot`], which sums every edge over all
//! inputs, nodes and instances (docs/design.md §2: each observation is counted once in the cluster, so summing is exact)
//! and remembers workload kinds. [`Snapshot::into_map`] applies the filters and yields the sorted [`ServiceMap`]
//! that every renderer draws from. No I/O here.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;

use super::time::Seen;

/// Name of the edge counter (docs/design.md §2).
pub const EDGE_METRIC: &str = "network_mapper_edge_total";
/// Name of the workload-kind companion metric (docs/design.md §2).
pub const INFO_METRIC: &str = "network_mapper_workload_info";
/// Name of the per-port connection counter of an edge (docs/design.md §2): the server pod's port of each TCP connection.
pub const CONNECTIONS_METRIC: &str = "network_mapper_edge_connections_total";

/// The server ports each edge was seen connecting to (edges seen only through DNS have none).
pub type EdgePorts = BTreeMap<Edge, BTreeSet<u16>>;

/// One edge of the map, labelled as in the metric contract. `server_namespace` is `None` for names outside the
/// cluster. The derived order (client, namespace, server, server_namespace) is the order of every rendering.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edge {
    pub client: String,
    pub namespace: String,
    pub server: String,
    pub server_namespace: Option<String>,
}

/// The labels of one series that the reducer reads; every other label (instance, job, pod, node…) is summed
/// away. Borrowed where the input allows, so a 200,000-series snapshot is not copied label by label.
#[derive(Debug, Default, Deserialize)]
pub struct LabelSet<'a> {
    #[serde(borrow, rename = "__name__")]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub client: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub server: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub server_namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub workload: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub exported_namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub port: Option<Cow<'a, str>>,
}

/// Prefix of every metric the exporter serves: an input with none of them is not a network-mapper snapshot.
pub const METRIC_PREFIX: &str = "network_mapper_";

/// Edges summed over every input, and the kinds of the workloads seen in `network_mapper_workload_info`.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    edges: HashMap<Edge, f64>,
    /// (namespace, workload) → kind.
    kinds: HashMap<(String, String), String>,
    /// First and last observation, for edges whose source had sample timestamps.
    times: HashMap<Edge, Seen>,
    /// What the parsers met, so that an input that is not a network-mapper snapshot can be told apart from an
    /// empty map (see [`super::validate`]).
    pub stats: InputStats,
    /// Leave out edge series that carry `exported_namespace` (scraped without `honor_labels: true`) instead of
    /// refusing the input; they are counted in `stats.renamed_skipped`.
    pub skip_renamed: bool,
    /// Connections per server port of each edge, from [`CONNECTIONS_METRIC`].
    ports: HashMap<Edge, BTreeMap<u16, f64>>,
}

/// What the parsers saw in the inputs, beyond the edges.
#[derive(Debug, Default, Clone)]
pub struct InputStats {
    /// Series or samples read, of any metric.
    pub series: usize,
    /// Of those, series of the exporter's own metrics (`network_mapper_*`, or the edge/workload labels).
    pub network_mapper_series: usize,
    /// Names of other metrics met (at most [`OTHER_NAMES_KEPT`]), to say what a wrong input holds instead.
    pub other_metrics: BTreeSet<String>,
    /// Whether there were more foreign names than [`OTHER_NAMES_KEPT`].
    pub more_other_metrics: bool,
    /// Edge series left out under `skip_renamed`.
    pub renamed_skipped: usize,
    /// The first line of a text input that is not a sample, comment or blank (1-based number, text).
    pub not_a_sample: Option<(usize, String)>,
}

/// How many foreign metric names [`InputStats::other_metrics`] keeps: enough to recognise the input.
pub const OTHER_NAMES_KEPT: usize = 8;

impl InputStats {
    /// Records a series that is not the exporter's.
    pub fn add_other(&mut self, name: &str) {
        self.series += 1;
        if !self.other_metrics.contains(name) {
            if self.other_metrics.len() < OTHER_NAMES_KEPT {
                self.other_metrics.insert(name.to_owned());
            } else {
                self.more_other_metrics = true;
            }
        }
    }

    /// Records a series of the exporter's.
    pub fn add_own(&mut self) {
        self.series += 1;
        self.network_mapper_series += 1;
    }
}

/// What to keep of a snapshot.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Client namespaces to keep; empty keeps all.
    pub namespaces: Vec<String>,
    /// Edges whose summed count is below this are dropped.
    pub min_count: f64,
    /// Namespaces to leave out, as client or as server.
    pub exclude_namespaces: Vec<String>,
    /// Servers to leave out: a name (any namespace, or a name outside the cluster) or `name.namespace`.
    pub exclude_servers: Vec<String>,
}

impl Default for Filter {
    fn default() -> Self {
        Self { namespaces: Vec::new(), min_count: 1.0, exclude_namespaces: Vec::new(), exclude_servers: Vec::new() }
    }
}

/// How many edges each filter stage kept, for the message of an empty map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterReport {
    /// Distinct edges read.
    pub read: usize,
    /// Client namespaces present in the input, sorted.
    pub client_namespaces: Vec<String>,
    /// Each active stage (its flag as written on the command line) and the edges left after it.
    pub stages: Vec<(String, usize)>,
}

/// The reduced map: clients sorted by (name, namespace), each with its calls sorted by (name, namespace).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceMap {
    pub clients: Vec<Client>,
}

/// A calling workload and everything it calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub name: String,
    pub namespace: String,
    /// From `network_mapper_workload_info`; `None` when the snapshot does not say.
    pub kind: Option<String>,
    pub calls: Vec<Call>,
}

/// One called server, as seen from its client.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub server: String,
    /// `None` for a name outside the cluster.
    pub namespace: Option<String>,
    pub kind: Option<String>,
    /// Observations summed over all nodes (docs/design.md §2: not a request count).
    pub count: f64,
    /// When the edge was seen, where the source has timestamps.
    pub seen: Option<Seen>,
    /// TCP connections per server port, from [`CONNECTIONS_METRIC`] (empty for edges seen only through DNS, and
    /// when the ports were taken out for policies).
    pub ports: BTreeMap<u16, f64>,
}

impl Call {
    /// The Kubernetes API server (docs/design.md §4.2: server `kubernetes`, namespace `default`).
    pub fn is_api_server(&self) -> bool {
        self.server == "kubernetes" && self.namespace.as_deref() == Some("default")
    }

    /// A target named as a Kubernetes Service rather than a workload: the API server, and Services without
    /// backing pods, which the exporter reports with kind `Service`.
    pub fn is_service(&self) -> bool {
        self.is_api_server() || (self.namespace.is_some() && self.kind.as_deref() == Some("Service"))
    }
}

impl ServiceMap {
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

impl Snapshot {
    /// Adds one sample. Series of other metrics are ignored (an exporter's scrape also carries its
    /// self-metrics); a series that is neither an edge nor a workload kind is an error, as it means the input
    /// is not what the user thinks. The error is the problem only; the caller names the input.
    pub fn add_series(&mut self, labels: &LabelSet<'_>, value: f64) -> Result<(), String> {
        match labels.name.as_deref() {
            Some(name) if !name.starts_with(METRIC_PREFIX) => {
                self.stats.add_other(name);
                return Ok(());
            }
            _ => self.stats.add_own(),
        }
        match labels.name.as_deref() {
            Some(EDGE_METRIC) => self.add_edge_series(labels, value),
            Some(INFO_METRIC) => self.add_info_series(labels),
            Some(CONNECTIONS_METRIC) => self.add_connection_series(labels, value),
            Some(_) => Ok(()),
            None if labels.port.is_some() => self.add_connection_series(labels, value),
            None if is_edge_series(labels) => self.add_edge_series(labels, value),
            None if labels.workload.is_some() => self.add_info_series(labels),
            None => Err(format!(
                "a series has neither the edge labels (client, namespace, server) nor the workload labels \
                 (workload, namespace, kind): {labels}"
            )),
        }
    }

    fn add_edge_series(&mut self, labels: &LabelSet<'_>, value: f64) -> Result<(), String> {
        // NaN is what PromQL arithmetic yields for "no data"; it is not an observation.
        if value.is_nan() {
            return Ok(());
        }
        if !value.is_finite() || value < 0.0 {
            return Err(format!("edge {labels} has the value {value}; a count must be finite and not negative"));
        }
        if self.skip_renamed && labels.exported_namespace.as_deref().is_some_and(|ns| !ns.is_empty()) {
            self.stats.renamed_skipped += 1;
            return Ok(());
        }
        let edge = edge_from_labels(labels)?;
        *self.edges.entry(edge).or_insert(0.0) += value;
        Ok(())
    }

    /// Adds an edge series together with when it was seen (matrices, `netmap-reduce`'s own JSON).
    pub fn add_series_seen(&mut self, labels: &LabelSet<'_>, value: f64, seen: Option<Seen>) -> Result<(), String> {
        self.add_series(labels, value)?;
        if let Some(seen) = seen
            && is_edge_series(labels)
            && !(self.skip_renamed && labels.exported_namespace.as_deref().is_some_and(|ns| !ns.is_empty()))
        {
            self.add_seen(edge_from_labels(labels)?, seen);
        }
        Ok(())
    }

    /// Records when an edge was seen, merged with what is known.
    pub fn add_seen(&mut self, edge: Edge, seen: Seen) {
        let merged = self.times.get(&edge).map_or(seen, |known| known.merge(seen));
        self.times.insert(edge, merged);
    }

    /// Takes the times of `other` (a range query of the same source) and nothing else.
    pub fn merge_times(&mut self, other: Snapshot) {
        for (edge, seen) in other.times {
            self.add_seen(edge, seen);
        }
    }

    fn add_connection_series(&mut self, labels: &LabelSet<'_>, value: f64) -> Result<(), String> {
        if value.is_nan() {
            return Ok(());
        }
        if !value.is_finite() || value < 0.0 {
            return Err(format!("series {labels} has the value {value}; a count must be finite and not negative"));
        }
        let port = required(labels, "port", &labels.port)?;
        let port: u16 = match port.parse() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("series {labels} has the invalid port {port:?} (expected 1-65535)")),
        };
        let edge = edge_from_labels(labels)?;
        *self.ports.entry(edge).or_default().entry(port).or_insert(0.0) += value;
        Ok(())
    }

    /// Takes the observed server ports of every edge that kept at least one connection (the filters of the
    /// map apply to edges, not to ports: see [`Snapshot::into_map`]).
    pub fn take_ports(&mut self) -> EdgePorts {
        std::mem::take(&mut self.ports)
            .into_iter()
            .map(|(edge, ports)| (edge, ports.into_iter().filter(|(_, n)| *n > 0.0).map(|(p, _)| p).collect()))
            .filter(|(_, ports): &(Edge, BTreeSet<u16>)| !ports.is_empty())
            .collect()
    }

    fn add_info_series(&mut self, labels: &LabelSet<'_>) -> Result<(), String> {
        let workload = required(labels, "workload", &labels.workload)?;
        let namespace = required(labels, "namespace", &labels.namespace)?;
        let kind = required(labels, "kind", &labels.kind)?;
        check_name("workload", workload, false)?;
        check_name("namespace", namespace, false)?;
        self.add_kind(namespace, workload, kind);
        Ok(())
    }

    /// Records a workload's kind. When sources disagree, the smallest name wins so output never depends on
    /// input order.
    pub fn add_kind(&mut self, namespace: &str, workload: &str, kind: &str) {
        let key = (namespace.to_owned(), workload.to_owned());
        match self.kinds.get_mut(&key) {
            Some(known) if known.as_str() <= kind => {}
            Some(known) => *known = kind.to_owned(),
            None => {
                self.kinds.insert(key, kind.to_owned());
            }
        }
    }

    /// Adds an edge directly (tests, benchmarks, and callers with their own source).
    pub fn add_edge(&mut self, edge: Edge, count: f64) {
        *self.edges.entry(edge).or_insert(0.0) += count;
    }

    /// Folds another snapshot into this one: counts add up, kinds merge.
    pub fn merge(&mut self, other: Snapshot) {
        for (edge, count) in other.edges {
            self.add_edge(edge, count);
        }
        for (edge, seen) in other.times {
            self.add_seen(edge, seen);
        }
        self.stats.series += other.stats.series;
        self.stats.network_mapper_series += other.stats.network_mapper_series;
        self.stats.renamed_skipped += other.stats.renamed_skipped;
        self.stats.more_other_metrics |= other.stats.more_other_metrics;
        for name in other.stats.other_metrics {
            if self.stats.other_metrics.len() < OTHER_NAMES_KEPT {
                self.stats.other_metrics.insert(name);
            } else {
                self.stats.more_other_metrics = true;
            }
        }
        for ((namespace, workload), kind) in other.kinds {
            self.add_kind(&namespace, &workload, &kind);
        }
        for (edge, ports) in other.ports {
            let mine = self.ports.entry(edge).or_default();
            for (port, count) in ports {
                *mine.entry(port).or_insert(0.0) += count;
            }
        }
    }

    /// Number of distinct edges so far.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// The distinct edges, for comparisons (`diff`, `--declared`).
    pub fn edges(&self) -> impl Iterator<Item = &Edge> {
        self.edges.keys()
    }

    /// Applies the filter, joins the kinds and sorts: the map every output is rendered from.
    pub fn into_map(self, filter: &Filter) -> ServiceMap {
        self.into_map_reported(filter).0
    }

    /// [`Snapshot::into_map`], also saying how many edges each filter kept.
    pub fn into_map_reported(mut self, filter: &Filter) -> (ServiceMap, FilterReport) {
        let read = self.edges.len();
        let client_namespaces: BTreeSet<&str> = self.edges.keys().map(|e| e.namespace.as_str()).collect();
        let client_namespaces = client_namespaces.into_iter().map(str::to_owned).collect();
        let mut edges: Vec<(Edge, f64)> = self.edges.drain().collect();
        let mut stages = Vec::new();
        for (stage, keep) in filter.stages() {
            edges.retain(|(edge, count)| keep(edge, *count));
            stages.push((stage, edges.len()));
        }
        edges.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        (self.build_map(edges), FilterReport { read, client_namespaces, stages })
    }

    fn build_map(&self, edges: Vec<(Edge, f64)>) -> ServiceMap {
        let mut clients: Vec<Client> = Vec::new();
        for (edge, count) in edges {
            let kind = self.kinds.get(&(edge.server_namespace.clone().unwrap_or_default(), edge.server.clone()));
            let seen = self.times.get(&edge).copied();
            let ports =
                self.ports.get(&edge).map(|p| p.iter().filter(|(_, n)| **n > 0.0).map(|(p, n)| (*p, *n)).collect());
            let call = Call {
                server: edge.server,
                namespace: edge.server_namespace,
                kind: kind.cloned(),
                count,
                seen,
                ports: ports.unwrap_or_default(),
            };
            match clients.last_mut() {
                Some(last) if last.name == edge.client && last.namespace == edge.namespace => last.calls.push(call),
                _ => {
                    let kind = self.kinds.get(&(edge.namespace.clone(), edge.client.clone())).cloned();
                    clients.push(Client { name: edge.client, namespace: edge.namespace, kind, calls: vec![call] });
                }
            }
        }
        ServiceMap { clients }
    }
}

/// One filter stage: its description and its test.
type Stage<'f> = (String, Box<dyn Fn(&Edge, f64) -> bool + 'f>);

impl Filter {
    /// The active stages in the order they apply, each named as on the command line.
    fn stages(&self) -> Vec<Stage<'_>> {
        let mut stages: Vec<Stage<'_>> = Vec::new();
        if !self.namespaces.is_empty() {
            let flag = format!("--namespace {}", self.namespaces.join(","));
            stages.push((flag, Box::new(|e: &Edge, _| self.namespaces.contains(&e.namespace))));
        }
        if self.min_count > 1.0 {
            stages.push((format!("--min-count {}", self.min_count), Box::new(|_, count| count >= self.min_count)));
        } else {
            // Counts below 1 (e.g. from rate-style queries) are still dropped by the default, silently.
            stages.push((String::new(), Box::new(|_, count| count >= self.min_count)));
        }
        if !self.exclude_namespaces.is_empty() {
            let flag = format!("--exclude-namespace {}", self.exclude_namespaces.join(","));
            stages.push((
                flag,
                Box::new(|e: &Edge, _| {
                    let server_ns = e.server_namespace.as_ref();
                    !self.exclude_namespaces.iter().any(|x| *x == e.namespace || Some(x) == server_ns)
                }),
            ));
        }
        if !self.exclude_servers.is_empty() {
            let flag = format!("--exclude-server {}", self.exclude_servers.join(","));
            stages.push((flag, Box::new(|e: &Edge, _| !self.exclude_servers.iter().any(|x| server_matches(e, x)))));
        }
        stages
    }
}

/// `pattern` is a server name (any namespace) or `name.namespace`; a name outside the cluster matches itself.
fn server_matches(edge: &Edge, pattern: &str) -> bool {
    edge.server == pattern
        || edge.server_namespace.as_deref().is_some_and(|ns| {
            pattern.strip_prefix(edge.server.as_str()).and_then(|rest| rest.strip_prefix('.')) == Some(ns)
        })
}

fn is_edge_series(labels: &LabelSet<'_>) -> bool {
    match labels.name.as_deref() {
        Some(name) => name == EDGE_METRIC,
        None => labels.client.is_some() || labels.server.is_some(),
    }
}

pub(crate) fn edge_from_labels(labels: &LabelSet<'_>) -> Result<Edge, String> {
    if labels.exported_namespace.as_deref().is_some_and(|ns| !ns.is_empty()) {
        return Err(format!(
            "edge {labels} has an `exported_namespace` label: Prometheus renamed the client's `namespace` to it; \
             scrape the exporters with `honor_labels: true` (ServiceMonitor `honorLabels: true`). Series scraped \
             before the fix stay in Prometheus: query a --window that starts after it (e.g. --window 1h) or export \
             a snapshot of the time since, or pass --skip-renamed to leave those series out"
        ));
    }
    let client = required(labels, "client", &labels.client)?;
    let namespace = required(labels, "namespace", &labels.namespace)?;
    let server = required(labels, "server", &labels.server)?;
    // Prometheus treats an empty label as an absent one.
    let server_namespace = labels.server_namespace.as_deref().filter(|ns| !ns.is_empty());
    check_name("client", client, false)?;
    check_name("namespace", namespace, false)?;
    check_name("server", server, server_namespace.is_none())?;
    if let Some(ns) = server_namespace {
        check_name("server_namespace", ns, false)?;
    }
    Ok(Edge {
        client: client.to_owned(),
        namespace: namespace.to_owned(),
        server: server.to_owned(),
        server_namespace: server_namespace.map(str::to_owned),
    })
}

fn required<'l>(labels: &LabelSet<'_>, name: &str, value: &'l Option<Cow<'_, str>>) -> Result<&'l str, String> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("series {labels} has no `{name}` label")),
    }
}

/// Names become YAML keys' values, file names and graph labels: whitespace and control characters have no
/// place in a workload, namespace or DNS name, and a dot in a workload name would break the `name.namespace`
/// convention of ClientIntents (workload names never have dots: docs/design.md §4.1).
fn check_name(label: &str, value: &str, dots_allowed: bool) -> Result<(), String> {
    if let Some(bad) = value.chars().find(|c| c.is_whitespace() || c.is_control() || (!dots_allowed && *c == '.')) {
        return Err(format!("label `{label}` has the invalid value {value:?} (it contains {bad:?})"));
    }
    // Names become file names in `--output-dir`.
    if value.contains('/') {
        return Err(format!("label `{label}` has the invalid value {value:?} (it contains '/')"));
    }
    Ok(())
}

impl std::fmt::Display for LabelSet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs = [
            ("__name__", &self.name),
            ("client", &self.client),
            ("namespace", &self.namespace),
            ("server", &self.server),
            ("server_namespace", &self.server_namespace),
            ("workload", &self.workload),
            ("kind", &self.kind),
            ("exported_namespace", &self.exported_namespace),
            ("port", &self.port),
        ];
        let shown: Vec<String> = pairs.iter().filter_map(|(k, v)| v.as_deref().map(|v| format!("{k}={v:?}"))).collect();
        write!(f, "{{{}}}", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels<'a>(client: &'a str, ns: &'a str, server: &'a str, server_ns: Option<&'a str>) -> LabelSet<'a> {
        LabelSet {
            client: Some(client.into()),
            namespace: Some(ns.into()),
            server: Some(server.into()),
            server_namespace: server_ns.map(Into::into),
            ..LabelSet::default()
        }
    }

    #[test]
    fn the_same_edge_from_several_nodes_is_summed() {
        let mut snapshot = Snapshot::default();
        snapshot.add_series(&labels("a", "shop", "b", Some("shop")), 2.0).unwrap();
        snapshot.add_series(&labels("a", "shop", "b", Some("shop")), 3.0).unwrap();
        let map = snapshot.into_map(&Filter::default());
        assert_eq!(map.clients.len(), 1);
        assert_eq!(map.clients[0].calls[0].count, 5.0);
    }

    #[test]
    fn an_empty_server_namespace_means_outside_the_cluster() {
        let mut snapshot = Snapshot::default();
        snapshot.add_series(&labels("a", "shop", "api.example.com", Some("")), 1.0).unwrap();
        let map = snapshot.into_map(&Filter::default());
        assert_eq!(map.clients[0].calls[0].namespace, None);
    }

    #[test]
    fn a_dot_in_a_workload_name_is_refused() {
        let mut snapshot = Snapshot::default();
        let err = snapshot.add_series(&labels("a.b", "shop", "b", Some("shop")), 1.0).unwrap_err();
        assert!(err.contains("`client`"), "{err}");
    }

    #[test]
    fn exported_namespace_explains_honor_labels() {
        let mut snapshot = Snapshot::default();
        let mut l = labels("a", "shop", "b", Some("shop"));
        l.exported_namespace = l.namespace.take();
        let err = snapshot.add_series(&l, 1.0).unwrap_err();
        assert!(err.contains("honor_labels: true"), "{err}");
    }

    #[test]
    fn nan_is_skipped_and_negative_counts_are_refused() {
        let mut snapshot = Snapshot::default();
        snapshot.add_series(&labels("a", "shop", "b", Some("shop")), f64::NAN).unwrap();
        assert_eq!(snapshot.edge_count(), 0);
        assert!(snapshot.add_series(&labels("a", "shop", "b", Some("shop")), -1.0).is_err());
    }

    #[test]
    fn connection_series_sum_per_port_and_need_a_valid_port() {
        let mut snapshot = Snapshot::default();
        let mut l = labels("a", "shop", "b", Some("shop"));
        l.name = Some(CONNECTIONS_METRIC.into());
        l.port = Some("7070".into());
        snapshot.add_series(&l, 2.0).unwrap();
        snapshot.add_series(&l, 1.0).unwrap();
        l.port = Some("0".into());
        assert!(snapshot.add_series(&l, 1.0).unwrap_err().contains("invalid port"));
        let ports = snapshot.take_ports();
        let edge = edge_from_labels(&labels("a", "shop", "b", Some("shop"))).unwrap();
        assert_eq!(ports[&edge].iter().copied().collect::<Vec<_>>(), [7070]);
    }

    #[test]
    fn conflicting_kinds_resolve_to_the_smallest_name_in_any_order() {
        let mut one = Snapshot::default();
        one.add_kind("shop", "a", "StatefulSet");
        one.add_kind("shop", "a", "Deployment");
        let mut two = Snapshot::default();
        two.add_kind("shop", "a", "Deployment");
        two.add_kind("shop", "a", "StatefulSet");
        assert_eq!(one.kinds, two.kinds);
        assert_eq!(one.kinds[&("shop".to_owned(), "a".to_owned())], "Deployment");
    }

    #[test]
    fn filters_keep_client_namespaces_and_minimum_counts() {
        let mut snapshot = Snapshot::default();
        snapshot.add_series(&labels("a", "shop", "b", Some("shop")), 5.0).unwrap();
        snapshot.add_series(&labels("c", "other", "b", Some("shop")), 5.0).unwrap();
        snapshot.add_series(&labels("d", "shop", "b", Some("shop")), 1.0).unwrap();
        let filter = Filter { namespaces: vec!["shop".into()], min_count: 2.0, ..Filter::default() };
        let map = snapshot.into_map(&filter);
        let names: Vec<&str> = map.clients.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a"]);
    }
}
