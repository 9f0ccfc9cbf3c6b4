//! What policies need to know about the cluster: each workload's pod selector and network mode, the Services
//! in front of them (their target ports), the DNS servers and the API server's addresses. Built from
//! Kubernetes objects as [`naming::KUBECTL_GET`] prints them, or as
//! the API lists them ([`super::api`]); both arrive here as JSON values.
//!
//! Workloads are named exactly as the exporter names them (`docs/design.md` §4.1): the Otterize annotation,
//! else the root of the pod's owner chain, `.` replaced by `_`. The selector is the root controller's own
//! `spec.selector` (a CronJob's job template labels, a bare pod's labels), without volatile labels.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Deserialize;
use serde_json::Value;

use super::labels::{common_labels, describe, matches, selector_of, stable_labels, stable_selector};
pub use super::services::{NamedPorts, PortRef, Service, TargetPort};
use super::services::{api_server_endpoints, container_ports, parse_service};
use crate::mesh::Mesh;
use crate::sources::inventory::naming;

/// A workload as policies see it.
#[derive(Debug, Clone)]
pub struct Workload {
    pub namespace: String,
    pub name: String,
    /// The root owner's kind (`Pod` for a bare pod).
    pub kind: String,
    /// The pods' selector; `None` when no stable selector could be found.
    pub selector: Option<LabelSelector>,
    /// Where the selector came from, for the generated notes (`Deployment spec.selector`, …).
    pub selector_source: String,
    /// Its pods use the node's network: NetworkPolicies neither select nor match them.
    pub host_network: bool,
    /// Labels of its pods (of the pod template when no pod is listed).
    pod_labels: Vec<BTreeMap<String, String>>,
    /// Named container ports of its pods (or pod template): name → (number, protocol), for policies that name
    /// a port.
    pub named_ports: NamedPorts,
    /// The service mesh of its pods, from the annotation the mesh writes on them: what reaches them on the wire
    /// differs from the application's port (docs/policies.md, "Service meshes").
    pub mesh: Option<Mesh>,
}

impl Workload {
    /// The label sets of its pods (of its pod template when no pod is listed).
    pub fn pod_labels(&self) -> &[BTreeMap<String, String>] {
        &self.pod_labels
    }
}

/// Everything the policy planner reads about the cluster.
#[derive(Debug, Default)]
pub struct ClusterInfo {
    workloads: BTreeMap<(String, String), Workload>,
    pub services: Vec<Service>,
    /// Addresses and ports of the API server (EndpointSlices or Endpoints of `default/kubernetes`).
    pub api_server: Vec<IpAddr>,
    pub api_server_ports: BTreeSet<u16>,
    /// Problems found while reading: selectors that also select other workloads' pods.
    pub warnings: Vec<String>,
    /// Labels of the Namespace objects read (`kubectl get namespaces`), by name; a namespace not listed has only
    /// the `kubernetes.io/metadata.name` label as far as anyone here knows.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

/// One object, reduced to the fields used here.
#[derive(Debug, Default)]
struct Object {
    kind: String,
    namespace: String,
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    owner: Option<(String, String)>,
    selector: Option<LabelSelector>,
    template_labels: BTreeMap<String, String>,
    host_network: bool,
    named_ports: NamedPorts,
    spec: Value,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Meta {
    name: Option<String>,
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    owner_references: Vec<OwnerReference>,
}

#[derive(Deserialize)]
struct OwnerReference {
    kind: String,
    name: String,
    #[serde(default)]
    controller: Option<bool>,
}

impl ClusterInfo {
    /// Parses `kubectl get … -o yaml` text (one or several documents, Lists nested or not). The error is the
    /// problem without the file name.
    pub fn from_yaml(text: &str) -> Result<ClusterInfo, String> {
        let mut values = Vec::new();
        for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let value = Value::deserialize(document)
                .map_err(|e| format!("document {}: not valid YAML or JSON: {e}", index + 1))?;
            flatten(value, &mut values);
        }
        if values.is_empty() {
            return Err(format!("no Kubernetes objects found: expected the output of `{}`", naming::KUBECTL_GET));
        }
        Self::from_objects(values)
    }

