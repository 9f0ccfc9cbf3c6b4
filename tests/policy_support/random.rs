//! Random NetworkPolicy cases: a few namespaces and bare pods with random labels and named container ports, and
//! a few policies of random shape. Seeded (xorshift), so a case is reproduced from its seed. Each case records
//! the shapes it holds, so a test can show that every shape was exercised.

use std::collections::{BTreeMap, BTreeSet};

use network_mapper::reduce::policy::inventory::NamedPorts;
use serde_json::{Value, json};

/// Addresses every pod's egress is checked against (inside and outside the generated ipBlocks).
pub const ADDRESSES: [&str; 4] = ["10.1.2.3", "10.200.0.1", "192.0.2.7", "203.0.113.9"];
const NAMESPACES: [&str; 3] = ["alpha", "beta", "gamma"];
const NAMESPACE_LABELS: [(&str, [&str; 2]); 2] = [("team", ["red", "blue"]), ("env", ["prod", "dev"])];
const POD_LABELS: [(&str, [&str; 2]); 3] = [("app", ["web", "db"]), ("tier", ["front", "back"]), ("role", ["a", "b"])];
const PORTS: [u16; 6] = [80, 443, 5432, 8080, 9000, 9090];
const CIDRS: [&str; 4] = ["10.0.0.0/8", "192.0.2.0/24", "0.0.0.0/0", "10.200.0.0/16"];
/// Every shape the generator can produce; [`shapes`] counts them.
pub const SHAPES: [&str; 22] = [
    "policyTypes defaulted",
    "policyTypes Ingress",
    "policyTypes Egress",
    "policyTypes both",
    "empty rule list",
    "rule without peers",
    "rule with empty peers",
    "peer podSelector",
    "peer namespaceSelector",
    "peer both selectors",
    "peer ipBlock",
    "ipBlock except",
    "matchLabels",
    "In",
    "NotIn",
    "Exists",
    "DoesNotExist",
    "port number",
    "named port",
    "endPort",
    "UDP or SCTP",
    "all ports of a protocol",
];

/// A bare pod.
#[derive(Debug, Clone)]
pub struct PodSpec {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub named_ports: NamedPorts,
}

impl PodSpec {
    /// How the analyzer names it.
    pub fn nca_name(&self) -> String {
        format!("{}/{}[Pod]", self.namespace, self.name)
    }
}

/// One generated case.
#[derive(Debug, Clone)]
pub struct Case {
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub pods: Vec<PodSpec>,
    pub policies: Vec<Value>,
    pub shapes: Vec<&'static str>,
}

/// xorshift64*: small, deterministic, good enough to pick shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// The case of `seed`. Its namespaces and pods are suffixed with `tag`: the analyzer keeps pods and namespaces
/// by name across the configurations of one run, so cases checked together must not share names.
pub fn generate(seed: u64, tag: usize) -> Case {
    let mut rng = Rng(seed | 1);
    let namespaces: Vec<String> = NAMESPACES.iter().map(|ns| format!("{ns}-{tag}")).collect();
    let mut case = Case { namespaces: BTreeMap::new(), pods: Vec::new(), policies: Vec::new(), shapes: Vec::new() };
    for name in &namespaces {
        let mut labels = BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), name.to_owned())]);
        for (key, values) in NAMESPACE_LABELS {
            if rng.chance(60) {
                labels.insert(key.to_owned(), rng.pick(&values).to_owned());
            }
        }
        case.namespaces.insert(name.to_owned(), labels);
    }
    let names: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    for index in 0..3 + rng.below(4) {
        let mut pod = pod(&mut rng, &names);
        pod.name = format!("p{index}-{tag}");
        case.pods.push(pod);
    }
    for index in 0..1 + rng.below(4) {
        let policy = policy(&mut Generator { rng: &mut rng, shapes: &mut case.shapes, namespaces: &names }, index);
        case.policies.push(policy);
    }
    case
}

/// What the policy generators share: the randomness, the shapes seen so far, the case's namespaces.
struct Generator<'a> {
    rng: &'a mut Rng,
    shapes: &'a mut Vec<&'static str>,
    namespaces: &'a [&'a str],
}

fn pod(rng: &mut Rng, namespaces: &[&str]) -> PodSpec {
    let mut labels = BTreeMap::new();
    for (key, values) in POD_LABELS {
        if rng.chance(65) {
            labels.insert(key.to_owned(), rng.pick(&values).to_owned());
        }
    }
    let mut named_ports = NamedPorts::new();
    if rng.chance(70) {
        named_ports.insert("http".to_owned(), BTreeSet::from([(rng.pick(&[80, 8080]), "TCP".to_owned())]));
    }
    if rng.chance(40) {
        named_ports.insert("admin".to_owned(), BTreeSet::from([(9000, rng.pick(&["TCP", "UDP"]).to_owned())]));
    }
    PodSpec { name: String::new(), namespace: rng.pick(namespaces).to_owned(), labels, named_ports }
}

