//! What runs where: the workloads of a cluster (system DaemonSets, CoreDNS, StatefulSets, CronJobs, Jobs, bare
//! pods, then Deployments until the pod count is reached), their pods placed on nodes with room and given
//! addresses from the node's pod CIDR the way host-local IPAM does (in turn, never the last one freed first),
//! and the Services that select them with their EndpointSlices.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

pub(super) use super::rng::Rng;
use super::{MAX_PODS_PER_NODE, ScaleCluster, ScaleNode, ScalePod, ScaleSpec, Workload};

/// One node's pod addresses: hosts 2–254 of its /24, handed out in turn.
#[derive(Clone)]
pub(super) struct Ipam {
    base: u32,
    used: [bool; 256],
    next: usize,
    /// Pods on the node (host-network ones included): the kubelet's limit counts them all.
    pub pods: usize,
}

impl Ipam {
    fn new(node: usize) -> Ipam {
        Ipam { base: u32::from_be_bytes([10, 244, 0, 0]) + 256 * node as u32, used: [false; 256], next: 2, pods: 0 }
    }

    pub fn allocate(&mut self) -> String {
        let host = (0..253).map(|i| 2 + (self.next - 2 + i) % 253).find(|&h| !self.used[h]).expect("a free address");
        self.used[host] = true;
        self.next = host + 1;
        std::net::Ipv4Addr::from(self.base + host as u32).to_string()
    }

