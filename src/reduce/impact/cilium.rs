//! `cilium.io/v2` CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy → [`Policy`], for the layer 3/4 part
//! the generator writes and most hand-written policies use: `endpointSelector`, `fromEndpoints`/`toEndpoints`,
//! `fromCIDR`/`toCIDR` (and the `Set` forms), `fromEntities`/`toEntities`, `toFQDNs`, `toPorts`,
//! `enableDefaultDeny`. Cilium's semantics: a direction is enforced when a policy has rules in it (`[{}]`
//! allows nothing; an empty list enforces nothing); a rule with only `toPorts` allows every peer on those ports;
//! in a namespaced policy an endpoint selector without a namespace is the policy's namespace. Layer 7 rules
//! (`rules: {http, dns, kafka}`) are not evaluated: their ports count as allowed. Fields that change who may
//! talk and are not evaluated here (deny rules, `toServices`, `fromRequires`, node selectors, …) are refused,
//! naming the policy, rather than ignored.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use serde_json::Value;

use super::networkpolicy::{by_name, check_selector};
use super::set::{
    Allow, Cidr, Direction, Entity, NamePattern, Origin, Peer, Pods, Policy, PortRule, PortSpec, Protocol,
};
use crate::reduce::policy::kubernetes::NAMESPACE_NAME_LABEL;

/// The label Cilium gives every endpoint with its namespace's name.
const NAMESPACE_KEY: &str = "io.kubernetes.pod.namespace";
/// Prefix of the labels Cilium copies from the endpoint's Namespace.
const NAMESPACE_LABELS_PREFIX: &str = "io.cilium.k8s.namespace.labels.";

/// Fields of a rule, an ingress or an egress rule that are read here; every other field is refused.
const RULE_FIELDS: &[&str] = &["endpointSelector", "ingress", "egress", "enableDefaultDeny", "description", "labels"];
const INGRESS_FIELDS: &[&str] = &["fromEndpoints", "fromCIDR", "fromCIDRSet", "fromEntities", "toPorts"];
const EGRESS_FIELDS: &[&str] = &["toEndpoints", "toCIDR", "toCIDRSet", "toEntities", "toFQDNs", "toPorts"];

/// Translates one CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy (each of its `spec`/`specs` rules is
/// one [`Policy`]). The error is the problem; the caller names the file.
pub fn translate(value: &Value, file: &str) -> Result<Vec<Policy>, String> {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    let metadata = value.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .ok_or(format!("a {kind} without metadata.name"))?;
    let namespace = metadata.and_then(|m| m.get("namespace")).and_then(Value::as_str).filter(|ns| !ns.is_empty());
    let clusterwide = kind == "CiliumClusterwideNetworkPolicy";
    if !clusterwide && namespace.is_none() {
        return Err(format!("{kind} {name:?} has no metadata.namespace: set it"));
    }
    let namespace = if clusterwide { None } else { namespace.map(str::to_owned) };
    let origin =
        Origin { file: file.to_owned(), kind: kind.clone(), namespace: namespace.clone(), name: name.to_owned() };
    let rules: Vec<&Value> = match (value.get("spec"), value.get("specs").and_then(Value::as_array)) {
        (Some(spec), _) => vec![spec],
        (None, Some(specs)) => specs.iter().collect(),
        (None, None) => return Err(format!("{kind} {origin}: neither spec nor specs")),
    };
    rules
        .into_iter()
        .map(|rule| translate_rule(rule, &origin, namespace.as_deref()))
        .collect::<Result<_, _>>()
        .map_err(|problem| format!("{kind} {origin}: {problem}"))
}

fn translate_rule(rule: &Value, origin: &Origin, namespace: Option<&str>) -> Result<Policy, String> {
    refuse_unknown(rule, RULE_FIELDS, "the rule")?;
    let selector = rule.get("endpointSelector").ok_or("no endpointSelector (node selectors are not evaluated)")?;
    let subject = endpoints(selector, namespace)?;
    let default_deny = |direction: &str| {
        rule.pointer(&format!("/enableDefaultDeny/{direction}")).and_then(Value::as_bool).unwrap_or(true)
    };
    let ingress = direction(rule.get("ingress"), INGRESS_FIELDS, namespace, default_deny("ingress"))?;
    let egress = direction(rule.get("egress"), EGRESS_FIELDS, namespace, default_deny("egress"))?;
    Ok(Policy { origin: origin.clone(), subject, ingress, egress })
}