impl Generator<'_> {
    fn shape(&mut self, shape: &'static str) {
        self.shapes.push(shape);
    }

    fn namespace(&mut self) -> &str {
        let namespaces = self.namespaces;
        namespaces[self.rng.below(namespaces.len())]
    }
}

fn policy(g: &mut Generator<'_>, index: usize) -> Value {
    let mut spec = serde_json::Map::new();
    spec.insert("podSelector".into(), selector(g, &POD_LABELS, false));
    let (types, shape): (&[&str], _) = match g.rng.below(4) {
        0 => (&[], "policyTypes defaulted"),
        1 => (&["Ingress"], "policyTypes Ingress"),
        2 => (&["Egress"], "policyTypes Egress"),
        _ => (&["Ingress", "Egress"], "policyTypes both"),
    };
    g.shape(shape);
    if !types.is_empty() {
        spec.insert("policyTypes".into(), json!(types));
    }
    for (direction, peers_key, kind) in [("ingress", "from", "Ingress"), ("egress", "to", "Egress")] {
        // Rules of a direction the policy types leave out are refused by the analyzer (and ignored by
        // Kubernetes): not generated.
        if !types.is_empty() && !types.contains(&kind) {
            continue;
        }
        // `egress: []` without policyTypes: Kubernetes defaults to Ingress only (the API server counts rules),
        // the analyzer to Ingress and Egress (it looks for the key). The evaluator follows Kubernetes (a unit
        // test shows it), so that one shape is not compared here.
        let empty_allowed = !(types.is_empty() && kind == "Egress");
        if let Some(rules) = rules(g, peers_key, empty_allowed) {
            spec.insert(direction.into(), rules);
        }
    }
    let namespace = g.namespace().to_owned();
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": format!("policy-{index}"), "namespace": namespace}, "spec": spec})
}

fn rules(g: &mut Generator<'_>, peers_key: &str, empty_allowed: bool) -> Option<Value> {
    match g.rng.below(10) {
        0..=2 => return None,
        3 if empty_allowed => {
            g.shape("empty rule list");
            return Some(json!([]));
        }
        _ => {}
    }
    let count = 1 + g.rng.below(2);
    let rules: Vec<Value> = (0..count).map(|_| rule(g, peers_key)).collect();
    Some(json!(rules))
}

fn rule(g: &mut Generator<'_>, peers_key: &str) -> Value {
    let mut rule = serde_json::Map::new();
    match g.rng.below(8) {
        0 | 1 => g.shape("rule without peers"),
        2 => {
            g.shape("rule with empty peers");
            rule.insert(peers_key.into(), json!([]));
        }
        _ => {
            let count = 1 + g.rng.below(2);
            let peers: Vec<Value> = (0..count).map(|_| peer(g)).collect();
            rule.insert(peers_key.into(), json!(peers));
        }
    }
    if let Some(ports) = ports(g) {
        rule.insert("ports".into(), ports);
    }
    Value::Object(rule)
}

fn peer(g: &mut Generator<'_>) -> Value {
    match g.rng.below(7) {
        0 | 1 => {
            g.shape("peer podSelector");
            json!({"podSelector": selector(g, &POD_LABELS, false)})
        }
        2 | 3 => {
            g.shape("peer namespaceSelector");
            json!({"namespaceSelector": selector(g, &NAMESPACE_LABELS, true)})
        }
        4 | 5 => {
            g.shape("peer both selectors");
            // The analyzer (2.1.0) looks up Exists and DoesNotExist of such a podSelector in the policy's own
            // namespace only, not in the namespaces the namespaceSelector picks: that shape is not compared here
            // (a unit test of the evaluator covers it).
            json!({"podSelector": selector_without_key_operators(g),
                   "namespaceSelector": selector(g, &NAMESPACE_LABELS, true)})
        }
        _ => {
            g.shape("peer ipBlock");
            let cidr = g.rng.pick(&CIDRS);
            if cidr != "10.200.0.0/16" && g.rng.chance(50) {
                g.shape("ipBlock except");
                let except = if cidr == "192.0.2.0/24" { "192.0.2.0/28" } else { "10.200.0.0/16" };
                json!({"ipBlock": {"cidr": cidr, "except": [except]}})
            } else {
                json!({"ipBlock": {"cidr": cidr}})
            }
        }
    }
}

