//! A realistic cluster at scale, for benchmarks of what an agent costs the API server: Nodes with their pod
//! CIDRs, Pods of 5–8 KB as a real API server returns them (managed fields, probes, volumes, container statuses),
//! their owners, Services and EndpointSlices, and the shapes the exporter's map must stay exact for —
//! StatefulSet pods behind headless Services, CronJob and bare Jobs, bare Pods, the Otterize workload-name
//! annotation, hostNetwork DaemonSet pods, pods no Service selects. Deterministic for a seed.
//!
//! It knows the answer a benchmark checks against: which pods run on which node, each pod's address, and the
//! workload identity the exporter must give it ([`ScalePod::workload`]). [`ScaleCluster::replace_pods`] churns
//! pods the way the control plane does, so watch-event counts per kind are realistic.
//!
//! Modules: `layout` (what runs where), `pods` (pod objects through their lifecycle), `objects` (nodes,
//! owners, Services, EndpointSlices), `churn`, `rng`.

mod churn;
mod layout;
mod objects;
mod pods;
mod rng;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fake_apiserver::FakeApi;
pub use churn::Churn;
use layout::{Ipam, Rng, ServiceDef, WorkloadDef};
use pods::Stage;

/// Pods a node accepts at most (the kubelet's default, and Kubernetes' published limit).
pub const MAX_PODS_PER_NODE: usize = 110;

/// The size and seed of a cluster.
#[derive(Clone, Debug)]
pub struct ScaleSpec {
    pub nodes: usize,
    /// Every pod, DaemonSet pods included; at most `nodes` × [`MAX_PODS_PER_NODE`], at least
    /// [`ScaleSpec::minimum_pods`].
    pub pods: usize,
    /// Application namespaces (`team-0`, …), besides `kube-system`, `monitoring` and `logging`.
    pub namespaces: usize,
    pub seed: u64,
}

impl Default for ScaleSpec {
    /// 200 nodes and 20,000 pods in 20 namespaces: the benchmark cluster of issue 20.
    fn default() -> ScaleSpec {
        ScaleSpec { nodes: 200, pods: 20_000, namespaces: 20, seed: 1 }
    }
}

impl ScaleSpec {
    /// The fewest pods that hold every shape: three DaemonSets, CoreDNS, and one of each other shape.
    pub fn minimum_pods(&self) -> usize {
        3 * self.nodes + 30
    }
}

/// A node: its name, address and the pod CIDR its pods' addresses come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleNode {
    pub name: String,
    pub ip: String,
    /// One /24 per node, from 10.244.0.0/16 on (10.245.0.0/16 after 256 nodes, and so on).
    pub pod_cidr: String,
}

/// The workload identity the exporter must give a pod (docs/design.md §4.1): the Otterize annotation's name if
/// any, else the root of the owner chain (Deployment, StatefulSet, DaemonSet, CronJob, Job), else the pod.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub kind: String,
}

/// A pod as the cluster runs it now.
#[derive(Clone, Debug)]
pub struct ScalePod {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub node: String,
    /// The pod's address; the node's for a hostNetwork pod.
    pub ip: String,
    /// Its address is the node's, so it names no workload.
    pub host_network: bool,
    pub workload: Workload,
    /// A Service selects it: its address is in an EndpointSlice.
    pub in_service: bool,
    def: usize,
    created: String,
}

/// The cluster: its objects, generated on demand from what runs where.
pub struct ScaleCluster {
    spec: ScaleSpec,
    rng: Rng,
    nodes: Vec<ScaleNode>,
    ipam: Vec<Ipam>,
    defs: Vec<WorkloadDef>,
    services: Vec<ServiceDef>,
    pods: Vec<ScalePod>,
    /// Pod-network addresses to indexes of `pods`.
    by_ip: BTreeMap<String, usize>,
}

impl ScaleCluster {
    /// Lays the cluster out; panics when `spec.pods` does not fit (see [`ScaleSpec::pods`]).
    pub fn new(spec: ScaleSpec) -> ScaleCluster {
        layout::build(spec)
    }

    pub fn spec(&self) -> &ScaleSpec {
        &self.spec
    }

    pub fn nodes(&self) -> &[ScaleNode] {
        &self.nodes
    }

    pub fn pods(&self) -> &[ScalePod] {
        &self.pods
    }

    pub fn pods_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a ScalePod> + 'a {
        self.pods.iter().filter(move |pod| pod.node == node)
    }

    /// The pod (not on the host network) that has address `ip`.
    pub fn pod_by_ip(&self, ip: &str) -> Option<&ScalePod> {
        self.by_ip.get(ip).map(|&index| &self.pods[index])
    }

    /// Every object, as the API serves them: Nodes, owners, Services, EndpointSlices, then Pods.
    pub fn objects(&self) -> Vec<Value> {
        let mut objects: Vec<Value> = self.nodes.iter().map(|node| self.node_json(node)).collect();
        for def in &self.defs {
            objects.extend(self.owner_objects(def));
        }
        for service in &self.services {
            objects.push(self.service_json(service));
            objects.extend(service.slices.iter().map(|slice| self.slice_json(service, slice)));
        }
        objects.extend(self.pod_objects());
        objects
    }

    /// The Pods alone, running and ready.
    pub fn pod_objects(&self) -> impl Iterator<Item = Value> + '_ {
        self.pods.iter().map(|pod| self.pod_json(pod, Stage::Ready))
    }

    /// Loads every object into `api`.
    pub fn apply_to(&self, api: &FakeApi) {
        api.apply_all(self.objects());
    }
}
