//! The evaluator: which TCP ports a policy set lets one pod open to one server, by the union-of-allows
//! semantics that NetworkPolicy and Cilium share. A pod is isolated in a direction when some policy selecting
//! it isolates that direction; then only what a rule of a policy selecting it allows passes; a connection needs
//! the client's egress and the server's ingress to allow it.
//!
//! What the inventory cannot say is never guessed: a pod whose labels are unknown, a namespace whose labels
//! were not read, an address block against a name outside the cluster or an API server whose addresses are
//! unknown all give [`Match::Maybe`], and the result keeps two sets, the ports surely allowed and the ports
//! possibly allowed. Pods are never matched by address (docs/policies.md).

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::ports::PortSet;
use super::set::{Allow, Direction, Entity, NamePattern, Peer, Pods, Policy, PortRule, PortSpec, Protocol};
use crate::reduce::policy::inventory::NamedPorts;
use crate::reduce::policy::kubernetes::NAMESPACE_NAME_LABEL;

/// Labels by name.
pub type Labels = BTreeMap<String, String>;

/// A pod as the evaluator sees it; `None` for what the inventory does not know.
#[derive(Debug, Clone, Copy)]
pub struct Pod<'a> {
    pub namespace: &'a str,
    pub labels: Option<&'a Labels>,
    pub named_ports: Option<&'a NamedPorts>,
}

/// Either end of a connection.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint<'a> {
    Pod(Pod<'a>),
    /// Something reached by address: the API server (`api_server`), or a hostNetwork pod (the node's address);
    /// `None` when the address is unknown. Something with several addresses is checked once per address.
    Address {
        address: Option<IpAddr>,
        api_server: bool,
    },
    /// A DNS name outside the cluster.
    Outside(&'a str),
}

/// Whether a selector, peer or policy applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Yes,
    Maybe,
    No,
}

impl Match {
    fn and(self, other: Match) -> Match {
        match (self, other) {
            (Match::No, _) | (_, Match::No) => Match::No,
            (Match::Maybe, _) | (_, Match::Maybe) => Match::Maybe,
            _ => Match::Yes,
        }
    }

    fn or(self, other: Match) -> Match {
        match (self, other) {
            (Match::Yes, _) | (_, Match::Yes) => Match::Yes,
            (Match::Maybe, _) | (_, Match::Maybe) => Match::Maybe,
            _ => Match::No,
        }
    }

    fn of(yes: bool) -> Match {
        if yes { Match::Yes } else { Match::No }
    }
}

/// What one direction allows: the policies that isolate it (indexes into the set) and the ports.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub isolated_by: Vec<usize>,
    /// Ports allowed whatever the unknowns turn out to be.
    pub sure: PortSet,
    /// Ports allowed for some value of the unknowns (a superset of `sure`).
    pub possible: PortSet,
}

/// A client's egress and a server's ingress towards one connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Reach {
    pub egress: Side,
    pub ingress: Side,
}

impl Reach {
    pub fn sure(&self) -> PortSet {
        self.egress.sure.intersect(&self.ingress.sure)
    }

    pub fn possible(&self) -> PortSet {
        self.egress.possible.intersect(&self.ingress.possible)
    }
}

/// A policy set and what is known of the namespaces.
pub struct Evaluator<'a> {
    pub policies: &'a [Policy],
    /// Labels of the namespaces whose Namespace object was read.
    pub namespaces: &'a BTreeMap<String, Labels>,
}

