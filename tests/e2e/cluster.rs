//! A cluster described as data: workloads with their pods (IP, node, hostNetwork), Services (ClusterIP or
//! headless) and a few names outside the cluster. From one description come the three views that must agree on a
//! real node: the Kubernetes objects the fake API server serves, the records the kube-dns pod (dnsmasq) answers
//! with, and the kube-proxy DNAT rules of the node namespace.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

/// The cluster domain (the pods' resolv.conf search list ends with it; the exporter detects it from there).
pub const DOMAIN: &str = "cluster.local";
/// The simulated node: the exporter counts clients on it only.
pub const NODE: &str = "node-a";
/// Where all objects were created, long before any observation (identity refuses observations older than a pod).
const LONG_AGO: &str = "2026-01-01T00:00:00Z";

/// The controller at the root of a pod's owner chain (DESIGN §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
}

/// One pod of a workload: its IP, its node, and whether it uses the node's network.
#[derive(Clone, Debug)]
pub struct Placement {
    pub ip: Ipv4Addr,
    pub node: &'static str,
    pub host_network: bool,
}

impl Placement {
    pub fn on(node: &'static str, ip: [u8; 4]) -> Placement {
        Placement { ip: Ipv4Addr::from(ip), node, host_network: false }
    }
}

/// A workload and its pods.
#[derive(Clone, Debug)]
pub struct Workload {
    pub name: &'static str,
    pub namespace: &'static str,
    pub controller: Controller,
    pub pods: Vec<Placement>,
    /// Created now rather than long ago (a pod added while the exporter runs).
    pub created: Option<String>,
}

/// A pod as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodName {
    pub name: String,
    pub namespace: &'static str,
    pub ip: Ipv4Addr,
    pub node: &'static str,
    pub host_network: bool,
    /// StatefulSet pods: their stable hostname (`redis-0`).
    pub hostname: Option<String>,
}

impl Workload {
    /// Pod names the way the controllers generate them: `<deploy>-<rs hash>-<5 chars>`, `<sts>-<ordinal>`,
    /// `<ds>-<5 chars>`, `<cronjob>-<scheduled minute>-<5 chars>`.
    pub fn pod_names(&self) -> Vec<PodName> {
        self.pods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (name, hostname) = match self.controller {
                    Controller::StatefulSet => (format!("{}-{i}", self.name), Some(format!("{}-{i}", self.name))),
                    _ => (format!("{}-{}", self.owner_name(), suffix(self.name, i)), None),
                };
                PodName {
                    name,
                    namespace: self.namespace,
                    ip: p.ip,
                    node: p.node,
                    host_network: p.host_network,
                    hostname,
                }
            })
            .collect()
    }

    /// The pods' direct owner: the ReplicaSet of a Deployment, the Job of a CronJob, else the workload itself.
    fn owner_name(&self) -> String {
        match self.controller {
            Controller::Deployment => format!("{}-{}", self.name, hash_label(self.name, 10)),
            Controller::CronJob => format!("{}-29400960", self.name),
            Controller::StatefulSet | Controller::DaemonSet => self.name.to_owned(),
        }
    }

    fn kind(&self) -> &'static str {
        match self.controller {
            Controller::Deployment => "Deployment",
            Controller::StatefulSet => "StatefulSet",
            Controller::DaemonSet => "DaemonSet",
            Controller::CronJob => "CronJob",
        }
    }

    /// The Pods plus the intermediate owners (ReplicaSet, Job) the exporter reads the chain through.
    pub fn objects(&self) -> Vec<Value> {
        let created = self.created.as_deref().unwrap_or(LONG_AGO);
        let owner = self.owner_name();
        let mut objects = Vec::new();
        let direct = match self.controller {
            Controller::Deployment => {
                objects.push(owned("apps/v1", "ReplicaSet", &owner, self.namespace, "Deployment", self.name, created));
                ("apps/v1", "ReplicaSet")
            }
            Controller::CronJob => {
                objects.push(owned("batch/v1", "Job", &owner, self.namespace, "CronJob", self.name, created));
                ("batch/v1", "Job")
            }
            Controller::StatefulSet | Controller::DaemonSet => ("apps/v1", self.kind()),
        };
        for pod in self.pod_names() {
            objects.push(pod_object(&pod, direct, &owner, created));
        }
        objects
    }
}

