//! Renders a [`Plan`] as `networking.k8s.io/v1` NetworkPolicies, with the `k8s-openapi` types, so every field
//! name and shape is the API's own. Peers in other namespaces are selected by the `kubernetes.io/metadata.name`
//! label, which the API server sets on every Namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::inventory::{PortRef, TargetPort};
use super::plan::{Peer, Policy, Rule};

/// The label every namespace carries with its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// One NetworkPolicy.
pub fn render(policy: &Policy, metadata: ObjectMeta) -> NetworkPolicy {
    let mut types = Vec::new();
    if policy.ingress.is_some() {
        types.push("Ingress".to_owned());
    }
    if policy.egress.is_some() {
        types.push("Egress".to_owned());
    }
    let ingress = policy.ingress.as_ref().map(|rules| {
        rules.iter().map(|rule| NetworkPolicyIngressRule { from: peers(rule), ports: ports(&rule.ports) }).collect()
    });
    let egress = policy.egress.as_ref().map(|rules| {
        rules.iter().map(|rule| NetworkPolicyEgressRule { to: peers(rule), ports: ports(&rule.ports) }).collect()
    });
    NetworkPolicy {
        metadata,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(policy.selector.clone()),
            policy_types: Some(types),
            ingress,
            egress,
        }),
    }
}

fn peers(rule: &Rule) -> Option<Vec<NetworkPolicyPeer>> {
    if rule.peers.is_empty() {
        return None;
    }
    Some(rule.peers.iter().flat_map(peer).collect())
}

fn peer(peer: &Peer) -> Vec<NetworkPolicyPeer> {
    let block = |cidr: &String| NetworkPolicyPeer {
        ip_block: Some(IPBlock { cidr: cidr.clone(), except: None }),
        ..NetworkPolicyPeer::default()
    };
    match peer {
        Peer::Pods { namespace, selector } => vec![NetworkPolicyPeer {
            namespace_selector: Some(namespace_selector(namespace)),
            pod_selector: Some(selector.clone()),
            ip_block: None,
        }],
        Peer::Cidr(cidr) => vec![block(cidr)],
        Peer::ApiServer(cidrs) => cidrs.iter().map(block).collect(),
        // The planner plans names only for targets that can express them.
        Peer::Fqdn(_) => Vec::new(),
    }
}

fn namespace_selector(namespace: &str) -> LabelSelector {
    let labels = BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned())]);
    LabelSelector { match_labels: Some(labels), match_expressions: None }
}

fn ports(ports: &[TargetPort]) -> Option<Vec<NetworkPolicyPort>> {
    if ports.is_empty() {
        return None;
    }
    Some(
        ports
            .iter()
            .map(|p| NetworkPolicyPort {
                port: Some(match &p.port {
                    PortRef::Number(n) => IntOrString::Int(i32::from(*n)),
                    PortRef::Name(name) => IntOrString::String(name.clone()),
                }),
                protocol: Some(p.protocol.clone()),
                end_port: None,
            })
            .collect(),
    )
}
