//! The evaluator on what the analyzer cross-check (tests/policy_nca.rs) does not cover: Kubernetes' own
//! defaulting where the analyzer differs, unknowns, Cilium's policies, names outside the cluster.

use std::collections::BTreeMap;

use super::evaluate::{Endpoint, Evaluator, Labels, Pod, name_matches};
use super::load::policies_from_text;
use super::ports::PortSet;
use super::set::NamePattern;
use crate::reduce::policy::inventory::NamedPorts;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

struct World {
    namespaces: BTreeMap<String, Labels>,
    ports: NamedPorts,
}

impl World {
    fn new() -> World {
        let mut namespaces = BTreeMap::new();
        for (ns, team) in [("shop", "red"), ("ops", "blue")] {
            let labels = labels(&[("kubernetes.io/metadata.name", ns), ("team", team)]);
            namespaces.insert(ns.to_owned(), labels);
        }
        let ports = NamedPorts::from([("http".to_owned(), [(8080, "TCP".to_owned())].into())]);
        World { namespaces, ports }
    }

    fn pod<'a>(&'a self, namespace: &'a str, labels: &'a Labels) -> Pod<'a> {
        Pod { namespace, labels: Some(labels), named_ports: Some(&self.ports) }
    }

    /// The TCP ports surely and possibly allowed from `client` to `server` under `policies` (YAML).
    fn reach(&self, policies: &str, client: Pod<'_>, server: Endpoint<'_>) -> (PortSet, PortSet) {
        let policies = policies_from_text("test.yaml", policies).unwrap();
        let evaluator = Evaluator { policies: &policies, namespaces: &self.namespaces };
        let reach = evaluator.reach(client, server);
        (reach.sure(), reach.possible())
    }
}

const EMPTY_EGRESS_DEFAULTED: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec: {podSelector: {}, ingress: [{}], egress: []}
";

#[test]
fn an_empty_egress_list_without_policy_types_isolates_ingress_only_as_the_api_server_defaults_it() {
    let world = World::new();
    let web = labels(&[("app", "web")]);
    let (sure, _) = world.reach(EMPTY_EGRESS_DEFAULTED, world.pod("shop", &web), Endpoint::Outside("x.example"));
    assert!(sure.is_all(), "the analyzer would isolate egress here; Kubernetes counts rules, not the key");
}

const EXISTS_ACROSS_NAMESPACES: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: blue}}, podSelector: {matchExpressions: [{key: role, operator: Exists}]}}]
    ports: [{port: http}]
";

#[test]
fn a_pod_selector_beside_a_namespace_selector_looks_in_the_selected_namespaces() {
    let world = World::new();
    let (client, server) = (labels(&[("role", "probe")]), labels(&[("app", "web")]));
    let (sure, _) =
        world.reach(EXISTS_ACROSS_NAMESPACES, world.pod("ops", &client), Endpoint::Pod(world.pod("shop", &server)));
    assert_eq!(sure, PortSet::range(8080, 8080), "named port http of the server");
    let nobody = labels(&[]);
    let (sure, possible) =
        world.reach(EXISTS_ACROSS_NAMESPACES, world.pod("ops", &nobody), Endpoint::Pod(world.pod("shop", &server)));
    assert!(sure.is_empty() && possible.is_empty());
}

#[test]
fn what_the_inventory_does_not_say_is_uncertain_never_guessed() {
    let mut world = World::new();
    let server = labels(&[("app", "web")]);
    let unknown_client = Pod { namespace: "ops", labels: None, named_ports: None };
    let (sure, possible) =
        world.reach(EXISTS_ACROSS_NAMESPACES, unknown_client, Endpoint::Pod(world.pod("shop", &server)));
    assert!(sure.is_empty() && possible == PortSet::range(8080, 8080), "unknown labels: maybe");
    world.namespaces.remove("ops");
    let client = labels(&[("role", "probe")]);
    let (sure, possible) =
        world.reach(EXISTS_ACROSS_NAMESPACES, world.pod("ops", &client), Endpoint::Pod(world.pod("shop", &server)));
    assert!(sure.is_empty() && !possible.is_empty(), "the namespace's team label is not known");
}

const API_SERVER_EGRESS: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.9.0.0/16]}}], ports: [{port: 6443}]}]
";

#[test]
fn address_blocks_match_known_addresses_and_leave_unknown_ones_uncertain() {
    let world = World::new();
    let web = labels(&[("app", "web")]);
    let at = |ip: Option<&str>| Endpoint::Address { address: ip.map(|i| i.parse().unwrap()), api_server: true };
    let client = world.pod("shop", &web);
    assert_eq!(world.reach(API_SERVER_EGRESS, client, at(Some("10.1.0.1"))).0, PortSet::range(6443, 6443));
    assert!(world.reach(API_SERVER_EGRESS, client, at(Some("10.9.0.1"))).1.is_empty(), "excepted");
    let (sure, possible) = world.reach(API_SERVER_EGRESS, client, at(None));
    assert!(sure.is_empty() && possible == PortSet::range(6443, 6443));
    let (sure, _) = world.reach(API_SERVER_EGRESS, client, Endpoint::Outside("api.example.com"));
    assert!(sure.is_empty(), "a name's address is not known");
    let server = labels(&[]);
    let (_, possible) = world.reach(API_SERVER_EGRESS, client, Endpoint::Pod(world.pod("shop", &server)));
    assert!(possible.is_empty(), "pods are never matched by address");
}