fn owned(api: &str, kind: &str, name: &str, ns: &str, owner_kind: &str, owner: &str, created: &str) -> Value {
    let owner_api = if owner_kind == "CronJob" { "batch/v1" } else { "apps/v1" };
    json!({"apiVersion": api, "kind": kind, "metadata": {
        "name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}"), "creationTimestamp": created,
        "ownerReferences": [{"apiVersion": owner_api, "kind": owner_kind, "name": owner,
                             "uid": format!("uid-{ns}-{owner}"), "controller": true}]}})
}

fn pod_object(pod: &PodName, (owner_api, owner_kind): (&str, &str), owner: &str, created: &str) -> Value {
    let mut spec = json!({"nodeName": pod.node, "hostNetwork": pod.host_network,
                          "containers": [{"name": "app", "image": format!("example.com/shop/{owner}:1.0")}]});
    if let Some(hostname) = &pod.hostname {
        spec["hostname"] = json!(hostname);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": pod.name, "namespace": pod.namespace, "uid": format!("uid-{}-{}", pod.namespace, pod.name),
            "creationTimestamp": created,
            "ownerReferences": [{"apiVersion": owner_api, "kind": owner_kind, "name": owner,
                                 "uid": format!("uid-{}-{owner}", pod.namespace), "controller": true}]},
           "spec": spec,
           "status": {"phase": "Running", "podIP": pod.ip.to_string(), "podIPs": [{"ip": pod.ip.to_string()}]}})
}

/// A Service in front of one workload's pods.
#[derive(Clone, Debug)]
pub struct Service {
    pub name: &'static str,
    pub namespace: &'static str,
    /// `None`: headless (`clusterIP: None`); DNS answers with the pod IPs and per-pod names.
    pub cluster_ip: Option<Ipv4Addr>,
    pub port: u16,
    /// The workload whose pods back it; `None` for `kubernetes` (the API server is no pod).
    pub backend: Option<&'static str>,
    /// A named `targetPort` and the number the pods' container port of that name has; `None`: the pods
    /// listen on `port` itself.
    pub target: Option<(&'static str, u16)>,
}

impl Service {
    pub fn fqdn(&self) -> String {
        format!("{}.{}.svc.{DOMAIN}", self.name, self.namespace)
    }

    /// The port the backing pods listen on.
    pub fn target_port(&self) -> u16 {
        self.target.map_or(self.port, |(_, n)| n)
    }

    /// `spec.ports` and the EndpointSlice's `ports`: DNS on 53 over UDP and TCP (as kube-dns declares it), else
    /// one TCP port named after the Service.
    fn ports(&self) -> (Vec<Value>, Vec<Value>) {
        if self.port == 53 {
            let both = |p| {
                vec![
                    json!({"name": "dns", "port": p, "protocol": "UDP"}),
                    json!({"name": "dns-tcp", "port": p, "protocol": "TCP"}),
                ]
            };
            return (both(53), both(53));
        }
        let target = self.target.map_or(json!(self.port), |(name, _)| json!(name));
        (
            vec![json!({"name": self.name, "port": self.port, "targetPort": target, "protocol": "TCP"})],
            vec![json!({"name": self.name, "port": self.target_port(), "protocol": "TCP"})],
        )
    }
}

/// A name outside the cluster and the documentation address (203.0.113.0/24) it resolves to; never connected to.
#[derive(Clone, Debug)]
pub struct External {
    pub name: &'static str,
    pub ip: Ipv4Addr,
}

/// The whole cluster.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub workloads: Vec<Workload>,
    pub services: Vec<Service>,
    pub externals: Vec<External>,
    /// Domains kube-dns forwards to a resolver outside the cluster: (domain, resolver address).
    pub upstreams: Vec<(&'static str, Ipv4Addr)>,
}

impl Cluster {
    pub fn workload(&self, name: &str) -> &Workload {
        self.workloads.iter().find(|w| w.name == name).unwrap_or_else(|| panic!("no workload {name}"))
    }