impl Evaluator<'_> {
    /// What `client` may open to `server`.
    pub fn reach(&self, client: Pod<'_>, server: Endpoint<'_>) -> Reach {
        let egress = self.side(client, |p| &p.egress, server, server);
        let ingress = match server {
            Endpoint::Pod(pod) => self.side(pod, |p| &p.ingress, Endpoint::Pod(client), server),
            // Nothing here isolates what is not a pod.
            _ => Side { isolated_by: Vec::new(), sure: PortSet::all(), possible: PortSet::all() },
        };
        Reach { egress, ingress }
    }

    /// One direction of `subject`: towards or from `peer`, on the ports of `server`.
    fn side(
        &self,
        subject: Pod<'_>,
        direction: fn(&Policy) -> &Direction,
        peer: Endpoint<'_>,
        server: Endpoint<'_>,
    ) -> Side {
        let (mut isolated, mut isolated_by) = (Match::No, Vec::new());
        let (mut sure, mut possible) = (PortSet::none(), PortSet::none());
        for (index, policy) in self.policies.iter().enumerate() {
            let selects = self.pods_match(&policy.subject, subject);
            let direction = direction(policy);
            if selects == Match::No {
                continue;
            }
            if direction.isolates && selects == Match::Yes {
                isolated = Match::Yes;
                isolated_by.push(index);
            } else if direction.isolates && isolated == Match::No {
                isolated = Match::Maybe;
            }
            for rule in &direction.rules {
                let (rule_sure, rule_possible) = self.rule_ports(rule, peer, server);
                if selects == Match::Yes {
                    sure = sure.union(&rule_sure);
                }
                possible = possible.union(&rule_possible);
            }
        }
        match isolated {
            Match::No => Side { isolated_by, sure: PortSet::all(), possible: PortSet::all() },
            Match::Yes => Side { isolated_by, sure, possible },
            // Not isolated (everything passes) or isolated (what the rules allow): sure is what both allow.
            Match::Maybe => Side { isolated_by, sure, possible: PortSet::all() },
        }
    }

    /// The ports one rule surely and possibly allows towards or from `peer`.
    fn rule_ports(&self, rule: &Allow, peer: Endpoint<'_>, server: Endpoint<'_>) -> (PortSet, PortSet) {
        let matched = match &rule.peers {
            None => Match::Yes,
            Some(peers) => peers.iter().map(|p| self.peer_match(p, peer)).fold(Match::No, Match::or),
        };
        if matched == Match::No {
            return (PortSet::none(), PortSet::none());
        }
        let (sure, possible) = match &rule.ports {
            None => (PortSet::all(), PortSet::all()),
            Some(ports) => ports
                .iter()
                .map(|p| tcp_ports(p, server))
                .fold((PortSet::none(), PortSet::none()), |(s, p), (rs, rp)| (s.union(&rs), p.union(&rp))),
        };
        if matched == Match::Maybe { (PortSet::none(), possible) } else { (sure, possible) }
    }

    fn peer_match(&self, peer: &Peer, endpoint: Endpoint<'_>) -> Match {
        match (peer, endpoint) {
            (Peer::Pods(pods), Endpoint::Pod(pod)) => self.pods_match(pods, pod),
            (Peer::Pods(_), _) | (Peer::Block { .. }, Endpoint::Pod(_)) | (Peer::Fqdn(_), Endpoint::Pod(_)) => {
                Match::No
            }
            (Peer::Block { cidr, except }, Endpoint::Address { address: Some(ip), .. }) => {
                Match::of(cidr.contains(ip) && !except.iter().any(|e| e.contains(ip)))
            }
            // An address not known here (a name's, or one the inventory lacks): only a whole address family is
            // taken to hold it surely.
            (Peer::Block { cidr, except }, Endpoint::Outside(_) | Endpoint::Address { address: None, .. }) => {
                if cidr.is_everything() && except.is_empty() { Match::Yes } else { Match::Maybe }
            }
            (Peer::Entity(entity), _) => entity_match(entity, endpoint),
            (Peer::Fqdn(pattern), Endpoint::Outside(name)) => Match::of(name_matches(pattern, name)),
            (Peer::Fqdn(_), Endpoint::Address { .. }) => Match::No,
        }
    }

    /// Whether `pods` holds `pod`: its namespace's labels (the name label always known), its own labels.
    pub fn pods_match(&self, pods: &Pods, pod: Pod<'_>) -> Match {
        let own = selector_match(&pods.pods, &|key| pod.labels.map(|l| l.get(key).map(String::as_str)));
        let known = self.namespaces.get(pod.namespace);
        let namespace = selector_match(&pods.namespaces, &|key| match key {
            // The API server gives every namespace this label, read or not.
            NAMESPACE_NAME_LABEL => Some(Some(pod.namespace)),
            _ => known.map(|labels| labels.get(key).map(String::as_str)),
        });
        own.and(namespace)
    }
}