const CILIUM: &str = "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {k8s:app: front}}]
    toPorts: [{ports: [{port: '8080', protocol: TCP}]}]
  - fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: ops, role: probe}}]
  egress:
  - toFQDNs: [{matchName: api.example.com}, {matchPattern: '*.cdn.example'}]
    toPorts: [{ports: [{port: '443', protocol: TCP}]}]
  - toEntities: [kube-apiserver]
  - toPorts: [{ports: [{port: '53', protocol: ANY}], rules: {dns: [{matchPattern: '*'}]}}]
";

#[test]
fn cilium_selectors_entities_names_and_ports() {
    let world = World::new();
    let (web, front, probe) = (labels(&[("app", "web")]), labels(&[("app", "front")]), labels(&[("role", "probe")]));
    let server = Endpoint::Pod(world.pod("shop", &web));
    assert_eq!(world.reach(CILIUM, world.pod("shop", &front), server).0, PortSet::range(8080, 8080));
    assert!(
        world.reach(CILIUM, world.pod("ops", &front), server).1.is_empty(),
        "fromEndpoints: the policy's namespace"
    );
    assert!(world.reach(CILIUM, world.pod("ops", &probe), server).0.is_all(), "a named namespace, all ports");
    let client = world.pod("shop", &web);
    let https = PortSet::range(443, 443).union(&PortSet::range(53, 53));
    assert_eq!(world.reach(CILIUM, client, Endpoint::Outside("API.example.com.")).0, https);
    assert_eq!(world.reach(CILIUM, client, Endpoint::Outside("img.cdn.example")).0, https);
    assert_eq!(world.reach(CILIUM, client, Endpoint::Outside("a.b.cdn.example")).0, PortSet::range(53, 53));
    let api = Endpoint::Address { address: None, api_server: true };
    assert!(world.reach(CILIUM, client, api).0.is_all(), "the kube-apiserver entity");
}

const CILIUM_DIRECTIONS: &str = "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: shop}
specs:
- {endpointSelector: {matchLabels: {app: web}}, ingress: [{}], egress: []}
- {endpointSelector: {matchLabels: {app: web}}, egress: [{toEntities: [world]}], enableDefaultDeny: {egress: false}}
";

#[test]
fn cilium_enforces_a_direction_only_when_it_has_rules() {
    let world = World::new();
    let web = labels(&[("app", "web")]);
    let (sure, possible) =
        world.reach(CILIUM_DIRECTIONS, world.pod("ops", &web), Endpoint::Pod(world.pod("shop", &web)));
    assert!(sure.is_empty() && possible.is_empty(), "`ingress: [{{}}]` allows nothing");
    let (sure, _) = world.reach(CILIUM_DIRECTIONS, world.pod("shop", &web), Endpoint::Pod(world.pod("ops", &web)));
    assert!(sure.is_all(), "`egress: []` and rules without default deny enforce nothing");
}

#[test]
fn what_is_not_evaluated_is_refused_naming_the_policy() {
    let deny = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: d, namespace: shop}\n\
                spec: {endpointSelector: {}, ingressDeny: [{fromEntities: [world]}]}\n";
    let err = policies_from_text("deny.yaml", deny).unwrap_err().to_string();
    assert!(
        err.starts_with("deny.yaml: document 1: CiliumNetworkPolicy shop/d") && err.contains("ingressDeny"),
        "{err}"
    );
    let calico = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: c, namespace: shop}\n";
    let err = policies_from_text("calico.yaml", calico).unwrap_err().to_string();
    assert!(err.contains("projectcalico.org/v3") && err.contains("leave it out"), "{err}");
    let bad = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: b, namespace: shop}\n\
               spec: {podSelector: {matchExpressions: [{key: a, operator: Is}]}}\n";
    let err = policies_from_text("bad.yaml", bad).unwrap_err().to_string();
    assert!(err.contains("NetworkPolicy shop/b") && err.contains("unknown operator \"Is\""), "{err}");
}

#[test]
fn name_patterns_follow_cilium() {
    let pattern = |p: &str| NamePattern::Pattern(p.to_owned());
    assert!(name_matches(&pattern("*"), "anything.at.all"));
    assert!(name_matches(&pattern("*.example.com"), "api.example.com"));
    assert!(!name_matches(&pattern("*.example.com"), "a.b.example.com"), "one label only");
    assert!(name_matches(&pattern("**.example.com"), "a.b.example.com"));
    assert!(name_matches(&pattern("api-*.example.com"), "api-eu.example.com"));
    assert!(name_matches(&NamePattern::Exact("api.example.com".into()), "API.Example.com."));
}