    pub fn service(&self, name: &str) -> &Service {
        self.services.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no service {name}"))
    }

    /// Pods of `service`'s backend.
    pub fn backing_pods(&self, service: &Service) -> Vec<PodName> {
        service.backend.map(|w| self.workload(w).pod_names()).unwrap_or_default()
    }

    /// Every object the API serves, as one `List` (what `FakeApi::apply_yaml` takes; JSON is YAML).
    pub fn api_list(&self) -> String {
        let mut items: Vec<Value> =
            self.workloads.iter().filter(|w| w.created.is_none()).flat_map(Workload::objects).collect();
        for service in &self.services {
            items.push(self.service_object(service));
            items.extend(self.slice_object(service));
        }
        json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
    }

    fn service_object(&self, s: &Service) -> Value {
        let ip = s.cluster_ip.map_or("None".to_owned(), |ip| ip.to_string());
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {
                "name": s.name, "namespace": s.namespace, "creationTimestamp": LONG_AGO},
               "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "ports": s.ports().0}})
    }

    fn slice_object(&self, s: &Service) -> Option<Value> {
        let endpoints: Vec<Value> = self
            .backing_pods(s)
            .iter()
            .map(|p| {
                let mut ep = json!({"addresses": [p.ip.to_string()], "conditions": {"ready": true}, "nodeName": p.node,
                                    "targetRef": {"kind": "Pod", "name": p.name, "namespace": p.namespace}});
                if let Some(h) = &p.hostname {
                    ep["hostname"] = json!(h);
                }
                ep
            })
            .collect();
        s.backend?;
        Some(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
               "metadata": {"name": format!("{}-{}", s.name, hash_label(s.name, 5)), "namespace": s.namespace,
                            "creationTimestamp": LONG_AGO, "labels": {"kubernetes.io/service-name": s.name}},
               "endpoints": endpoints, "ports": s.ports().1}))
    }

    /// dnsmasq arguments that make it answer like CoreDNS for this cluster: authoritative for the cluster domain
    /// (search-path misses get NXDOMAIN), a record per Service, per-pod names of headless Services, externals.
    pub fn dns_records(&self) -> Vec<String> {
        let mut args = vec![format!("--local=/{DOMAIN}/"), "--local=/example/".to_owned()];
        for s in &self.services {
            match s.cluster_ip {
                Some(ip) => args.push(format!("--host-record={},{ip}", s.fqdn())),
                None => {
                    for pod in self.backing_pods(s) {
                        args.push(format!("--host-record={},{}", s.fqdn(), pod.ip));
                        let host = pod.hostname.as_deref().unwrap_or(&pod.name);
                        args.push(format!("--host-record={host}.{},{}", s.fqdn(), pod.ip));
                    }
                }
            }
        }
        args.extend(self.externals.iter().map(|e| format!("--host-record={},{}", e.name, e.ip)));
        args.extend(self.upstreams.iter().map(|(domain, ip)| format!("--server=/{domain}/{ip}")));
        args
    }

    /// kube-proxy's view: (ClusterIP, port, protocol, backend pod IP, target port) for every Service with a
    /// ClusterIP and a backend. One backend each, so the DNAT target is deterministic.
    pub fn nat_rules(&self) -> Vec<(Ipv4Addr, u16, &'static str, Ipv4Addr, u16)> {
        let mut rules = Vec::new();
        for s in &self.services {
            let (Some(ip), Some(pod)) = (s.cluster_ip, self.backing_pods(s).first().cloned()) else { continue };
            let protocols: &[&str] = if s.port == 53 { &["udp", "tcp"] } else { &["tcp"] };
            rules.extend(protocols.iter().map(|proto| (ip, s.port, *proto, pod.ip, s.target_port())));
        }
        rules
    }
}

/// A stable pseudo-random label of `len` characters from the alphabet Kubernetes uses for generated names.
fn hash_label(seed: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..len)
        .map(|_| {
            h = h.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ALPHABET[(h >> 33) as usize % ALPHABET.len()] as char
        })
        .collect()
}

fn suffix(seed: &str, i: usize) -> String {
    hash_label(&format!("{seed}/{i}"), 5)
}