/// One direction's rules. An empty list enforces nothing; `enableDefaultDeny: false` adds allows without
/// isolating.
fn direction(
    rules: Option<&Value>,
    fields: &[&str],
    namespace: Option<&str>,
    default_deny: bool,
) -> Result<Direction, String> {
    let Some(rules) = rules else { return Ok(Direction::default()) };
    let rules = rules.as_array().ok_or("ingress and egress must be lists")?;
    let allows = rules.iter().map(|rule| allow(rule, fields, namespace)).collect::<Result<Vec<_>, _>>()?;
    Ok(Direction { isolates: !allows.is_empty() && default_deny, rules: allows })
}

fn allow(rule: &Value, fields: &[&str], namespace: Option<&str>) -> Result<Allow, String> {
    refuse_unknown(rule, fields, "an ingress or egress rule")?;
    let mut peers = Vec::new();
    for key in ["fromEndpoints", "toEndpoints"] {
        for selector in list(rule, key)? {
            peers.push(Peer::Pods(endpoints(selector, namespace)?));
        }
    }
    for key in ["fromCIDR", "toCIDR"] {
        for cidr in list(rule, key)? {
            let cidr = Cidr::parse(cidr.as_str().ok_or(format!("{key} holds a non-string"))?)?;
            peers.push(Peer::Block { cidr, except: Vec::new() });
        }
    }
    for key in ["fromCIDRSet", "toCIDRSet"] {
        for set in list(rule, key)? {
            peers.push(cidr_set(set)?);
        }
    }
    for key in ["fromEntities", "toEntities"] {
        for entity in list(rule, key)? {
            peers.push(Peer::Entity(parse_entity(entity.as_str().ok_or(format!("{key} holds a non-string"))?)));
        }
    }
    for fqdn in list(rule, "toFQDNs")? {
        peers.push(Peer::Fqdn(name_pattern(fqdn)?));
    }
    let ports = match rule.get("toPorts") {
        None => None,
        Some(to_ports) => Some(port_rules(to_ports)?),
    };
    let peers = match (peers.is_empty(), &ports) {
        // Only toPorts: every peer on those ports. Nothing at all (`{}`): nothing.
        (true, Some(_)) => None,
        _ => Some(peers),
    };
    Ok(Allow { peers, ports })
}

fn list<'v>(rule: &'v Value, key: &str) -> Result<&'v [Value], String> {
    match rule.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("{key} must be a list")),
    }
}