/// A label's value: `None` when it is not known, `Some(None)` when the object does not have it.
type LabelLookup<'l> = dyn Fn(&str) -> Option<Option<&'l str>> + 'l;

/// Kubernetes label selector semantics, three-valued: a requirement on a label whose value is not known is
/// [`Match::Maybe`].
fn selector_match<'l>(selector: &LabelSelector, value_of: &LabelLookup<'l>) -> Match {
    let mut result = Match::Yes;
    for (key, wanted) in selector.match_labels.iter().flatten() {
        result = result.and(value_of(key).map_or(Match::Maybe, |v| Match::of(v == Some(wanted.as_str()))));
    }
    for requirement in selector.match_expressions.iter().flatten() {
        let listed = |v: &str| requirement.values.iter().flatten().any(|x| x == v);
        let holds = value_of(&requirement.key).map(|value| match requirement.operator.as_str() {
            "In" => value.is_some_and(listed),
            "NotIn" => !value.is_some_and(listed),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        });
        result = result.and(holds.map_or(Match::Maybe, Match::of));
    }
    result
}

/// The TCP ports a port rule names on `server` (sure, possible): a named port is the server pod's container
/// port of that name, unknown when its pods are.
fn tcp_ports(rule: &PortRule, server: Endpoint<'_>) -> (PortSet, PortSet) {
    if matches!(rule.protocol, Some(Protocol::Udp | Protocol::Sctp)) {
        return (PortSet::none(), PortSet::none());
    }
    match &rule.ports {
        PortSpec::All => (PortSet::all(), PortSet::all()),
        PortSpec::Range(first, last) => (PortSet::range(*first, *last), PortSet::range(*first, *last)),
        PortSpec::Named(name) => match server {
            Endpoint::Pod(Pod { named_ports: Some(ports), .. }) => {
                let numbers = ports.get(name).into_iter().flatten().filter(|(_, protocol)| protocol == "TCP");
                let set = numbers.fold(PortSet::none(), |set, (n, _)| set.union(&PortSet::range(*n, *n)));
                (set.clone(), set)
            }
            Endpoint::Pod(_) => (PortSet::none(), PortSet::all()),
            _ => (PortSet::none(), PortSet::none()),
        },
    }
}

fn entity_match(entity: &Entity, endpoint: Endpoint<'_>) -> Match {
    let addresses = matches!(endpoint, Endpoint::Address { .. });
    let api_server = matches!(endpoint, Endpoint::Address { api_server: true, .. });
    match entity {
        Entity::All => Match::Yes,
        Entity::World => match endpoint {
            Endpoint::Outside(_) => Match::Yes,
            Endpoint::Address { .. } => Match::Maybe,
            Endpoint::Pod(_) => Match::No,
        },
        Entity::Cluster => match endpoint {
            Endpoint::Pod(_) => Match::Yes,
            Endpoint::Address { .. } => Match::Maybe,
            Endpoint::Outside(_) => Match::No,
        },
        // Where the API server and hostNetwork pods run decides which of these they are.
        Entity::Host | Entity::RemoteNode => {
            if addresses {
                Match::Maybe
            } else {
                Match::No
            }
        }
        Entity::KubeApiserver => Match::of(api_server),
        Entity::Other(_) => Match::No,
    }
}

/// Cilium's `matchName` (exact, case-insensitive) and `matchPattern`: `*` alone is every name, otherwise `*`
/// stands for any run of DNS characters within one label, and a leading `**.` for one or more labels.
pub fn name_matches(pattern: &NamePattern, name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match pattern {
        NamePattern::Exact(exact) => *exact == name,
        NamePattern::Pattern(pattern) if pattern == "*" => true,
        NamePattern::Pattern(pattern) => match pattern.strip_prefix("**.") {
            Some(rest) => name.match_indices('.').any(|(i, _)| glob(rest.as_bytes(), &name.as_bytes()[i + 1..])),
            None => glob(pattern.as_bytes(), name.as_bytes()),
        },
    }
}

fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => {
            (0..=name.len()).take_while(|&i| i == 0 || name[i - 1] != b'.').any(|i| glob(rest, &name[i..]))
        }
        Some((c, rest)) => name.first() == Some(c) && glob(rest, &name[1..]),
    }
}
