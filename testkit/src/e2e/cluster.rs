//! A cluster described as data: workloads with their pods (IP, node, hostNetwork), Services (ClusterIP or
//! headless) and a few names outside the cluster. From one description come the three views that must agree on a
//! real node: the Kubernetes objects the fake API server serves, the records the kube-dns pod (dnsmasq) answers
//! with, and the kube-proxy DNAT rules of the node namespace.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::k8s;

/// The cluster domain (the pods' resolv.conf search list ends with it; the exporter detects it from there).
pub const DOMAIN: &str = "cluster.local";
/// The simulated node: the exporter counts clients on it only.
pub const NODE: &str = "node-a";

/// The controller at the root of a pod's owner chain (docs/design.md §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
}

/// The mesh data plane a workload's pods run; the lab's proxies are in [`super::mesh`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataplane {
    /// An Istio sidecar; `dns_capture` is `ISTIO_META_DNS_CAPTURE` (UDP 53 answered by the proxy on 15053).
    IstioSidecar {
        dns_capture: bool,
    },
    /// Istio ambient with in-pod redirection (its DNS capture is on, the default since Istio 1.25).
    IstioAmbient,
    Linkerd,
}

impl Dataplane {
    /// The annotation the mesh writes on the pod (the injector, or istio-cni for ambient).
    pub fn annotation(self) -> (&'static str, &'static str) {
        match self {
            Dataplane::IstioSidecar { .. } => {
                ("sidecar.istio.io/status", r#"{"containers":["istio-proxy"],"initContainers":["istio-init"]}"#)
            }
            Dataplane::IstioAmbient => ("ambient.istio.io/redirection", "enabled"),
            Dataplane::Linkerd => ("linkerd.io/proxy-version", "edge-25.1.1"),
        }
    }
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
    /// The mesh proxy in its pods, if any.
    pub dataplane: Option<Dataplane>,
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

    /// The Pods, the intermediate owners (ReplicaSet, Job) the exporter reads the chain through, and the
    /// controller itself (its `spec.selector` is what `netmap-reduce --format networkpolicy` selects pods by).
    pub fn objects(&self) -> Vec<Value> {
        let created = self.created.as_deref().unwrap_or(k8s::LONG_AGO);
        let owner = self.owner_name();
        let mut objects = vec![self.controller_object(created)];
        let direct = match self.controller {
            Controller::Deployment => {
                let mut rs = owned("ReplicaSet", &owner, self.namespace, "Deployment", self.name, created);
                rs["spec"] = json!({"selector": {"matchLabels": self.volatile_labels(0)}});
                objects.push(rs);
                ("apps/v1", "ReplicaSet")
            }
            Controller::CronJob => {
                let mut job = owned("Job", &owner, self.namespace, "CronJob", self.name, created);
                job["spec"] = json!({"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": self.uid()}}});
                objects.push(job);
                ("batch/v1", "Job")
            }
            Controller::StatefulSet | Controller::DaemonSet => ("apps/v1", self.kind()),
        };
        for (index, pod) in self.pod_names().iter().enumerate() {
            let mut built = k8s::Pod::new(pod.namespace, &pod.name, &pod.ip.to_string())
                .owner(direct.1, &owner)
                .node(pod.node)
                .created(created)
                .host_network(pod.host_network);
            if let Some(hostname) = &pod.hostname {
                built = built.hostname(hostname);
            }
            if let Some((key, value)) = self.dataplane.map(Dataplane::annotation) {
                built = built.with(json!({"metadata": {"annotations": {key: value}}}));
            }
            let mut object = built.json();
            let mut labels = self.stable_labels();
            labels.as_object_mut().unwrap().extend(self.volatile_labels(index).as_object().unwrap().clone());
            object["metadata"]["labels"] = labels;
            objects.push(object);
        }
        objects
    }

    /// The labels a workload's pods keep across rollouts, scale-ups and runs: what its selector names.
    pub fn stable_labels(&self) -> Value {
        json!({"app.kubernetes.io/name": self.name})
    }

    fn uid(&self) -> String {
        format!("uid-{}-{}", self.namespace, self.owner_name())
    }

    /// The per-revision, per-pod or per-run labels each controller adds (never to be selected on).
    fn volatile_labels(&self, pod_index: usize) -> Value {
        match self.controller {
            Controller::Deployment => json!({"pod-template-hash": hash_label(self.name, 10)}),
            Controller::StatefulSet => json!({
                "controller-revision-hash": format!("{}-{}", self.name, hash_label(self.name, 10)),
                "statefulset.kubernetes.io/pod-name": format!("{}-{pod_index}", self.name),
                "apps.kubernetes.io/pod-index": pod_index.to_string()}),
            Controller::DaemonSet => json!({"controller-revision-hash": hash_label(self.name, 10),
                                            "pod-template-generation": "1"}),
            Controller::CronJob => json!({
                "job-name": self.owner_name(), "controller-uid": self.uid(),
                "batch.kubernetes.io/job-name": self.owner_name(), "batch.kubernetes.io/controller-uid": self.uid()}),
        }
    }

    /// The Deployment, StatefulSet, DaemonSet or CronJob object.
    fn controller_object(&self, created: &str) -> Value {
        let host_network = self.pods.iter().any(|p| p.host_network);
        let template = json!({"metadata": {"labels": self.stable_labels()},
                              "spec": {"hostNetwork": host_network,
                                       "containers": [{"name": "app", "image": format!("example.com/shop/{}:1.0", self.name)}]}});
        let selector = json!({"matchLabels": self.stable_labels()});
        let (api, spec) = match self.controller {
            Controller::CronJob => {
                let mut job_template = template.clone();
                job_template["spec"]["restartPolicy"] = json!("OnFailure");
                ("batch/v1", json!({"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": job_template}}}))
            }
            _ => ("apps/v1", json!({"selector": selector, "template": template})),
        };
        json!({"apiVersion": api, "kind": self.kind(), "metadata": {
                "name": self.name, "namespace": self.namespace, "uid": format!("uid-{}-{}", self.namespace, self.name),
                "creationTimestamp": created}, "spec": spec})
    }
}

