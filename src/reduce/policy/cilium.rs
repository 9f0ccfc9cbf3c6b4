//! Renders a [`Plan`] as `cilium.io/v2` CiliumNetworkPolicies. What Cilium adds over NetworkPolicy: egress to
//! names outside the cluster (`toFQDNs`), which works only when Cilium's DNS proxy sees the lookups, so every
//! DNS rule carries `rules: dns: [{matchPattern: "*"}]`; and the API server as the `kube-apiserver` entity.
//! Pod labels are written as they are (Cilium matches any label source); the namespace is Cilium's
//! `k8s:io.kubernetes.pod.namespace` label. The CRD schema is vendored in `tests/fixtures/policy/crds/`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Serialize;
use serde_json::{Value, json};

use super::inventory::{PortRef, TargetPort};
use super::plan::{Peer, Policy, Rule};

/// The label Cilium gives every endpoint with its namespace.
pub const NAMESPACE_LABEL: &str = "k8s:io.kubernetes.pod.namespace";

/// A CiliumNetworkPolicy (only the fields written here).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CiliumNetworkPolicy {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: Value,
}

/// One CiliumNetworkPolicy.
pub fn render(policy: &Policy, metadata: ObjectMeta) -> CiliumNetworkPolicy {
    let mut spec = serde_json::Map::new();
    spec.insert("endpointSelector".into(), json!(policy.selector));
    if let Some(rules) = &policy.ingress {
        spec.insert("ingress".into(), Value::Array(or_deny_all(rules.iter().map(ingress_rule).collect())));
    }
    if let Some(rules) = &policy.egress {
        spec.insert("egress".into(), Value::Array(or_deny_all(rules.iter().flat_map(egress_rules).collect())));
    }
    CiliumNetworkPolicy {
        api_version: "cilium.io/v2",
        kind: "CiliumNetworkPolicy",
        metadata,
        spec: Value::Object(spec),
    }
}

/// An empty rule list means "no rules apply" to Cilium; `[{}]` selects the direction with nothing allowed.
fn or_deny_all(rules: Vec<Value>) -> Vec<Value> {
    if rules.is_empty() { vec![json!({})] } else { rules }
}

fn endpoint(namespace: &str, selector: &LabelSelector) -> Value {
    let mut selector = selector.clone();
    selector.match_labels.get_or_insert_with(Default::default).insert(NAMESPACE_LABEL.into(), namespace.into());
    json!(selector)
}

fn ingress_rule(rule: &Rule) -> Value {
    let mut out = serde_json::Map::new();
    let endpoints: Vec<Value> = rule
        .peers
        .iter()
        .filter_map(|p| match p {
            Peer::Pods { namespace, selector } => Some(endpoint(namespace, selector)),
            _ => None,
        })
        .collect();
    let cidrs: Vec<&String> =
        rule.peers.iter().filter_map(|p| if let Peer::Cidr(c) = p { Some(c) } else { None }).collect();
    if rule.peers.is_empty() {
        out.insert("fromEntities".into(), json!(["all"]));
    }
    if !endpoints.is_empty() {
        out.insert("fromEndpoints".into(), Value::Array(endpoints));
    }
    if !cidrs.is_empty() {
        out.insert("fromCIDR".into(), json!(cidrs));
    }
    if let Some(ports) = to_ports(&rule.ports, false) {
        out.insert("toPorts".into(), ports);
    }
    Value::Object(out)
}

/// Egress peers of different kinds (endpoints, CIDRs, entities, FQDNs) are exclusive in one Cilium rule.
fn egress_rules(rule: &Rule) -> Vec<Value> {
    let mut out = Vec::new();
    let ports = to_ports(&rule.ports, rule.dns);
    let with_ports = |mut value: serde_json::Map<String, Value>| {
        if let Some(ports) = &ports {
            value.insert("toPorts".into(), ports.clone());
        }
        Value::Object(value)
    };
    if rule.peers.is_empty() {
        // Any destination (a peer that could not be expressed, on its ports).
        let mut value = serde_json::Map::new();
        value.insert("toEntities".into(), json!(["all"]));
        out.push(with_ports(value));
    }
    for peer in &rule.peers {
        let mut value = serde_json::Map::new();
        match peer {
            Peer::Pods { namespace, selector } => {
                value.insert("toEndpoints".into(), json!([endpoint(namespace, selector)]))
            }
            Peer::Cidr(cidr) => value.insert("toCIDR".into(), json!([cidr])),
            Peer::ApiServer(_) => value.insert("toEntities".into(), json!(["kube-apiserver"])),
            Peer::Fqdn(name) => value.insert("toFQDNs".into(), json!([{"matchName": name}])),
        };
        out.push(with_ports(value));
    }
    out
}

fn to_ports(ports: &[TargetPort], dns: bool) -> Option<Value> {
    if ports.is_empty() {
        return None;
    }
    let list: Vec<Value> = ports
        .iter()
        .map(|p| {
            let port = match &p.port {
                PortRef::Number(n) => n.to_string(),
                PortRef::Name(name) => name.clone(),
            };
            json!({"port": port, "protocol": p.protocol})
        })
        .collect();
    let mut entry = json!({"ports": list});
    if dns {
        entry["rules"] = json!({"dns": [{"matchPattern": "*"}]});
    }
    Some(json!([entry]))
}
