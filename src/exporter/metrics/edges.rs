//! The edge counter: `network_mapper_edge_total{client,namespace,server,server_namespace}`, its companions
//! `network_mapper_edge_connections_total{client,namespace,server,server_namespace,port}` (TCP connections by the
//! server pod's port) and `network_mapper_workload_info{workload,namespace,kind}`, and the cardinality caps that
//! protect Prometheus.
//!
//! A lock is held only for a hash lookup and an atomic increment, never across `.await`, so a std `Mutex` fits.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use hashbrown::HashTable;
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rustc_hash::{FxBuildHasher, FxHashMap as HashMap};
use std::hash::BuildHasher;

use super::families::{self as f, DescribeLabels, LabelSpec, Registrar};
use super::{ReasonLabel, RefusedReason};
use crate::resolve::{Edge, Server, Workload};

/// The cardinality caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Distinct edge label sets; beyond it new edges are refused (existing ones keep counting).
    pub max_edges: usize,
    /// Distinct external names per client workload.
    pub max_external_names: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_edges: 10_000, max_external_names: 50 }
    }
}

/// The labels of one edge series. `server_namespace` is absent (not empty) for names outside the cluster.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct EdgeLabels {
    /// The client workload.
    pub client: Arc<str>,
    /// The client's namespace.
    pub namespace: Arc<str>,
    /// The server workload, or the external DNS name.
    pub server: Arc<str>,
    /// The server's namespace, for in-cluster servers.
    pub server_namespace: Option<Arc<str>>,
}

impl EncodeLabelSet for EdgeLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), fmt::Error> {
        ("client", &*self.client).encode(encoder.encode_label())?;
        ("namespace", &*self.namespace).encode(encoder.encode_label())?;
        ("server", &*self.server).encode(encoder.encode_label())?;
        if let Some(ns) = &self.server_namespace {
            ("server_namespace", &**ns).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

impl DescribeLabels for EdgeLabels {
    fn labels() -> Vec<LabelSpec> {
        ["client", "namespace", "server", "server_namespace"].map(LabelSpec::open).to_vec()
    }
}

impl From<&Edge> for EdgeLabels {
    fn from(edge: &Edge) -> Self {
        let (server, server_namespace) = match &edge.server {
            Server::Workload(w) => (w.name.clone(), Some(w.namespace.clone())),
            Server::External(name) => (name.clone(), None),
        };
        EdgeLabels {
            client: edge.client.name.clone(),
            namespace: edge.client.namespace.clone(),
            server,
            server_namespace,
        }
    }
}

/// The labels of one `edge_connections_total` series: the edge's, and the server pod's port.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ConnectionLabels {
    /// The edge.
    pub edge: EdgeLabels,
    /// The port on the server pod.
    pub port: u16,
}

impl EncodeLabelSet for ConnectionLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), fmt::Error> {
        self.edge.encode(encoder)?;
        ("port", self.port.to_string().as_str()).encode(encoder.encode_label())
    }
}

impl DescribeLabels for ConnectionLabels {
    fn labels() -> Vec<LabelSpec> {
        let mut labels = EdgeLabels::labels();
        labels.push(LabelSpec::open("port"));
        labels
    }
}

/// The labels of `network_mapper_workload_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct WorkloadLabels {
    /// The workload identity name.
    pub workload: Arc<str>,
    /// Its namespace.
    pub namespace: Arc<str>,
    /// Its kind.
    pub kind: Arc<str>,
}

impl DescribeLabels for WorkloadLabels {
    fn labels() -> Vec<LabelSpec> {
        ["workload", "namespace", "kind"].map(LabelSpec::open).to_vec()
    }
}

impl From<&Workload> for WorkloadLabels {
    fn from(w: &Workload) -> Self {
        WorkloadLabels { workload: w.name.clone(), namespace: w.namespace.clone(), kind: w.kind.clone() }
    }
}

/// What happened to one observed edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeOutcome {
    /// Counted.
    Counted,
    /// Refused: a new edge beyond `--max-edges`.
    RefusedMaxEdges,
    /// Refused: a new external name beyond the per-client cap.
    RefusedExternal,
    /// The edge counted, but a new `edge_connections_total` series beyond `--max-edges` was refused.
    RefusedConnectionSeries,
}

