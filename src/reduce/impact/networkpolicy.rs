//! `networking.k8s.io/v1` NetworkPolicy → [`Policy`], with the API's semantics spelled out: `policyTypes`
//! defaults to Ingress, plus Egress when the policy has egress rules; an absent or empty `from`/`to` is every
//! peer and an absent or empty `ports` every port; a peer with only `podSelector` is in the policy's namespace,
//! one with only `namespaceSelector` is every pod of those namespaces; `port` absent is every port of the
//! protocol, `endPort` closes a range, a named port is the destination pod's container port of that name.
//! What the API server would refuse is refused here too, naming the policy.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::set::{Allow, Cidr, Direction, Origin, Peer, Pods, Policy, PortRule, PortSpec, Protocol};
use crate::reduce::policy::kubernetes::NAMESPACE_NAME_LABEL;

/// Translates one NetworkPolicy object. The error is the problem; the caller names the file.
pub fn translate(value: Value, file: &str) -> Result<Policy, String> {
    let policy: NetworkPolicy = serde_json::from_value(value).map_err(|e| format!("not a valid NetworkPolicy: {e}"))?;
    let name = policy.metadata.name.clone().ok_or("a NetworkPolicy without metadata.name")?;
    let namespace = policy.metadata.namespace.clone().filter(|ns| !ns.is_empty()).ok_or_else(|| {
        format!(
            "NetworkPolicy {name:?} has no metadata.namespace (kubectl would apply it to the current context's \
             namespace): set it"
        )
    })?;
    let origin =
        Origin { file: file.to_owned(), kind: "NetworkPolicy".to_owned(), namespace: Some(namespace.clone()), name };
    let context = |problem: String| format!("NetworkPolicy {origin}: {problem}");
    let spec = policy.spec.unwrap_or_default();
    let types = spec.policy_types.clone().unwrap_or_else(|| {
        let mut types = vec!["Ingress".to_owned()];
        // The API server's default: Egress only when there are egress rules (an empty list is none).
        if spec.egress.as_ref().is_some_and(|rules| !rules.is_empty()) {
            types.push("Egress".to_owned());
        }
        types
    });
    if let Some(bad) = types.iter().find(|t| *t != "Ingress" && *t != "Egress") {
        return Err(context(format!("policyTypes holds {bad:?}; expected Ingress or Egress")));
    }
    let pods = spec.pod_selector.clone().unwrap_or_default();
    check_selector(&pods).map_err(context)?;
    let subject = Pods { namespaces: by_name(&namespace), pods };
    let ingress = spec.ingress.iter().flatten().map(|r| allow(r.from.as_deref(), r.ports.as_deref(), &namespace));
    let ingress = ingress.collect::<Result<Vec<_>, _>>().map_err(context)?;
    let egress = spec.egress.iter().flatten().map(|r| allow(r.to.as_deref(), r.ports.as_deref(), &namespace));
    let egress = egress.collect::<Result<Vec<_>, _>>().map_err(context)?;
    // Rules of a direction the policy does not isolate are ignored by Kubernetes.
    let direction = |name: &str, rules: Vec<Allow>| {
        let isolates = types.iter().any(|t| t == name);
        Direction { isolates, rules: if isolates { rules } else { Vec::new() } }
    };
    Ok(Policy { origin, subject, ingress: direction("Ingress", ingress), egress: direction("Egress", egress) })
}

/// Selects the namespace called `namespace`.
pub fn by_name(namespace: &str) -> LabelSelector {
    let labels = BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned())]);
    LabelSelector { match_labels: Some(labels), match_expressions: None }
}

fn allow(
    peers: Option<&[NetworkPolicyPeer]>,
    ports: Option<&[NetworkPolicyPort]>,
    namespace: &str,
) -> Result<Allow, String> {
    let peers = match peers.filter(|p| !p.is_empty()) {
        None => None,
        Some(peers) => Some(peers.iter().map(|p| peer(p, namespace)).collect::<Result<Vec<_>, _>>()?),
    };
    let ports = match ports.filter(|p| !p.is_empty()) {
        None => None,
        Some(ports) => Some(ports.iter().map(port).collect::<Result<Vec<_>, _>>()?),
    };
    Ok(Allow { peers, ports })
}

fn peer(peer: &NetworkPolicyPeer, namespace: &str) -> Result<Peer, String> {
    if let Some(block) = &peer.ip_block {
        if peer.pod_selector.is_some() || peer.namespace_selector.is_some() {
            return Err("a peer with ipBlock cannot also have podSelector or namespaceSelector".to_owned());
        }
        let cidr = Cidr::parse(&block.cidr).map_err(|e| format!("ipBlock: {e}"))?;
        let except = block.except.iter().flatten().map(|c| Cidr::parse(c)).collect::<Result<Vec<_>, _>>();
        return Ok(Peer::Block { cidr, except: except.map_err(|e| format!("ipBlock.except: {e}"))? });
    }
    let (pods, namespaces) = (peer.pod_selector.clone(), peer.namespace_selector.clone());
    if pods.is_none() && namespaces.is_none() {
        return Err("a peer needs podSelector, namespaceSelector or ipBlock".to_owned());
    }
    for selector in pods.iter().chain(&namespaces) {
        check_selector(selector)?;
    }
    let namespaces = namespaces.unwrap_or_else(|| by_name(namespace));
    Ok(Peer::Pods(Pods { namespaces, pods: pods.unwrap_or_default() }))
}

fn port(port: &NetworkPolicyPort) -> Result<PortRule, String> {
    let protocol = match port.protocol.as_deref().unwrap_or("TCP") {
        "TCP" => Protocol::Tcp,
        "UDP" => Protocol::Udp,
        "SCTP" => Protocol::Sctp,
        other => return Err(format!("port protocol {other:?}; expected TCP, UDP or SCTP")),
    };
    let ports = match (&port.port, port.end_port) {
        (None, None) => PortSpec::All,
        (None, Some(_)) => return Err("endPort without port".to_owned()),
        (Some(IntOrString::String(name)), None) => match name.parse::<u16>() {
            Ok(number) => PortSpec::Range(number, number),
            Err(_) => PortSpec::Named(name.clone()),
        },
        (Some(IntOrString::String(name)), Some(_)) => return Err(format!("endPort with the named port {name:?}")),
        (Some(IntOrString::Int(number)), end) => {
            let first = port_number(*number)?;
            let last = end.map_or(Ok(first), port_number)?;
            if last < first {
                return Err(format!("endPort {last} is below port {first}"));
            }
            PortSpec::Range(first, last)
        }
    };
    Ok(PortRule { protocol: Some(protocol), ports })
}

fn port_number(number: i32) -> Result<u16, String> {
    u16::try_from(number).ok().filter(|n| *n > 0).ok_or_else(|| format!("port {number} is not in 1-65535"))
}

/// Operators the API server accepts; anything else would be refused at `kubectl apply`.
pub fn check_selector(selector: &LabelSelector) -> Result<(), String> {
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!(
                    "matchExpressions {}: operator {} needs values",
                    requirement.key, requirement.operator
                ));
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(format!(
                    "matchExpressions {}: operator {} takes no values",
                    requirement.key, requirement.operator
                ));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Err(format!(
                    "matchExpressions {}: unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)",
                    requirement.key
                ));
            }
        }
    }
    Ok(())
}
