//! The edge counter: `network_mapper_edge_total{client,namespace,server,server_namespace}`, its companion
//! `network_mapper_workload_info{workload,namespace,kind}`, and the cardinality caps that protect Prometheus.
//!
//! A lock is held only for a hash lookup and an atomic increment, never across `.await`, so a std `Mutex` fits.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::ReasonLabels;
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
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        ("client", &*self.client).encode(encoder.encode_label())?;
        ("namespace", &*self.namespace).encode(encoder.encode_label())?;
        ("server", &*self.server).encode(encoder.encode_label())?;
        if let Some(ns) = &self.server_namespace {
            ("server_namespace", &**ns).encode(encoder.encode_label())?;
        }
        Ok(())
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
}

#[derive(Debug, Default)]
struct State {
    counters: HashMap<Edge, Counter>,
    /// Keyed by (namespace, name) so a client whose kind changes keeps its budget.
    external_names: HashMap<(Arc<str>, Arc<str>), usize>,
}

/// Counts edges under the caps. Cheap to clone; clones share state.
#[derive(Clone, Debug)]
pub struct EdgeCounter {
    state: Arc<Mutex<State>>,
    limits: Limits,
    edges: Family<EdgeLabels, Counter>,
    workload_info: Family<WorkloadLabels, Gauge>,
    distinct: Gauge,
    max: Gauge,
    refused: Family<ReasonLabels, Counter>,
}

impl EdgeCounter {
    /// A counter with these caps.
    pub fn new(limits: Limits) -> Self {
        let max = Gauge::default();
        max.set(i64::try_from(limits.max_edges).unwrap_or(i64::MAX));
        EdgeCounter {
            state: Arc::default(),
            limits,
            edges: Family::default(),
            workload_info: Family::default(),
            distinct: Gauge::default(),
            max,
            refused: Family::default(),
        }
    }

    pub(super) fn register(&self, reg: &mut Registry) {
        reg.register(
            "edge",
            "Observations of a client workload calling a server (DNS answers and new client-side TCP connections)",
            self.edges.clone(),
        );
        reg.register("workload_info", "Kind of every workload that appears in an edge", self.workload_info.clone());
        reg.register("edges", "Distinct edge series exported", self.distinct.clone());
        reg.register("edges_max", "The configured cap on distinct edge series (--max-edges)", self.max.clone());
        reg.register(
            "edges_refused",
            "Observations of new edges refused by a cardinality cap, by reason",
            self.refused.clone(),
        );
        for reason in ["max_edges", "max_external_names"] {
            self.refused.get_or_create(&ReasonLabels { reason }).inc_by(0);
        }
    }

    /// Counts one observation of `edge`.
    pub fn observe(&self, edge: &Edge) -> EdgeOutcome {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(counter) = state.counters.get(edge) {
            counter.inc();
            return EdgeOutcome::Counted;
        }
        if state.counters.len() >= self.limits.max_edges {
            self.refuse("max_edges");
            return EdgeOutcome::RefusedMaxEdges;
        }
        if matches!(edge.server, Server::External(_)) {
            let key = (edge.client.namespace.clone(), edge.client.name.clone());
            let names = state.external_names.entry(key).or_default();
            if *names >= self.limits.max_external_names {
                self.refuse("max_external_names");
                return EdgeOutcome::RefusedExternal;
            }
            *names += 1;
        }
        let counter = self.edges.get_or_create_owned(&EdgeLabels::from(edge));
        counter.inc();
        state.counters.insert(edge.clone(), counter);
        self.distinct.set(i64::try_from(state.counters.len()).unwrap_or(i64::MAX));
        self.workload_info.get_or_create(&WorkloadLabels::from(&edge.client)).set(1);
        if let Server::Workload(server) = &edge.server {
            self.workload_info.get_or_create(&WorkloadLabels::from(server)).set(1);
        }
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

    fn refuse(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabels { reason }).inc();
    }
}