/// Series keyed by what they export: an edge's names and namespaces (and a port), never the workloads' kinds,
/// which `workload_info` carries. A server that shows as a Service and then as the Deployment behind it (its
/// backing pods arrived) is one series, counted once against `--max-edges`.
#[derive(Debug, Default)]
struct Series {
    table: HashTable<(Edge, Option<u16>, Counter)>,
}

impl Series {
    /// The exported labels of an edge's server: its name, and its namespace unless it is outside the cluster.
    fn server(edge: &Edge) -> (&str, Option<&str>) {
        match &edge.server {
            Server::Workload(w) => (&w.name, Some(&w.namespace)),
            Server::External(name) => (name, None),
        }
    }

    fn hash(edge: &Edge, port: Option<u16>) -> u64 {
        FxBuildHasher.hash_one((&*edge.client.name, &*edge.client.namespace, Series::server(edge), port))
    }

    fn same(a: &Edge, b: &Edge) -> bool {
        a.client.name == b.client.name
            && a.client.namespace == b.client.namespace
            && Series::server(a) == Series::server(b)
    }

    /// The series of `edge` (and `port`), and the edge it was last seen as.
    fn get_mut(&mut self, edge: &Edge, port: Option<u16>) -> Option<&mut (Edge, Option<u16>, Counter)> {
        self.table.find_mut(Series::hash(edge, port), |(e, p, _)| *p == port && Series::same(e, edge))
    }

    fn insert(&mut self, edge: Edge, port: Option<u16>, counter: Counter) {
        let hash = Series::hash(&edge, port);
        self.table.insert_unique(hash, (edge, port, counter), |(e, p, _)| Series::hash(e, *p));
    }

    fn len(&self) -> usize {
        self.table.len()
    }
}

#[derive(Debug, Default)]
struct State {
    counters: Series,
    connections: Series,
    /// Keyed by (namespace, name) so a client whose kind changes keeps its budget.
    external_names: HashMap<(Arc<str>, Arc<str>), usize>,
}

/// Counts edges under the caps. Cheap to clone; clones share state.
#[derive(Clone, Debug)]
pub struct EdgeCounter {
    state: Arc<Mutex<State>>,
    limits: Limits,
    edges: Family<EdgeLabels, Counter>,
    connections: Family<ConnectionLabels, Counter>,
    workload_info: Family<WorkloadLabels, Gauge>,
    distinct: Gauge,
    refused: Family<ReasonLabel<RefusedReason>, Counter>,
}

impl EdgeCounter {
    /// A counter with these caps, its families registered by `r`.
    pub(super) fn new(limits: Limits, r: &mut Registrar<'_>) -> Self {
        let (edges, connections) = (r.add(&f::EDGE, Family::default()), r.add(&f::EDGE_CONNECTIONS, Family::default()));
        let workload_info = r.add(&f::WORKLOAD_INFO, Family::default());
        let distinct = r.add(&f::EDGES, Gauge::default());
        let max: Gauge = r.add(&f::EDGES_MAX, Gauge::default());
        max.set(i64::try_from(limits.max_edges).unwrap_or(i64::MAX));
        let refused = r.add(&f::EDGES_REFUSED, Family::default());
        EdgeCounter { state: Arc::default(), limits, edges, connections, workload_info, distinct, refused }
    }