fn refuse_unknown(object: &Value, known: &[&str], what: &str) -> Result<(), String> {
    let fields = object.as_object().ok_or(format!("{what} must be a mapping"))?;
    match fields.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(format!(
            "{what} has `{key}`, which netmap-reduce does not evaluate (it reads {}); leave this policy out of \
             the input",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

fn cidr_set(set: &Value) -> Result<Peer, String> {
    let cidr =
        set.get("cidr").and_then(Value::as_str).ok_or("a CIDR set needs `cidr` (cidrGroupRef is not evaluated)")?;
    let except = list(set, "except")?
        .iter()
        .map(|e| Cidr::parse(e.as_str().unwrap_or_default()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Peer::Block { cidr: Cidr::parse(cidr)?, except })
}

fn parse_entity(name: &str) -> Entity {
    match name {
        "all" => Entity::All,
        "world" | "world-ipv4" | "world-ipv6" => Entity::World,
        "cluster" => Entity::Cluster,
        "host" => Entity::Host,
        "remote-node" => Entity::RemoteNode,
        "kube-apiserver" => Entity::KubeApiserver,
        other => Entity::Other(other.to_owned()),
    }
}

fn name_pattern(fqdn: &Value) -> Result<NamePattern, String> {
    let text = |key: &str| fqdn.get(key).and_then(Value::as_str).map(|s| s.trim_end_matches('.').to_ascii_lowercase());
    match (text("matchName"), text("matchPattern")) {
        (Some(name), None) => Ok(NamePattern::Exact(name)),
        (None, Some(pattern)) => Ok(NamePattern::Pattern(pattern)),
        _ => Err("a toFQDNs entry needs exactly one of matchName and matchPattern".to_owned()),
    }
}

fn port_rules(to_ports: &Value) -> Result<Vec<PortRule>, String> {
    let mut rules = Vec::new();
    for entry in to_ports.as_array().ok_or("toPorts must be a list")? {
        let ports = list(entry, "ports")?;
        if ports.is_empty() {
            // Layer 7 rules without ports apply to every port.
            rules.push(PortRule { protocol: None, ports: PortSpec::All });
        }
        for port in ports {
            rules.push(port_rule(port)?);
        }
    }
    Ok(rules)
}

fn port_rule(port: &Value) -> Result<PortRule, String> {
    let protocol = match port.get("protocol").and_then(Value::as_str).unwrap_or("ANY") {
        "ANY" => None,
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        other => return Err(format!("port protocol {other:?}; expected TCP, UDP, SCTP or ANY")),
    };
    let text = match port.get("port") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("a toPorts port needs `port`".to_owned()),
    };
    let end = port.get("endPort").and_then(Value::as_u64).map(|n| u16::try_from(n).unwrap_or(u16::MAX));
    let ports = match text.parse::<u16>() {
        Ok(0) => PortSpec::All,
        Ok(first) => PortSpec::Range(first, end.unwrap_or(first).max(first)),
        Err(_) => PortSpec::Named(text),
    };
    Ok(PortRule { protocol, ports })
}

/// A Cilium endpoint selector as [`Pods`]: `k8s:`/`any:` prefixes dropped, the namespace label and the
/// copied namespace labels moved to the namespace selector, the policy's namespace added when none is named.
fn endpoints(selector: &Value, namespace: Option<&str>) -> Result<Pods, String> {
    let selector: LabelSelector =
        serde_json::from_value(selector.clone()).map_err(|e| format!("invalid endpoint selector: {e}"))?;
    check_selector(&selector)?;
    let mut out = Pods::default();
    for (key, value) in selector.match_labels.iter().flatten() {
        let (target, key) = split_key(key)?;
        let target = if target { &mut out.namespaces } else { &mut out.pods };
        target.match_labels.get_or_insert_with(Default::default).insert(key, value.clone());
    }
    for requirement in selector.match_expressions.iter().flatten() {
        let (target, key) = split_key(&requirement.key)?;
        let target = if target { &mut out.namespaces } else { &mut out.pods };
        let moved = LabelSelectorRequirement { key, ..requirement.clone() };
        target.match_expressions.get_or_insert_with(Vec::new).push(moved);
    }
    let names_namespace = out.namespaces.match_labels.iter().flatten().any(|(k, _)| k == NAMESPACE_NAME_LABEL)
        || out.namespaces.match_expressions.iter().flatten().any(|e| e.key == NAMESPACE_NAME_LABEL);
    if let (Some(ns), false) = (namespace, names_namespace) {
        let own = by_name(ns);
        out.namespaces.match_labels.get_or_insert_with(Default::default).extend(own.match_labels.unwrap_or_default());
    }
    Ok(out)
}

/// (`true` for a namespace label, the key without its source prefix).
fn split_key(key: &str) -> Result<(bool, String), String> {
    let bare = ["k8s:", "any:"].iter().find_map(|p| key.strip_prefix(p)).unwrap_or(key);
    if bare == NAMESPACE_KEY {
        return Ok((true, NAMESPACE_NAME_LABEL.to_owned()));
    }
    if let Some(label) = bare.strip_prefix(NAMESPACE_LABELS_PREFIX) {
        return Ok((true, label.to_owned()));
    }
    if key.starts_with("reserved:") || bare.starts_with("io.cilium.k8s.policy.") || bare.starts_with("io.cilium.") {
        return Err(format!("the selector label {key:?} is not evaluated by netmap-reduce"));
    }
    Ok((false, bare.to_owned()))
}
