//! Compact projections of the Kubernetes objects that identity resolution needs.
//!
//! Whole objects are large (a Pod is kilobytes of spec and status); the index keeps only these records, whether
//! they came from `--inventory-file` or from the API, so the resolver never knows where its data came from.

use std::net::IpAddr;
use std::sync::Arc;

use super::naming;
use crate::IpNet;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::mesh::Mesh;

/// The label an EndpointSlice uses to name its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// An owner reference: the next link of an owner chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OwnerRef {
    /// The owner's kind, e.g. `ReplicaSet`.
    pub kind: Arc<str>,
    /// The owner's name.
    pub name: Arc<str>,
}

/// What resolution needs of a Pod. Fields are laid out in the order resolution reads them (C layout keeps
/// it), so one lookup touches as few cache lines as possible.
#[derive(Clone, Debug, PartialEq)]
#[repr(C)]
pub struct PodRecord {
    /// The pod's namespace.
    pub namespace: Arc<str>,
    /// The pod's name.
    pub name: Arc<str>,
    /// `spec.hostNetwork`: such a pod's IP is the node's, so it is never an identity.
    pub host_network: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// `status.phase` is `Succeeded` or `Failed`: the pod no longer holds its IP.
    pub finished: bool,
    /// The service mesh whose proxy runs in the pod, from its mesh's annotation (docs/counting.md, "Service
    /// meshes"): its connections on the wire are the proxy's.
    pub mesh: Option<Mesh>,
    /// `metadata.creationTimestamp`, in seconds since the epoch.
    pub created_unix: Option<i64>,
    /// `spec.nodeName`, once scheduled.
    pub node_name: Option<Arc<str>>,
    /// The Otterize workload-name annotation, if any.
    pub workload_override: Option<Arc<str>>,
    /// The controlling owner (or the first owner when none is marked controller).
    pub owner: Option<OwnerRef>,
    /// `status.podIPs` (or `status.podIP`).
    pub ips: Vec<IpAddr>,
}

/// What resolution needs of any object that can own a pod (ReplicaSet, Job, or a custom owner).
#[derive(Clone, Debug, PartialEq)]
pub struct OwnerRecord {
    /// The object's namespace.
    pub namespace: Arc<str>,
    /// The object's kind.
    pub kind: Arc<str>,
    /// The object's name.
    pub name: Arc<str>,
    /// The object's own owner, if any.
    pub owner: Option<OwnerRef>,
}

/// What resolution needs of a Service (C layout: the fields resolution reads first).
#[derive(Clone, Debug, PartialEq)]
#[repr(C)]
pub struct ServiceRecord {
    /// The service's namespace.
    pub namespace: Arc<str>,
    /// The service's name.
    pub name: Arc<str>,
    /// `spec.type` is `ExternalName`: the service is its own server.
    pub external_name: bool,
    /// `spec.clusterIPs` (or `spec.clusterIP`), without `None`.
    pub cluster_ips: Vec<IpAddr>,
    /// `spec.ports`: what a connection to a ClusterIP port reaches on the backing pods.
    pub ports: Vec<ServicePort>,
}

/// One entry of a Service's `spec.ports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// The port's name (empty when the Service has a single unnamed port, as the API allows).
    pub name: Arc<str>,
    /// `port`: what clients dial on the ClusterIP.
    pub port: u16,
    /// `protocol` is TCP (the default) rather than UDP or SCTP.
    pub tcp: bool,
    /// `targetPort`: a number, or the name of a container port (resolved per pod in the EndpointSlices).
    pub target: TargetPort,
}

/// A Service port's `targetPort`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPort {
    /// A port number on the pods (the API defaults it to `port`).
    Number(u16),
    /// A container port name; the EndpointSlice's port of the same Service-port name carries its number.
    Name(Arc<str>),
}

/// One entry of an EndpointSlice's `ports`: the Service port's name and the number it reaches on the pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePort {
    /// The Service port's name (empty when unnamed).
    pub name: Arc<str>,
    /// The port on the endpoints (a named `targetPort` already resolved).
    pub port: u16,
    /// TCP rather than UDP or SCTP.
    pub tcp: bool,
}

/// The port DNS is served on.
pub const DNS_PORT: u16 = 53;