/// An owner object (ReplicaSet, Job) created at `created`.
fn owned(kind: &str, name: &str, namespace: &str, owner_kind: &str, owner: &str, created: &str) -> Value {
    let mut object = k8s::owned(kind, namespace, name, owner_kind, owner);
    object["metadata"]["creationTimestamp"] = json!(created);
    object
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
        k8s::list(items)
    }

    /// Every object, including workloads added later (reviews): what `kubectl get
    /// deploy,sts,ds,cronjobs,jobs,pods,services,endpointslices -A -o yaml` shows once the shop runs.
    pub fn inventory_list(&self) -> Value {
        let mut items = Vec::new();
        for workload in &self.workloads {
            // A workload added later (empty `created` until then) has long existed by the time of the snapshot.
            let mut workload = workload.clone();
            workload.created = workload.created.filter(|c| !c.is_empty());
            items.extend(workload.objects());
        }
        for service in &self.services {
            items.push(self.service_object(service));
            items.extend(self.slice_object(service));
        }
        json!({"apiVersion": "v1", "kind": "List", "items": items})
    }

    fn service_object(&self, s: &Service) -> Value {
        let ip = s.cluster_ip.map(|ip| ip.to_string());
        let mut service = k8s::service(s.namespace, s.name, ip.as_deref(), s.port);
        service["spec"]["selector"] = self.service_selector(s);
        service["spec"]["ports"] = Value::Array(s.ports().0);
        service
    }

    /// The backend's stable labels (none for `kubernetes`, whose endpoints are not pods).
    fn service_selector(&self, s: &Service) -> Value {
        s.backend.map_or(Value::Null, |b| self.workload(b).stable_labels())
    }

    fn slice_object(&self, s: &Service) -> Option<Value> {
        s.backend?;
        let pods = self.backing_pods(s);
        let ips: Vec<String> = pods.iter().map(|p| p.ip.to_string()).collect();
        let endpoints: Vec<k8s::Endpoint<'_>> = pods
            .iter()
            .zip(&ips)
            .map(|(p, ip)| k8s::Endpoint { ip, pod: &p.name, node: p.node, hostname: p.hostname.as_deref() })
            .collect();
        let name = format!("{}-{}", s.name, hash_label(s.name, 5));
        let mut slice = k8s::endpoint_slice(s.namespace, s.name, &name, s.port, &endpoints);
        slice["ports"] = Value::Array(s.ports().1);
        Some(slice)
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