    /// Builds the view from objects (each with `kind` and `metadata`).
    pub fn from_objects(values: Vec<Value>) -> Result<ClusterInfo, String> {
        let mut objects = Vec::with_capacity(values.len());
        let mut namespaces = BTreeMap::new();
        for (index, value) in values.into_iter().enumerate() {
            let parsed = Object::parse(value, &mut namespaces).map_err(|e| format!("item {}: {e}", index + 1))?;
            objects.extend(parsed);
        }
        let mut info = build(objects);
        info.namespaces = namespaces;
        Ok(info)
    }

    /// The workload, by namespace and name as the edges name it.
    pub fn workload(&self, namespace: &str, name: &str) -> Option<&Workload> {
        self.workloads.get(&(namespace.to_owned(), name.to_owned()))
    }

    /// Services whose selector picks pods of `workload`.
    pub fn services_of<'a>(&'a self, workload: &'a Workload) -> impl Iterator<Item = &'a Service> + 'a {
        self.services.iter().filter(move |s| {
            s.namespace == workload.namespace
                && !s.selector.is_empty()
                && workload.pod_labels.iter().any(|labels| s.selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
        })
    }

    /// Services that expose port 53: the cluster's DNS (`docs/design.md` §3; nothing is keyed on a name).
    pub fn dns_services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter(|s| !s.selector.is_empty() && s.ports.iter().any(|(port, _)| *port == 53))
    }

    /// Every workload, by namespace and name.
    pub fn workloads(&self) -> impl Iterator<Item = &Workload> {
        self.workloads.values()
    }

    /// The labels of a namespace, when its Namespace object was read.
    pub fn namespace_labels(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.namespaces.get(namespace)
    }

    /// Whether `workload` backs a DNS Service.
    pub fn is_dns_server(&self, workload: &Workload) -> bool {
        self.dns_services().any(|dns| self.services_of(workload).any(|s| s.name == dns.name))
    }
}

fn flatten(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Object(mut map) if map.contains_key("items") => {
            if let Some(Value::Array(items)) = map.remove("items") {
                for item in items {
                    flatten(item, out);
                }
            }
        }
        Value::Null => {}
        other => out.push(other),
    }
}