/// A pod selector with `matchLabels` and `In`/`NotIn` requirements only.
fn selector_without_key_operators(g: &mut Generator<'_>) -> Value {
    loop {
        let shapes_before = g.shapes.len();
        let selector = selector(g, &POD_LABELS, false);
        if !selector.to_string().contains("Exist") {
            return selector;
        }
        g.shapes.truncate(shapes_before);
    }
}

/// A label selector over `pool`; for namespaces, sometimes by name.
fn selector(g: &mut Generator<'_>, pool: &[(&str, [&str; 2])], namespaces: bool) -> Value {
    const NAME: &str = "kubernetes.io/metadata.name";
    let mut selector = serde_json::Map::new();
    if g.rng.chance(55) {
        g.shape("matchLabels");
        let (key, value) = if namespaces && g.rng.chance(40) {
            (NAME.to_owned(), g.namespace().to_owned())
        } else {
            let (key, values) = g.rng.pick(pool);
            (key.to_owned(), g.rng.pick(&values).to_owned())
        };
        selector.insert("matchLabels".into(), json!({key: value}));
    }
    if g.rng.chance(45) {
        let (key, values) = g.rng.pick(pool);
        let by_name = namespaces && g.rng.chance(30);
        let value = if by_name { g.namespace().to_owned() } else { g.rng.pick(&values).to_owned() };
        let key = if by_name { NAME } else { key };
        let operator = g.rng.pick(&["In", "NotIn", "Exists", "DoesNotExist"]);
        g.shape(operator);
        let requirement = match operator {
            "In" | "NotIn" => json!({"key": key, "operator": operator, "values": [value]}),
            _ => json!({"key": key, "operator": operator}),
        };
        selector.insert("matchExpressions".into(), json!([requirement]));
    }
    Value::Object(selector)
}

fn ports(g: &mut Generator<'_>) -> Option<Value> {
    if g.rng.chance(35) {
        return None;
    }
    let count = 1 + g.rng.below(2);
    let ports: Vec<Value> = (0..count).map(|_| port(g)).collect();
    Some(json!(ports))
}

fn port(g: &mut Generator<'_>) -> Value {
    let (shape, port) = match g.rng.below(7) {
        0 | 1 => ("port number", json!({"port": g.rng.pick(&PORTS), "protocol": "TCP"})),
        2 => ("port number", json!({"port": g.rng.pick(&PORTS)})),
        3 => ("named port", json!({"port": g.rng.pick(&["http", "admin", "missing"])})),
        4 => {
            let first = g.rng.pick(&PORTS);
            ("endPort", json!({"port": first, "endPort": first + g.rng.pick(&[0, 10, 1000])}))
        }
        5 => ("UDP or SCTP", json!({"port": g.rng.pick(&PORTS), "protocol": g.rng.pick(&["UDP", "SCTP"])})),
        _ => ("all ports of a protocol", json!({"protocol": g.rng.pick(&["TCP", "UDP"])})),
    };
    g.shape(shape);
    port
}

fn list(items: Vec<Value>) -> String {
    serde_yaml::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": items})).unwrap()
}

impl Case {
    pub fn namespace_labels(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.namespaces.clone()
    }

    pub fn namespaces_yaml(&self) -> String {
        let items = self
            .namespaces
            .iter()
            .map(|(name, labels)| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}))
            .collect();
        list(items)
    }

    pub fn pods_yaml(&self) -> String {
        let items = self
            .pods
            .iter()
            .enumerate()
            .map(|(index, pod)| {
                let ports: Vec<Value> = pod
                    .named_ports
                    .iter()
                    .flat_map(|(name, numbers)| {
                        numbers.iter().map(move |(n, p)| json!({"name": name, "containerPort": n, "protocol": p}))
                    })
                    .collect();
                json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": pod.labels},
                       "spec": {"containers": [{"name": "main", "image": "app", "ports": ports}]},
                       "status": {"podIP": format!("172.16.0.{}", index + 10), "phase": "Running"}})
            })
            .collect();
        list(items)
    }

    pub fn policies_yaml(&self) -> String {
        self.policies.iter().map(|p| format!("---\n{}", serde_yaml::to_string(p).unwrap())).collect()
    }
}

/// How often each shape of [`SHAPES`] occurs in `cases`.
pub fn shapes(cases: &[Case]) -> BTreeMap<&'static str, usize> {
    let mut counts: BTreeMap<&'static str, usize> = SHAPES.iter().map(|s| (*s, 0)).collect();
    for shape in cases.iter().flat_map(|c| &c.shapes) {
        *counts.entry(shape).or_default() += 1;
    }
    counts
}