/// What resolution needs of an EndpointSlice.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceRecord {
    /// The slice's namespace.
    pub namespace: Arc<str>,
    /// The slice's name.
    pub name: Arc<str>,
    /// The Service it belongs to (label `kubernetes.io/service-name`).
    pub service: Option<Arc<str>>,
    /// Its endpoints, in order.
    pub endpoints: Vec<EndpointRecord>,
    /// Its ports.
    pub ports: Vec<SlicePort>,
}

/// What the capture filter needs of a Node: its pod CIDRs (docs/design.md §7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    /// The node's name.
    pub name: Arc<str>,
    /// `spec.podCIDRs` (or `spec.podCIDR`).
    pub pod_cidrs: Vec<IpNet>,
}

impl NodeRecord {
    /// Projects a Node. `None` when it lacks a name.
    pub fn from_node(node: &Node) -> Option<NodeRecord> {
        let spec = node.spec.as_ref();
        let cidrs = spec.and_then(|s| s.pod_cidrs.clone().or_else(|| s.pod_cidr.clone().map(|c| vec![c])));
        let pod_cidrs = cidrs.unwrap_or_default().iter().filter_map(|c| c.parse().ok()).collect();
        Some(NodeRecord { name: Arc::from(node.metadata.name.as_deref()?), pod_cidrs })
    }
}

/// One endpoint of an EndpointSlice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointRecord {
    /// The endpoint's addresses.
    pub addresses: Vec<IpAddr>,
    /// `targetRef.name` when `targetRef.kind` is `Pod`.
    pub pod: Option<Arc<str>>,
    /// `targetRef.uid` of that pod: a StatefulSet pod recreated under its old name is another pod.
    pub pod_uid: Option<Arc<str>>,
    /// `hostname` (headless services: the first label of a per-pod name).
    pub hostname: Option<Arc<str>>,
    /// `nodeName`: where the pod runs, known without the pod (docs/design.md §7).
    pub node_name: Option<Arc<str>>,
    /// `conditions.terminating`: the pod is being deleted.
    pub terminating: bool,
}

impl PodRecord {
    /// A pod known only by name: no IP, owner or annotation, not yet on a node. The base that placeholders
    /// and test builders fill in.
    pub fn bare(namespace: Arc<str>, name: Arc<str>) -> PodRecord {
        PodRecord {
            namespace,
            name,
            ips: Vec::new(),
            node_name: None,
            host_network: false,
            terminating: false,
            finished: false,
            mesh: None,
            created_unix: None,
            workload_override: None,
            owner: None,
        }
    }

    /// Projects a Pod. `None` when it lacks a name or namespace.
    pub fn from_pod(pod: &Pod) -> Option<PodRecord> {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let mut ips: Vec<IpAddr> = status
            .and_then(|s| s.pod_ips.as_ref())
            .map(|list| list.iter().filter_map(|p| p.ip.parse().ok()).collect())
            .unwrap_or_default();
        if ips.is_empty()
            && let Some(ip) = status.and_then(|s| s.pod_ip.as_ref()).and_then(|ip| ip.parse().ok())
        {
            ips.push(ip);
        }
        let phase = status.and_then(|s| s.phase.as_deref());
        let annotations = meta.annotations.as_ref();
        let annotation = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
        let workload_override = naming::annotated_name(annotation).map(Arc::from);
        Some(PodRecord {
            namespace: namespace_of(meta)?,
            name: Arc::from(meta.name.as_deref()?),
            ips,
            node_name: spec.and_then(|s| s.node_name.as_deref()).map(Arc::from),
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            terminating: meta.deletion_timestamp.is_some(),
            finished: matches!(phase, Some("Succeeded" | "Failed")),
            mesh: Mesh::from_annotations(|key| annotations.and_then(|a| a.get(key)).map(String::as_str)),
            created_unix: meta.creation_timestamp.as_ref().map(|t| t.0.as_second()),
            workload_override,
            owner: owner_of(meta),
        })
    }
}

impl OwnerRecord {
    /// Projects any object's metadata as a potential owner of pods.
    pub fn from_meta(kind: &str, meta: &ObjectMeta) -> Option<OwnerRecord> {
        Some(OwnerRecord {
            namespace: namespace_of(meta)?,
            kind: Arc::from(kind),
            name: Arc::from(meta.name.as_deref()?),
            owner: owner_of(meta),
        })
    }
}

