//! Kubernetes objects as the API serves them (JSON, which is also YAML): Pods with their owner chain, Services,
//! EndpointSlices, and `List`s of them, for the fake API server and for `--inventory-file` fixtures. Defaults are
//! those of a running pod created long before any observation; [`merge`] adds what a particular test needs (a
//! deletion timestamp, the managed fields a real API server returns).

use serde_json::{Value, json};

/// Creation time of every object unless set: long before any observation (identity refuses observations older
/// than a pod).
pub const LONG_AGO: &str = "2026-01-01T00:00:00Z";

/// The apiVersion of a kind the exporter reads or follows through owner references.
pub fn api_version(kind: &str) -> &'static str {
    match kind {
        "ReplicaSet" | "Deployment" | "StatefulSet" | "DaemonSet" => "apps/v1",
        "Job" | "CronJob" => "batch/v1",
        "EndpointSlice" => "discovery.k8s.io/v1",
        _ => "v1",
    }
}

/// A controller owner reference to `kind` `name` in `namespace`.
pub fn controller_ref(kind: &str, namespace: &str, name: &str) -> Value {
    json!({"apiVersion": api_version(kind), "kind": kind, "name": name, "uid": format!("uid-{namespace}-{name}"),
           "controller": true})
}

/// Deep-merges `patch` into `target`: objects key by key, anything else (arrays too) replaced.
pub fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch,
    }
}

/// Metadata-only object `kind` (a ReplicaSet, a Job, ...) controlled by `owner_kind` `owner`.
pub fn owned(kind: &str, namespace: &str, name: &str, owner_kind: &str, owner: &str) -> Value {
    json!({"apiVersion": api_version(kind), "kind": kind, "metadata": {
        "name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}"), "creationTimestamp": LONG_AGO,
        "ownerReferences": [controller_ref(owner_kind, namespace, owner)]}})
}

/// A running Pod, built up with its methods and turned into JSON with [`Pod::json`].
#[derive(Clone, Debug)]
pub struct Pod(Value);

impl Pod {
    /// Pod `namespace/name` with IP `ip`, running on `node-a`, created [`LONG_AGO`], owned by nothing.
    pub fn new(namespace: &str, name: &str, ip: &str) -> Pod {
        Pod(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}"),
                         "creationTimestamp": LONG_AGO},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "example.com/app:1.0"}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}))
    }

    /// Controlled by `kind` `name` (usually a ReplicaSet, a Job, a StatefulSet or a DaemonSet).
    pub fn owner(mut self, kind: &str, name: &str) -> Pod {
        let namespace = self.0["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
        self.0["metadata"]["ownerReferences"] = json!([controller_ref(kind, &namespace, name)]);
        self
    }

    pub fn node(mut self, node: &str) -> Pod {
        self.0["spec"]["nodeName"] = json!(node);
        self
    }

    pub fn created(mut self, timestamp: &str) -> Pod {
        self.0["metadata"]["creationTimestamp"] = json!(timestamp);
        self
    }

    pub fn host_network(mut self, host_network: bool) -> Pod {
        self.0["spec"]["hostNetwork"] = json!(host_network);
        self
    }

    /// `spec.hostname`, as a StatefulSet sets it.
    pub fn hostname(mut self, hostname: &str) -> Pod {
        self.0["spec"]["hostname"] = json!(hostname);
        self
    }

    /// Anything else, deep-merged (see [`merge`]).
    pub fn with(mut self, patch: Value) -> Pod {
        merge(&mut self.0, patch);
        self
    }

    pub fn json(self) -> Value {
        self.0
    }
}

/// A ClusterIP Service (`cluster_ip` `None`: headless) with one TCP port.
pub fn service(namespace: &str, name: &str, cluster_ip: Option<&str>, port: u16) -> Value {
    let ip = cluster_ip.unwrap_or("None");
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}"),
                        "creationTimestamp": LONG_AGO},
           "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                    "ports": [{"port": port, "protocol": "TCP"}]}})
}

/// One ready endpoint of an EndpointSlice: a pod's address.
#[derive(Clone, Debug)]
pub struct Endpoint<'a> {
    pub ip: &'a str,
    pub pod: &'a str,
    pub node: &'a str,
    /// Per-pod DNS name of a headless Service (`redis-0`).
    pub hostname: Option<&'a str>,
}

impl Endpoint<'_> {
    fn json(&self, namespace: &str) -> Value {
        let mut endpoint = json!({"addresses": [self.ip], "conditions": {"ready": true}, "nodeName": self.node,
                                  "targetRef": {"kind": "Pod", "name": self.pod, "namespace": namespace}});
        if let Some(hostname) = self.hostname {
            endpoint["hostname"] = json!(hostname);
        }
        endpoint
    }
}

/// An IPv4 EndpointSlice `name` of Service `service` with one TCP port.
pub fn endpoint_slice(namespace: &str, service: &str, name: &str, port: u16, endpoints: &[Endpoint<'_>]) -> Value {
    let endpoints: Vec<Value> = endpoints.iter().map(|e| e.json(namespace)).collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
           "metadata": {"name": name, "namespace": namespace, "creationTimestamp": LONG_AGO,
                        "labels": {"kubernetes.io/service-name": service}},
           "endpoints": endpoints, "ports": [{"port": port, "protocol": "TCP"}]})
}

/// A `v1` `List` of `items`, as JSON text (what `--inventory-file` and `FakeApi::apply_yaml` read).
pub fn list(items: impl IntoIterator<Item = Value>) -> String {
    let items: Vec<Value> = items.into_iter().collect();
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}