    pub fn release(&mut self, ip: &str) {
        if let Ok(addr) = ip.parse::<std::net::Ipv4Addr>() {
            self.used[(u32::from(addr) - self.base) as usize & 255] = false;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
    Job,
    Bare,
}

/// A workload and how its pods look.
pub(super) struct WorkloadDef {
    pub shape: Shape,
    /// The controller's name, or the bare pod's.
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// `pod-template-hash` of the ReplicaSet, `controller-revision-hash`, or the CronJob's Job suffix.
    pub hash: String,
    /// The Job's uid (a CronJob's current Job, or a bare Job).
    pub job_uid: String,
    pub replicas: usize,
    pub host_network: bool,
    pub sidecar: bool,
    pub port: u16,
    /// The Otterize `intents.otterize.com/workload-name` annotation.
    pub workload_name: Option<String>,
    pub service: Option<usize>,
    /// The `fieldsV1` of the pods' creator, made once (see `pods::creator_fields`).
    pub creator_fields: OnceLock<Value>,
}

impl WorkloadDef {
    /// The pods' direct controller: (kind, name).
    pub fn owner(&self) -> Option<(&'static str, String)> {
        match self.shape {
            Shape::Deployment => Some(("ReplicaSet", format!("{}-{}", self.name, self.hash))),
            Shape::StatefulSet => Some(("StatefulSet", self.name.clone())),
            Shape::DaemonSet => Some(("DaemonSet", self.name.clone())),
            Shape::CronJob | Shape::Job => Some(("Job", self.job_name())),
            Shape::Bare => None,
        }
    }

    /// The uid of the pods' direct controller.
    pub fn owner_uid(&self) -> String {
        match self.shape {
            Shape::Deployment => format!("{}-rs", self.uid),
            Shape::CronJob | Shape::Job => self.job_uid.clone(),
            _ => self.uid.clone(),
        }
    }

    pub fn job_name(&self) -> String {
        match self.shape {
            Shape::CronJob => format!("{}-{}", self.name, self.hash),
            _ => self.name.clone(),
        }
    }

    fn identity(&self, pod_name: &str) -> Workload {
        let (kind, name) = match self.shape {
            Shape::Bare => ("Pod", pod_name),
            Shape::Deployment => ("Deployment", self.name.as_str()),
            Shape::StatefulSet => ("StatefulSet", self.name.as_str()),
            Shape::DaemonSet => ("DaemonSet", self.name.as_str()),
            Shape::CronJob => ("CronJob", self.name.as_str()),
            Shape::Job => ("Job", self.name.as_str()),
        };
        let name = self.workload_name.as_deref().unwrap_or(name).replace('.', "_");
        Workload { name, namespace: self.namespace.clone(), kind: kind.to_owned() }
    }
}

/// A Service: ClusterIP, or headless (`None`).
pub(super) struct ServiceDef {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub cluster_ip: Option<String>,
    /// The port the Service exposes; the pods' port is the workload's.
    pub port: u16,
    /// Targets the pods' port by its name (`http`) rather than its number.
    pub named_target: bool,
    pub def: usize,
    pub slices: Vec<Slice>,
}

pub(super) struct Slice {
    pub name: String,
    pub uid: String,
    pub endpoints: Vec<SliceEndpoint>,
}

/// An endpoint of a pod, with the conditions the EndpointSlice controller gives it.
#[derive(Clone)]
pub(super) struct SliceEndpoint {
    pub pod: String,
    pub uid: String,
    pub ip: String,
    pub node: String,
    /// The pod's DNS name under a headless Service.
    pub hostname: Option<String>,
    pub ready: bool,
    pub terminating: bool,
}

/// The EndpointSlice controller's default `--max-endpoints-per-slice`.
const ENDPOINTS_PER_SLICE: usize = 100;

pub(super) fn build(spec: ScaleSpec) -> ScaleCluster {
    assert!(spec.pods <= spec.nodes * MAX_PODS_PER_NODE, "{} pods do not fit on {} nodes", spec.pods, spec.nodes);
    assert!(
        spec.pods >= spec.minimum_pods(),
        "{} pods cannot hold every shape: {} at least",
        spec.pods,
        spec.minimum_pods()
    );
    let nodes = (0..spec.nodes).map(node).collect();
    let mut cluster = ScaleCluster {
        rng: Rng::new(spec.seed),
        ipam: (0..spec.nodes).map(Ipam::new).collect(),
        nodes,
        defs: Vec::new(),
        services: Vec::new(),
        pods: Vec::new(),
        by_ip: BTreeMap::new(),
        spec,
    };
    cluster.add_system();
    cluster.add_shapes();
    cluster.add_deployments();
    cluster
}

fn node(index: usize) -> ScaleNode {
    let cidr = std::net::Ipv4Addr::from(u32::from_be_bytes([10, 244, 0, 0]) + 256 * index as u32);
    let ip = std::net::Ipv4Addr::from(u32::from_be_bytes([172, 16, 0, 10]) + index as u32);
    ScaleNode { name: format!("node-{index:04}"), ip: ip.to_string(), pod_cidr: format!("{cidr}/24") }
}

/// Application names, numbered per use (`cart-3`).
const APPS: [&str; 16] = [
    "cart",
    "checkout",
    "payments",
    "search",
    "catalog",
    "orders",
    "users",
    "auth",
    "inventory",
    "shipping",
    "reviews",
    "recommend",
    "notify",
    "gateway",
    "pricing",
    "ledger",
];

/// What kind of workload to add, before its pods exist.
struct Plan {
    pub shape: Shape,
    pub name: String,
    pub namespace: String,
    pub replicas: usize,
    pub host_network: bool,
    pub port: u16,
    pub workload_name: Option<String>,
    /// `Some(headless)`: a Service selects the pods.
    pub service: Option<bool>,
}

impl Plan {
    fn new(shape: Shape, name: &str, namespace: &str, replicas: usize) -> Plan {
        Plan {
            shape,
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            replicas,
            host_network: false,
            port: 8080,
            workload_name: None,
            service: None,
        }
    }
}

impl ScaleCluster {
    fn add_system(&mut self) {
        let nodes = self.spec.nodes;
        let proxy =
            Plan { host_network: true, port: 10249, ..Plan::new(Shape::DaemonSet, "kube-proxy", "kube-system", nodes) };
        let exporter = Plan {
            host_network: true,
            port: 9100,
            service: Some(false),
            ..Plan::new(Shape::DaemonSet, "node-exporter", "monitoring", nodes)
        };
        let logs = Plan { port: 2020, ..Plan::new(Shape::DaemonSet, "fluent-bit", "logging", nodes) };
        let dns = Plan { port: 53, service: Some(false), ..Plan::new(Shape::Deployment, "coredns", "kube-system", 2) };
        for plan in [proxy, exporter, logs, dns] {
            self.add(plan);
        }
    }

    /// StatefulSets behind headless Services, CronJobs, bare Jobs and bare pods, about one per 4,000 pods.
    fn add_shapes(&mut self) {
        let many = (self.spec.pods / 4_000).max(1);
        for k in 0..many {
            let namespace = self.namespace(k);
            let store = ["redis", "kafka", "postgres"][k % 3];
            self.add(Plan {
                service: Some(true),
                port: 6379,
                ..Plan::new(Shape::StatefulSet, &format!("{store}-{k}"), &namespace, 3)
            });
            self.add(Plan::new(Shape::CronJob, &format!("report-{k}"), &namespace, 1));
            self.add(Plan::new(Shape::Job, &format!("db-migrate-{k}"), &namespace, 1));
            self.add(Plan::new(Shape::Bare, &format!("debug-{k}"), &namespace, 1));
            let annotated = Plan {
                workload_name: Some(format!("legacy-toolbox-{k}")),
                ..Plan::new(Shape::Bare, &format!("toolbox-{k}"), &namespace, 1)
            };
            self.add(annotated);
        }
    }

    /// Deployments until the pod count is reached: most behind a Service, every 8th a worker no Service
    /// selects, every 40th named by the Otterize annotation.
    fn add_deployments(&mut self) {
        const REPLICAS: [usize; 12] = [1, 2, 2, 3, 3, 3, 4, 5, 6, 8, 10, 12];
        let mut k = 0;
        while self.pods.len() < self.spec.pods {
            let replicas = REPLICAS[self.rng.below(REPLICAS.len())].min(self.spec.pods - self.pods.len());
            let name = format!("{}-{k}", APPS[k % APPS.len()]);
            let mut plan = Plan::new(Shape::Deployment, &name, &self.namespace(k), replicas);
            plan.service = (k % 8 != 7).then_some(false);
            plan.workload_name = (k % 40 == 39).then(|| format!("{name}-intents"));
            self.add(plan);
            k += 1;
        }
    }

    fn namespace(&self, k: usize) -> String {
        format!("team-{}", k % self.spec.namespaces.max(1))
    }

    fn add(&mut self, plan: Plan) {
        let def = self.defs.len();
        let hash = match plan.shape {
            Shape::CronJob => format!("{}", 29_400_000 + self.rng.below(100_000)),
            _ => self.rng.suffix(10),
        };
        let service = plan.service.map(|_| self.services.len());
        let (uid, job_uid) = (self.rng.uid(), self.rng.uid());
        self.defs.push(WorkloadDef {
            shape: plan.shape,
            name: plan.name,
            namespace: plan.namespace,
            uid,
            hash,
            job_uid,
            replicas: plan.replicas,
            host_network: plan.host_network,
            sidecar: plan.shape == Shape::Deployment && def % 6 == 1,
            port: plan.port,
            workload_name: plan.workload_name,
            service,
            creator_fields: OnceLock::new(),
        });
        let pods: Vec<usize> =
            (0..plan.replicas).map(|ordinal| self.add_pod(def, ordinal, crate::k8s::LONG_AGO)).collect();
        if let Some(headless) = plan.service {
            self.add_service(def, headless, &pods);
        }
    }

    /// A new pod of workload `def` (its `ordinal`-th), placed and addressed; returns its index.
    pub(super) fn add_pod(&mut self, def: usize, ordinal: usize, created: &str) -> usize {
        let pod = self.new_pod(def, ordinal, created);
        self.pods.push(pod);
        let index = self.pods.len() - 1;
        if !self.pods[index].host_network {
            self.by_ip.insert(self.pods[index].ip.clone(), index);
        }
        index
    }

    /// A pod of `def`, on a node with room (a DaemonSet's `ordinal`-th on node `ordinal`), with an address.
    pub(super) fn new_pod(&mut self, def: usize, ordinal: usize, created: &str) -> ScalePod {
        let shape = self.defs[def].shape;
        let node = if shape == Shape::DaemonSet { ordinal } else { self.place() };
        let (suffix, uid) = (self.rng.suffix(5), self.rng.uid());
        let d = &self.defs[def];
        let name = match shape {
            Shape::Bare => d.name.clone(),
            Shape::StatefulSet => format!("{}-{ordinal}", d.name),
            Shape::Deployment => format!("{}-{}-{suffix}", d.name, d.hash),
            Shape::DaemonSet => format!("{}-{suffix}", d.name),
            Shape::CronJob | Shape::Job => format!("{}-{suffix}", d.job_name()),
        };
        self.ipam[node].pods += 1;
        let ip = if d.host_network { self.nodes[node].ip.clone() } else { self.ipam[node].allocate() };
        ScalePod {
            workload: d.identity(&name),
            namespace: d.namespace.clone(),
            host_network: d.host_network,
            in_service: d.service.is_some(),
            name,
            uid,
            node: self.nodes[node].name.clone(),
            ip,
            def,
            created: created.to_owned(),
        }
    }

    /// A random node with room, the next one with room if it has none.
    fn place(&mut self) -> usize {
        let start = self.rng.below(self.nodes.len());
        (0..self.nodes.len())
            .map(|i| (start + i) % self.nodes.len())
            .find(|&n| self.ipam[n].pods < MAX_PODS_PER_NODE)
            .expect("room on some node")
    }

    fn add_service(&mut self, def: usize, headless: bool, pods: &[usize]) {
        let d = &self.defs[def];
        let (name, namespace) = (d.name.clone(), d.namespace.clone());
        let cluster_ip = match (headless, name.as_str()) {
            (true, _) => None,
            // kube-dns has the address every pod's resolv.conf names.
            (false, "coredns") => Some("10.96.0.10".to_owned()),
            (false, _) => Some(
                std::net::Ipv4Addr::from(u32::from_be_bytes([10, 96, 1, 0]) + self.services.len() as u32).to_string(),
            ),
        };
        let endpoints: Vec<SliceEndpoint> = pods.iter().map(|&p| endpoint_of(&self.pods[p], headless, true)).collect();
        let mut slices = Vec::new();
        for chunk in endpoints.chunks(ENDPOINTS_PER_SLICE) {
            slices.push(Slice {
                name: format!("{name}-{}", self.rng.suffix(5)),
                uid: self.rng.uid(),
                endpoints: chunk.to_vec(),
            });
        }
        let port = if d.port == 8080 { 80 } else { d.port };
        let named_target = self.services.len() % 3 == 2 && d.shape == Shape::Deployment;
        let uid = self.rng.uid();
        self.services.push(ServiceDef { name, namespace, uid, cluster_ip, port, named_target, def, slices });
    }
}

/// The endpoint of `pod` (under a headless Service, with its DNS name).
pub(super) fn endpoint_of(pod: &ScalePod, headless: bool, ready: bool) -> SliceEndpoint {
    SliceEndpoint {
        pod: pod.name.clone(),
        uid: pod.uid.clone(),
        ip: pod.ip.clone(),
        node: pod.node.clone(),
        hostname: headless.then(|| pod.name.clone()),
        ready,
        terminating: false,
    }
}
