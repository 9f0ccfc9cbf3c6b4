//! Ports and the objects that name them: Services (their selectors and target ports), containers' named ports,
//! and the API server's endpoints. Pure: JSON values in, plain values out; [`super::inventory`] assembles them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

/// A port a Service forwards to: a number or a container port's name, with its protocol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetPort {
    pub port: PortRef,
    pub protocol: String,
}

/// A port number or a named container port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

/// Container port names → (number, protocol) of one workload's pods.
pub type NamedPorts = BTreeMap<String, BTreeSet<(u16, String)>>;

/// A Service, as far as ports and backends go.
#[derive(Debug, Clone)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub selector: BTreeMap<String, String>,
    /// (port, target port) pairs.
    pub ports: Vec<(u16, TargetPort)>,
}

/// The named ports of a pod spec's containers (`spec.containers[].ports[]` with a `name`).
pub fn container_ports(pod_spec: &Value) -> NamedPorts {
    let mut ports = NamedPorts::new();
    let containers = pod_spec.get("containers").and_then(Value::as_array).into_iter().flatten();
    for port in containers.flat_map(|c| c.get("ports").and_then(Value::as_array).into_iter().flatten()) {
        let name = port.get("name").and_then(Value::as_str);
        let number = port.get("containerPort").and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok());
        if let (Some(name), Some(number)) = (name, number) {
            let protocol = port.get("protocol").and_then(Value::as_str).unwrap_or("TCP").to_owned();
            ports.entry(name.to_owned()).or_default().insert((number, protocol));
        }
    }
    ports
}

/// A Service's selector and ports; `None` for an ExternalName Service, which selects no pods.
pub fn parse_service(namespace: &str, name: &str, spec: &Value) -> Option<Service> {
    if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return None;
    }
    let selector = spec.get("selector").and_then(|s| serde_json::from_value(s.clone()).ok()).unwrap_or_default();
    let ports = spec
        .get("ports")
        .and_then(Value::as_array)
        .map(|ports| ports.iter().filter_map(service_port).collect())
        .unwrap_or_default();
    Some(Service { namespace: namespace.to_owned(), name: name.to_owned(), selector, ports })
}

fn service_port(port: &Value) -> Option<(u16, TargetPort)> {
    let number = u16::try_from(port.get("port")?.as_u64()?).ok()?;
    let protocol = port.get("protocol").and_then(Value::as_str).unwrap_or("TCP").to_owned();
    let target = match port.get("targetPort") {
        Some(Value::Number(n)) => PortRef::Number(u16::try_from(n.as_u64()?).ok()?),
        Some(Value::String(s)) => match s.parse() {
            Ok(n) => PortRef::Number(n),
            Err(_) => PortRef::Name(s.clone()),
        },
        _ => PortRef::Number(number),
    };
    Some((number, TargetPort { port: target, protocol }))
}

/// The API server is no pod: policies reach it by address, read from `default/kubernetes` endpoints (an
/// EndpointSlice or Endpoints object, whole). `None` for any other endpoints object.
pub fn api_server_endpoints(
    kind: &str,
    name: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    value: &Value,
) -> Option<(Vec<IpAddr>, BTreeSet<u16>)> {
    let service = labels.get("kubernetes.io/service-name").map(String::as_str);
    let is_api =
        namespace == "default" && (service == Some("kubernetes") || (kind == "Endpoints" && name == "kubernetes"));
    if !is_api {
        return None;
    }
    let (mut addresses_found, mut ports) = (Vec::new(), BTreeSet::new());
    let addresses: Vec<&Value> = match kind {
        "EndpointSlice" => value.get("endpoints").and_then(Value::as_array).into_iter().flatten().collect(),
        _ => value.get("subsets").and_then(Value::as_array).into_iter().flatten().collect(),
    };
    for entry in addresses {
        for address in entry.get("addresses").and_then(Value::as_array).into_iter().flatten() {
            let ip = address.as_str().or_else(|| address.get("ip").and_then(Value::as_str));
            addresses_found.extend(ip.and_then(|ip| ip.parse::<IpAddr>().ok()));
        }
        for port in entry.get("ports").and_then(Value::as_array).into_iter().flatten() {
            ports.extend(port.get("port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()));
        }
    }
    if kind == "EndpointSlice" {
        for port in value.get("ports").and_then(Value::as_array).into_iter().flatten() {
            ports.extend(port.get("port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()));
        }
    }
    Some((addresses_found, ports))
}