    /// Counts one observation of `edge`.
    pub fn observe(&self, edge: &Edge) -> EdgeOutcome {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, _, counter)) = state.counters.get_mut(edge, None) {
            counter.inc();
            if !same_kinds(seen, edge) {
                self.rekind(seen, edge);
                *seen = edge.clone();
            }
            return EdgeOutcome::Counted;
        }
        if state.counters.len() >= self.limits.max_edges {
            self.refuse(RefusedReason::MaxEdges);
            return EdgeOutcome::RefusedMaxEdges;
        }
        if matches!(edge.server, Server::External(_)) {
            let key = (edge.client.namespace.clone(), edge.client.name.clone());
            let names = state.external_names.entry(key).or_default();
            if *names >= self.limits.max_external_names {
                self.refuse(RefusedReason::MaxExternalNames);
                return EdgeOutcome::RefusedExternal;
            }
            *names += 1;
        }
        let counter = self.edges.get_or_create_owned(&EdgeLabels::from(edge));
        counter.inc();
        state.counters.insert(edge.clone(), None, counter);
        self.distinct.set(i64::try_from(state.counters.len()).unwrap_or(i64::MAX));
        for workload in workloads(edge) {
            self.workload_info.get_or_create(&WorkloadLabels::from(workload)).set(1);
        }
        EdgeOutcome::Counted
    }

    /// The edge's workloads changed kind since its series was made: `workload_info` says the new kind only.
    fn rekind(&self, was: &Edge, now: &Edge) {
        for (old, new) in workloads(was).zip(workloads(now)).filter(|(old, new)| old.kind != new.kind) {
            self.workload_info.remove(&WorkloadLabels::from(old));
            self.workload_info.get_or_create(&WorkloadLabels::from(new)).set(1);
        }
    }

    /// Counts one TCP connection of `edge` to `port` on the server pod: the edge, and its connection series.
    /// Connection series are capped at `--max-edges` too, apart from the edges.
    pub fn observe_connection(&self, edge: &Edge, port: u16) -> EdgeOutcome {
        let outcome = self.observe(edge);
        if outcome != EdgeOutcome::Counted {
            return outcome;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, counter)) = state.connections.get_mut(edge, Some(port)) {
            counter.inc();
            return EdgeOutcome::Counted;
        }
        if state.connections.len() >= self.limits.max_edges {
            self.refuse(RefusedReason::MaxEdgeConnections);
            return EdgeOutcome::RefusedConnectionSeries;
        }
        let counter = self.connections.get_or_create_owned(&ConnectionLabels { edge: EdgeLabels::from(edge), port });
        counter.inc();
        state.connections.insert(edge.clone(), Some(port), counter);
        EdgeOutcome::Counted
    }

    /// The number of distinct edges counted.
    pub fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).counters.len()
    }

    /// Whether no edge has been counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn refuse(&self, reason: RefusedReason) {
        self.refused.get_or_create(&ReasonLabel(reason)).inc();
    }
}

/// The workloads of an edge: its client, and its server unless that is a name outside the cluster.
fn workloads(edge: &Edge) -> impl Iterator<Item = &Workload> {
    let server = match &edge.server {
        Server::Workload(w) => Some(w),
        Server::External(_) => None,
    };
    std::iter::once(&edge.client).chain(server)
}