impl ServiceRecord {
    /// Projects a Service.
    pub fn from_service(svc: &Service) -> Option<ServiceRecord> {
        let spec = svc.spec.as_ref();
        let mut cluster_ips: Vec<IpAddr> = spec
            .and_then(|s| s.cluster_ips.as_ref())
            .map(|ips| ips.iter().filter_map(|ip| ip.parse().ok()).collect())
            .unwrap_or_default();
        if cluster_ips.is_empty()
            && let Some(ip) = spec.and_then(|s| s.cluster_ip.as_ref()).and_then(|ip| ip.parse().ok())
        {
            cluster_ips.push(ip);
        }
        Some(ServiceRecord {
            namespace: namespace_of(&svc.metadata)?,
            name: Arc::from(svc.metadata.name.as_deref()?),
            cluster_ips,
            external_name: spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName"),
            ports: spec
                .and_then(|s| s.ports.as_ref())
                .map(|ports| ports.iter().filter_map(service_port).collect())
                .unwrap_or_default(),
        })
    }
}

impl SliceRecord {
    /// Projects an EndpointSlice.
    pub fn from_slice(slice: &EndpointSlice) -> Option<SliceRecord> {
        let meta = &slice.metadata;
        let endpoints = slice
            .endpoints
            .iter()
            .map(|ep| {
                let pod = ep.target_ref.as_ref().filter(|r| r.kind.as_deref() == Some("Pod"));
                EndpointRecord {
                    addresses: ep.addresses.iter().filter_map(|a| a.parse().ok()).collect(),
                    pod: pod.and_then(|r| r.name.as_deref()).map(Arc::from),
                    pod_uid: pod.and_then(|r| r.uid.as_deref()).map(Arc::from),
                    hostname: ep.hostname.as_deref().map(Arc::from),
                    node_name: ep.node_name.as_deref().map(Arc::from),
                    terminating: ep.conditions.as_ref().and_then(|c| c.terminating).unwrap_or(false),
                }
            })
            .collect();
        Some(SliceRecord {
            namespace: namespace_of(meta)?,
            name: Arc::from(meta.name.as_deref()?),
            service: meta.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)).map(|s| Arc::from(s.as_str())),
            endpoints,
            ports: slice.ports.iter().flatten().filter_map(slice_port).collect(),
        })
    }
}

fn service_port(p: &k8s_openapi::api::core::v1::ServicePort) -> Option<ServicePort> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let port = u16::try_from(p.port).ok()?;
    let target = match &p.target_port {
        Some(IntOrString::Int(n)) => TargetPort::Number(u16::try_from(*n).ok()?),
        Some(IntOrString::String(name)) => match name.parse::<u16>() {
            Ok(n) => TargetPort::Number(n),
            Err(_) => TargetPort::Name(Arc::from(name.as_str())),
        },
        None => TargetPort::Number(port),
    };
    let name = Arc::from(p.name.as_deref().unwrap_or(""));
    Some(ServicePort { name, port, tcp: is_tcp(p.protocol.as_deref()), target })
}

fn slice_port(p: &k8s_openapi::api::discovery::v1::EndpointPort) -> Option<SlicePort> {
    let port = u16::try_from(p.port?).ok()?;
    Some(SlicePort { name: Arc::from(p.name.as_deref().unwrap_or("")), port, tcp: is_tcp(p.protocol.as_deref()) })
}

/// The API defaults a port's protocol to TCP.
fn is_tcp(protocol: Option<&str>) -> bool {
    protocol.is_none_or(|p| p.eq_ignore_ascii_case("TCP"))
}

fn namespace_of(meta: &ObjectMeta) -> Option<Arc<str>> {
    meta.namespace.as_deref().filter(|ns| !ns.is_empty()).map(Arc::from)
}

/// The controller owner, or the first owner when none is marked controller (as Otterize does).
fn owner_of(meta: &ObjectMeta) -> Option<OwnerRef> {
    let owners = meta.owner_references.as_ref()?;
    let chosen: &OwnerReference = owners.iter().find(|o| o.controller == Some(true)).or_else(|| owners.first())?;
    Some(OwnerRef { kind: Arc::from(chosen.kind.as_str()), name: Arc::from(chosen.name.as_str()) })
}
