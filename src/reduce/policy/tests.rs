//! The planner on the cases peers get wrong: StatefulSets, bare pods, custom owners, Otterize names, volatile
//! labels only, hostNetwork servers, DNS-only edges with and without a Service, named ports, the API server.

use super::inventory::ClusterInfo;
use super::plan::{Direction, Peer, PlanOptions, plan};
use super::{PolicyFormat, render_documents};
use crate::reduce::model::{Edge, EdgePorts, Filter, Snapshot};

const INVENTORY: &str = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: apps/v1, kind: StatefulSet, metadata: {name: db, namespace: app},
   spec: {selector: {matchLabels: {app: db}}, template: {metadata: {labels: {app: db}}}}}
- {apiVersion: v1, kind: Pod, metadata: {name: db-0, namespace: app,
   labels: {app: db, statefulset.kubernetes.io/pod-name: db-0, controller-revision-hash: db-7c},
   ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: db, uid: u1, controller: true}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: debug, namespace: app, labels: {run: debug, pod-template-hash: x}}}
- {apiVersion: argoproj.io/v1alpha1, kind: Rollout, metadata: {name: web, namespace: app},
   spec: {selector: {matchLabels: {app: web}}}}
- {apiVersion: apps/v1, kind: ReplicaSet, metadata: {name: web-6d, namespace: app,
   ownerReferences: [{apiVersion: argoproj.io/v1alpha1, kind: Rollout, name: web, uid: u2, controller: true}]},
   spec: {selector: {matchLabels: {app: web, rollouts-pod-template-hash: 6d}}}}
- {apiVersion: v1, kind: Pod, metadata: {name: web-6d-abcde, namespace: app, labels: {app: web, rollouts-pod-template-hash: 6d},
   ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-6d, uid: u3, controller: true}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: worker-1, namespace: app, labels: {pod-template-hash: y},
   annotations: {intents.otterize.com/workload-name: worker}}}
- {apiVersion: apps/v1, kind: DaemonSet, metadata: {name: agent, namespace: app},
   spec: {selector: {matchLabels: {app: agent}}, template: {metadata: {labels: {app: agent}}, spec: {hostNetwork: true}}}}
- {apiVersion: v1, kind: Service, metadata: {name: db, namespace: app},
   spec: {selector: {app: db}, ports: [{port: 80, targetPort: http, protocol: TCP}]}}
"#;

fn edge(client: &str, server: &str, server_ns: Option<&str>) -> Edge {
    Edge {
        client: client.into(),
        namespace: "app".into(),
        server: server.into(),
        server_namespace: server_ns.map(Into::into),
    }
}

fn run(direction: Direction, fqdn: bool, ports: EdgePorts) -> (Vec<String>, Vec<super::plan::Policy>) {
    let info = ClusterInfo::from_yaml(INVENTORY).unwrap();
    let mut snapshot = Snapshot::default();
    for e in [
        edge("web", "db", Some("app")),
        edge("debug", "web", Some("app")),
        edge("web", "agent", Some("app")),
        edge("worker", "web", Some("app")),
        edge("web", "kubernetes", Some("default")),
        edge("web", "api.example.com", None),
    ] {
        snapshot.add_edge(e, 1.0);
    }
    let map = snapshot.into_map(&Filter::default());
    let options = PlanOptions { direction, fqdn, default_deny: false, ..PlanOptions::default() };
    let plan = plan(&map, &ports, &info, &options);
    (plan.left_out, plan.policies)
}

#[test]
fn selectors_come_from_controllers_and_never_carry_volatile_labels() {
    let info = ClusterInfo::from_yaml(INVENTORY).unwrap();
    let selector = |name: &str| {
        let w = info.workload("app", name).unwrap();
        w.selector.as_ref().map(super::labels::describe)
    };
    assert_eq!(selector("db").as_deref(), Some("app=db"), "a StatefulSet by its selector, not per pod");
    assert_eq!(selector("web").as_deref(), Some("app=web"), "a custom owner's spec.selector");
    assert_eq!(selector("debug").as_deref(), Some("run=debug"), "a bare pod's stable labels");
    assert_eq!(selector("worker"), None, "only volatile labels: no selector");
    assert!(info.workload("app", "agent").unwrap().host_network);
}

#[test]
fn what_cannot_be_expressed_is_left_out_and_said() {
    let (left_out, policies) = run(Direction::Both, false, EdgePorts::new());
    let all = left_out.join("\n");
    assert!(all.contains("no ingress policy for app/agent runs with hostNetwork"), "{all}");
    assert!(all.contains("app/worker (Pod) has no stable pod selector"), "{all}");
    assert!(all.contains("api.example.com (outside the cluster"), "{all}");
    assert!(all.contains("the API server (its addresses are unknown"), "{all}");
    let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["db-ingress", "debug-egress", "web-egress", "web-ingress"]);
}

#[test]
fn dns_only_edges_use_service_target_ports_else_all_ports_with_a_reason() {
    let (_, policies) = run(Direction::Ingress, false, EdgePorts::new());
    let db = policies.iter().find(|p| p.name == "db-ingress").unwrap();
    let yaml = &render_documents(
        &super::plan::Plan { policies: vec![db.clone()], left_out: vec![] },
        PolicyFormat::Kubernetes,
        "7d",
    )[0]
    .yaml;
    assert!(yaml.contains("port: http"), "named target port of Service app/db:\n{yaml}");
    let web = policies.iter().find(|p| p.name == "web-ingress").unwrap();
    assert!(web.ingress.as_ref().unwrap()[0].ports.is_empty());
    assert!(web.notes["peers"].contains("no Service selects its pods: all ports"), "{:?}", web.notes);
}

#[test]
fn observed_ports_win_over_service_ports() {
    let ports = EdgePorts::from([(edge("web", "db", Some("app")), [5432].into())]);
    let (_, policies) = run(Direction::Ingress, false, ports);
    let db = policies.iter().find(|p| p.name == "db-ingress").unwrap();
    assert!(db.notes["peers"].contains("TCP 5432 (observed connections)"), "{:?}", db.notes);
}

#[test]
fn cilium_names_outside_servers_and_the_api_server() {
    let (left_out, policies) = run(Direction::Egress, true, EdgePorts::new());
    assert!(!left_out.iter().any(|l| l.contains("api.example.com") || l.contains("API server")), "{left_out:?}");
    let web = policies.iter().find(|p| p.name == "web-egress").unwrap();
    let peers: Vec<&Peer> = web.egress.as_ref().unwrap().iter().flat_map(|r| &r.peers).collect();
    assert!(peers.contains(&&Peer::Fqdn("api.example.com".into())));
    assert!(peers.iter().any(|p| matches!(p, Peer::ApiServer(_))));
    let yaml = &render_documents(
        &super::plan::Plan { policies: vec![web.clone()], left_out: vec![] },
        PolicyFormat::Cilium,
        "7d",
    )[0]
    .yaml;
    assert!(yaml.contains("toEntities:\n        - kube-apiserver"), "{yaml}");
    assert!(yaml.contains("matchPattern: '*'"), "the DNS proxy rule toFQDNs needs:\n{yaml}");
}

#[test]
fn cidrs_are_checked() {
    assert_eq!(super::parse_cidr("10.0.0.0/8").unwrap(), "10.0.0.0/8");
    assert_eq!(super::parse_cidr("fd00::/64").unwrap(), "fd00::/64");
    for bad in ["10.0.0.0", "10.0.0.0/33", "x/8", "fd00::/129"] {
        assert!(super::parse_cidr(bad).is_err(), "{bad}");
    }
}