impl Object {
    /// `None` for cluster-scoped objects (Nodes, Namespaces), which select no pods; Namespaces' labels go to
    /// `namespaces`.
    fn parse(
        value: Value,
        namespaces: &mut BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Option<Object>, String> {
        let kind = value.get("kind").and_then(Value::as_str).ok_or("object has no `kind`")?.to_owned();
        let meta: Meta = serde_json::from_value(value.get("metadata").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("{kind}: invalid metadata: {e}"))?;
        let Some(name) = meta.name else { return Err(format!("{kind}: metadata.name is missing")) };
        if kind == "Namespace" {
            namespaces.insert(name, meta.labels);
            return Ok(None);
        }
        let Some(namespace) = meta.namespace.filter(|ns| !ns.is_empty()) else { return Ok(None) };
        let owner = meta
            .owner_references
            .iter()
            .find(|o| o.controller == Some(true))
            .or_else(|| meta.owner_references.first())
            .map(|o| (o.kind.clone(), o.name.clone()));
        // Endpoints and EndpointSlices keep their data at the top level, not in a spec.
        let spec = match kind.as_str() {
            "EndpointSlice" | "Endpoints" => value.clone(),
            _ => value.get("spec").cloned().unwrap_or(Value::Null),
        };
        let template = match kind.as_str() {
            "CronJob" => spec.pointer("/jobTemplate/spec/template"),
            "Pod" => None,
            _ => spec.get("template"),
        };
        let selector_value = match kind.as_str() {
            "Service" | "Pod" => None,
            "CronJob" => spec.pointer("/jobTemplate/spec/selector"),
            _ => spec.get("selector"),
        };
        let selector = match selector_value {
            Some(v) if v.is_object() => Some(
                serde_json::from_value::<LabelSelector>(v.clone())
                    .map_err(|e| format!("{kind} {namespace}/{name}: invalid spec.selector: {e}"))?,
            ),
            _ => None,
        };
        let template_labels = template
            .and_then(|t| t.pointer("/metadata/labels"))
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default();
        let pod_spec = if kind == "Pod" { Some(&spec) } else { template.and_then(|t| t.get("spec")) };
        let host_network = pod_spec.and_then(|s| s.get("hostNetwork")).and_then(Value::as_bool).unwrap_or(false);
        let named_ports = pod_spec.map(container_ports).unwrap_or_default();
        Ok(Some(Object {
            kind,
            namespace,
            name,
            labels: meta.labels,
            annotations: meta.annotations,
            owner,
            selector,
            template_labels,
            host_network,
            named_ports,
            spec,
        }))
    }

    /// Whether the object can be a workload's root: it makes pods (has a template or a selector).
    fn makes_pods(&self) -> bool {
        self.selector.is_some() || !self.template_labels.is_empty()
    }
}

type OwnerKey = (String, String, String);

fn build(objects: Vec<Object>) -> ClusterInfo {
    let mut info = ClusterInfo::default();
    let mut owners: HashMap<OwnerKey, Object> = HashMap::new();
    let mut pods = Vec::new();
    for object in objects {
        match object.kind.as_str() {
            "Pod" => pods.push(object),
            "Service" => info.services.extend(parse_service(&object.namespace, &object.name, &object.spec)),
            "EndpointSlice" | "Endpoints" => add_api_server(&mut info, &object),
            _ => {
                owners.insert((object.namespace.clone(), object.kind.clone(), object.name.clone()), object);
            }
        }
    }
    let mut warnings = naming_gaps(&pods, &owners);
    // Identity → its pods.
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for pod in pods {
        let (name, kind, root) = identity(&pod, &owners);
        groups.entry((pod.namespace.clone(), name)).or_insert_with(|| (kind, root, Vec::new())).2.push(pod);
    }
    // Controllers without pods (scaled to zero, a CronJob between runs) are workloads too.
    for (key, object) in &owners {
        if object.owner.is_none() && object.makes_pods() {
            let name = naming::identity_name(&object.name).into_owned();
            groups.entry((key.0.clone(), name)).or_insert_with(|| (object.kind.clone(), Some(key.clone()), vec![]));
        }
    }
    for ((namespace, name), (kind, root, pods)) in groups {
        let root = root.as_ref().and_then(|key| owners.get(key));
        let workload = workload(namespace.clone(), (name.clone(), kind), root, &pods);
        info.workloads.insert((namespace, name), workload);
    }
    warnings.extend(overlapping_selectors(&info));
    info.warnings = warnings;
    info
}

/// What the objects lack to name workloads as the exporter does: Pods at all (the controllers' own selectors
/// still serve, but host-network pods and named ports are unknown), or the ReplicaSets and Jobs that own pods.
fn naming_gaps(pods: &[Object], owners: &HashMap<OwnerKey, Object>) -> Vec<String> {
    if pods.is_empty() {
        let mut kinds: Vec<String> = owners.values().map(|o| o.kind.clone()).collect();
        kinds.sort();
        kinds.dedup();
        return vec![naming::no_pods_message(&kinds)];
    }
    let mut missing = BTreeMap::new();
    for pod in pods {
        let Some((kind, name)) = &pod.owner else { continue };
        if naming::OWNED_OWNER_KINDS.contains(&kind.as_str())
            && !owners.contains_key(&(pod.namespace.clone(), kind.clone(), name.clone()))
        {
            *missing.entry(kind.clone()).or_insert(0) += 1;
        }
    }
    naming::missing_owners_warning(&missing).into_iter().collect()
}

/// The API server's addresses and ports, when `object` holds `default/kubernetes`'s endpoints.
fn add_api_server(info: &mut ClusterInfo, object: &Object) {
    let (kind, name, namespace) = (&object.kind, &object.name, &object.namespace);
    if let Some((addresses, ports)) = api_server_endpoints(kind, name, namespace, &object.labels, &object.spec) {
        info.api_server.extend(addresses);
        info.api_server.sort();
        info.api_server.dedup();
        info.api_server_ports.extend(ports);
    }
}

/// A workload's kind, the key of the owner its selector comes from, and its pods.
type Group = (String, Option<OwnerKey>, Vec<Object>);

/// The exporter's identity of a pod (the one rule, `naming`): its name, its kind (the chain root's, as the
/// exporter gives it, annotated or not), and the root owner's key when the name is the root's (its selector is
/// then the workload's).
fn identity(pod: &Object, owners: &HashMap<OwnerKey, Object>) -> (String, String, Option<OwnerKey>) {
    let key = |owner: &(String, String)| (pod.namespace.clone(), owner.0.clone(), owner.1.clone());
    let root = pod
        .owner
        .clone()
        .map(|first| naming::chain_root(first, |current| owners.get(&key(current)).and_then(|o| o.owner.clone())));
    let kind = root.as_ref().map_or_else(|| "Pod".to_owned(), |r| r.0.clone());
    if let Some(name) = naming::annotated_name(|k| pod.annotations.get(k).map(String::as_str)) {
        return (naming::identity_name(name).into_owned(), kind, None);
    }
    match root {
        Some(root) => (naming::identity_name(&root.1).into_owned(), kind, Some(key(&root))),
        None => (naming::identity_name(&pod.name).into_owned(), kind, None),
    }
}

fn workload(namespace: String, (name, kind): (String, String), root: Option<&Object>, pods: &[Object]) -> Workload {
    let pod_label_sets: Vec<_> = pods.iter().map(|p| p.labels.clone()).collect();
    let from_pods = || selector_of(common_labels(pod_label_sets.iter()));
    let (selector, source) = match root {
        Some(root) => {
            let own = root.selector.as_ref().and_then(stable_selector);
            let template = selector_of(stable_labels(&root.template_labels));
            match (own, template) {
                (Some(s), _) => (Some(s), format!("{} spec.selector", root.kind)),
                (None, Some(t)) => (Some(t), format!("{} pod template labels", root.kind)),
                (None, None) => (from_pods(), "labels common to its pods".to_owned()),
            }
        }
        None if pods.len() == 1 && pods[0].owner.is_none() => (from_pods(), "the pod's stable labels".to_owned()),
        None => (from_pods(), "labels common to its pods".to_owned()),
    };
    let host_network = match root {
        Some(root) if pods.is_empty() => root.host_network,
        _ => !pods.is_empty() && pods.iter().all(|p| p.host_network),
    };
    let (pod_labels, named_ports) = if pods.is_empty() {
        let labels = root.map(|r| vec![r.template_labels.clone()]).unwrap_or_default();
        (labels, root.map(|r| r.named_ports.clone()).unwrap_or_default())
    } else {
        let mut ports = NamedPorts::new();
        for pod in pods {
            for (name, numbers) in &pod.named_ports {
                ports.entry(name.clone()).or_default().extend(numbers.iter().cloned());
            }
        }
        (pod_label_sets, ports)
    };
    let mesh = pods.iter().find_map(|pod| Mesh::from_annotations(|key| pod.annotations.get(key).map(String::as_str)));
    Workload { namespace, name, kind, selector, selector_source: source, host_network, pod_labels, named_ports, mesh }
}

/// A selector that also matches another workload's pods would let traffic through that was never seen.
fn overlapping_selectors(info: &ClusterInfo) -> Vec<String> {
    let mut warnings = Vec::new();
    for a in info.workloads.values() {
        let Some(selector) = &a.selector else { continue };
        for b in info.workloads.values() {
            if a.namespace == b.namespace && a.name != b.name && b.pod_labels.iter().any(|l| matches(selector, l)) {
                warnings.push(format!(
                    "the selector of {}/{} ({}) also selects pods of {}; its policies apply to both",
                    a.namespace,
                    a.name,
                    describe(selector),
                    b.name
                ));
            }
        }
    }
    warnings
}
