//! Kubernetes objects as the API serves them (JSON, which is also YAML): Pods with their owner chain, Services,
//! EndpointSlices, and `List`s of them, for the fake API server and for `--inventory-file` fixtures. Defaults are
//! those of a running pod created long before any observation; [`merge`] adds what a particular test needs (a
//! deletion timestamp, the managed fields a real API server returns: [`fields_v1`], [`managed_field`]).

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

/// The `fieldsV1` tree the API server records in `managedFields` for the fields of `value` a manager set: maps
/// key by key (`f:name`, nested maps also `.`), lists of keyed items by their merge key (`k:{"name":"app"}`),
/// other lists as one atomic field.
pub fn fields_v1(value: &Value) -> Value {
    fields_of(value, 0)
}

/// `depth` 0 is the object, 1 its top-level fields (`metadata`, `spec`): neither is a field of its own (`.`).
fn fields_of(value: &Value, depth: usize) -> Value {
    match value {
        Value::Object(map) => {
            let mut fields = serde_json::Map::new();
            if depth > 1 {
                fields.insert(".".into(), json!({}));
            }
            for (key, value) in map {
                fields.insert(format!("f:{key}"), fields_of(value, depth + 1));
            }
            Value::Object(fields)
        }
        Value::Array(items) => {
            let keyed: Option<serde_json::Map<String, Value>> =
                items.iter().map(|item| Some((merge_key(item)?, fields_of(item, depth.max(1) + 1)))).collect();
            keyed.filter(|k| !k.is_empty()).map_or_else(|| json!({}), Value::Object)
        }
        _ => json!({}),
    }
}

/// `k:{...}`: the merge key of a list item, as Kubernetes' strategic-merge keys name them.
fn merge_key(item: &Value) -> Option<String> {
    let key = |field: &str| Some(json!({field: item.get(field)?}));
    let key = match item.get("containerPort") {
        Some(port) => Some(json!({"containerPort": port, "protocol": item.get("protocol").unwrap_or(&json!("TCP"))})),
        None => key("uid")
            .or_else(|| key("mountPath"))
            .or_else(|| key("type"))
            .or_else(|| key("ip"))
            .or_else(|| key("name")),
    };
    Some(format!("k:{}", key?))
}

/// One `managedFields` entry: `manager` set `fields` (a [`fields_v1`] tree) with an Update at `time`, through
/// `subresource` (`status`) if any.
pub fn managed_field(manager: &str, api_version: &str, time: &str, subresource: Option<&str>, fields: Value) -> Value {
    let mut entry = json!({"manager": manager, "operation": "Update", "apiVersion": api_version, "time": time,
                           "fieldsType": "FieldsV1", "fieldsV1": fields});
    if let Some(subresource) = subresource {
        entry["subresource"] = json!(subresource);
    }
    entry
}

/// A `v1` `List` of `items`, as JSON text (what `--inventory-file` and `FakeApi::apply_yaml` read).
pub fn list(items: impl IntoIterator<Item = Value>) -> String {
    let items: Vec<Value> = items.into_iter().collect();
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_fields_key_lists_by_their_merge_keys() {
        let spec = json!({"containers": [{"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                          "args": ["-v"]}], "nodeName": "n"});
        let fields = fields_v1(&json!({"spec": spec}));
        assert!(fields["f:spec"].get(".").is_none(), "top-level fields are not fields of their own");
        let fields = &fields["f:spec"];
        let app = &fields["f:containers"]["k:{\"name\":\"app\"}"];
        assert_eq!(app["."], json!({}));
        assert_eq!(app["f:args"], json!({}), "a list of scalars is atomic");
        assert_eq!(app["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]["f:containerPort"], json!({}));
        assert_eq!(fields["f:nodeName"], json!({}));
    }
}