/// Whether two observations of one series name their workloads with the same kinds.
fn same_kinds(a: &Edge, b: &Edge) -> bool {
    workloads(a).zip(workloads(b)).all(|(x, y)| x.kind == y.kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::metrics::Enabled;
    use prometheus_client::registry::Registry;

    fn workload(name: &str) -> Workload {
        Workload { name: Arc::from(name), namespace: Arc::from("shop"), kind: Arc::from("Deployment") }
    }

    fn edge(client: &str, server: Server) -> Edge {
        Edge { client: workload(client), server }
    }

    fn external(name: &str) -> Server {
        Server::External(Arc::from(name))
    }

    /// A counter and the registry that serves it.
    fn counter(limits: Limits) -> (EdgeCounter, Registry) {
        let mut root = Registry::default();
        let prefixed = root.sub_registry_with_prefix(crate::exporter::metrics::PREFIX);
        let counter = EdgeCounter::new(limits, &mut Registrar::new(prefixed, Enabled::default()));
        (counter, root)
    }

    fn scrape(reg: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, reg).unwrap();
        text
    }

    #[test]
    fn beyond_max_edges_new_edges_are_refused_and_old_ones_keep_counting() {
        let (counter, reg) = counter(Limits { max_edges: 2, max_external_names: 50 });
        let (a, b, c) = (edge("a", external("x.com")), edge("b", external("x.com")), edge("c", external("x.com")));
        assert_eq!(counter.observe(&a), EdgeOutcome::Counted);
        assert_eq!(counter.observe(&b), EdgeOutcome::Counted);
        assert_eq!(counter.observe(&c), EdgeOutcome::RefusedMaxEdges);
        assert_eq!(counter.observe(&a), EdgeOutcome::Counted);
        let text = scrape(&reg);
        assert!(text.contains(r#"edge_total{client="a",namespace="shop",server="x.com"} 2"#), "{text}");
        assert!(text.contains(r#"edges_refused_total{reason="max_edges"} 1"#), "{text}");
        assert!(text.contains("edges 2\n") && text.contains("edges_max 2\n"), "{text}");
        assert!(!text.contains(r#"client="c""#), "{text}");
    }

    #[test]
    fn external_names_are_capped_per_client_but_in_cluster_servers_are_not() {
        let (counter, reg) = counter(Limits { max_edges: 100, max_external_names: 2 });
        for name in ["a.com", "b.com"] {
            assert_eq!(counter.observe(&edge("web", external(name))), EdgeOutcome::Counted);
        }
        assert_eq!(counter.observe(&edge("web", external("c.com"))), EdgeOutcome::RefusedExternal);
        assert_eq!(counter.observe(&edge("api", external("c.com"))), EdgeOutcome::Counted, "the cap is per client");
        assert_eq!(counter.observe(&edge("web", Server::Workload(workload("db")))), EdgeOutcome::Counted);
        assert_eq!(counter.observe(&edge("web", external("a.com"))), EdgeOutcome::Counted, "known names keep counting");
        assert!(scrape(&reg).contains(r#"edges_refused_total{reason="max_external_names"} 1"#));
    }

    #[test]
    fn connections_count_the_edge_and_their_port_series_under_the_cap() {
        let (counter, reg) = counter(Limits { max_edges: 2, max_external_names: 50 });
        let db = edge("web", Server::Workload(workload("db")));
        assert_eq!(counter.observe_connection(&db, 5432), EdgeOutcome::Counted);
        assert_eq!(counter.observe_connection(&db, 5432), EdgeOutcome::Counted);
        assert_eq!(counter.observe_connection(&db, 9187), EdgeOutcome::Counted);
        assert_eq!(counter.observe_connection(&db, 8000), EdgeOutcome::RefusedConnectionSeries);
        let text = scrape(&reg);
        let series = r#"edge_connections_total{client="web",namespace="shop",server="db",server_namespace="shop""#;
        assert!(text.contains(&format!(r#"{series},port="5432"}} 2"#)), "{text}");
        assert!(text.contains(&format!(r#"{series},port="9187"}} 1"#)), "{text}");
        assert!(text.contains(r#"edge_total{client="web",namespace="shop",server="db",server_namespace="shop"} 4"#));
        assert!(text.contains(r#"edges_refused_total{reason="max_edge_connections"} 1"#), "{text}");
    }

    #[test]
    fn server_namespace_is_absent_for_external_names_and_workloads_get_info() {
        let (counter, reg) = counter(Limits::default());
        counter.observe(&edge("web", external("api.example.com")));
        counter.observe(&edge("web", Server::Workload(workload("db"))));
        let text = scrape(&reg);
        assert!(text.contains(r#"edge_total{client="web",namespace="shop",server="api.example.com"} 1"#), "{text}");
        assert!(
            text.contains(r#"edge_total{client="web",namespace="shop",server="db",server_namespace="shop"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"workload_info{workload="db",namespace="shop",kind="Deployment"} 1"#), "{text}");
        assert!(!text.contains(r#"workload="api.example.com""#), "{text}");
    }

    #[test]
    fn a_server_that_changes_kind_stays_one_series_under_the_cap_and_shows_its_new_kind() {
        let (counter, reg) = counter(Limits { max_edges: 1, max_external_names: 50 });
        let service = Workload { kind: Arc::from("Service"), ..workload("cart") };
        assert_eq!(counter.observe(&edge("web", Server::Workload(service))), EdgeOutcome::Counted);
        assert_eq!(counter.observe(&edge("web", Server::Workload(workload("cart")))), EdgeOutcome::Counted);
        assert_eq!(
            counter.observe_connection(&edge("web", Server::Workload(workload("cart"))), 80),
            EdgeOutcome::Counted
        );
        let text = scrape(&reg);
        assert!(text.contains(r#"edge_total{client="web",namespace="shop",server="cart",server_namespace="shop"} 3"#));
        assert!(text.contains("edges 1\n"), "{text}");
        let refused = |l: &&str| l.starts_with("network_mapper_edges_refused_total{") && !l.ends_with(" 0");
        assert!(!text.lines().any(|l| refused(&l)), "nothing refused: {text}");
        assert!(text.contains(r#"workload_info{workload="cart",namespace="shop",kind="Deployment"} 1"#), "{text}");
        assert!(!text.contains(r#"kind="Service""#), "one kind per workload: {text}");
    }
}
