//! Mesh control-plane calls in listings and intents (docs/design.md §3 "Service meshes"): a meshed pod's proxy
//! keeps a connection to istiod (15010/15012), which the exporter counts as a real connection of the pod. Every
//! meshed workload would then "call istiod", drowning the application's calls, and a ClientIntents file that
//! declares it would describe the mesh rather than the application. So `--format list` and `intents` leave out, by
//! default, calls whose every observed connection goes to a control-plane port; `--show-control-plane` keeps them.
//! Policies keep them always: a proxy cut off from istiod breaks its pod.

use crate::mesh;

use super::model::{Call, ServiceMap};

/// Whether `call` is only a proxy's connection to its mesh's control plane: it has connections, and all of them
/// go to a control-plane port. A call also seen on another port, or seen only through DNS, is the application's.
pub fn is_control_plane(call: &Call) -> bool {
    !call.ports.is_empty() && call.ports.keys().all(|port| mesh::is_control_plane_port(*port))
}

/// Removes the control-plane calls from `map` (and clients left without a call); returns how many calls it
/// removed.
pub fn leave_out(map: &mut ServiceMap) -> usize {
    let mut removed = 0;
    for client in &mut map.clients {
        let before = client.calls.len();
        client.calls.retain(|call| !is_control_plane(call));
        removed += before - client.calls.len();
    }
    map.clients.retain(|client| !client.calls.is_empty());
    removed
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::reduce::model::Client;

    fn call(server: &str, ports: &[u16]) -> Call {
        let ports: BTreeMap<u16, f64> = ports.iter().map(|p| (*p, 1.0)).collect();
        Call {
            server: server.into(),
            namespace: Some("istio-system".into()),
            kind: None,
            count: 1.0,
            seen: None,
            ports,
        }
    }

    fn client(name: &str, calls: Vec<Call>) -> Client {
        Client { name: name.into(), namespace: "shop".into(), kind: None, calls }
    }

    #[test]
    fn calls_only_to_control_plane_ports_are_left_out_and_their_lonely_clients_with_them() {
        let mut map = ServiceMap {
            clients: vec![
                client("web", vec![call("istiod", &[15012]), call("orders", &[8081]), call("legacy", &[])]),
                client("waypoint", vec![call("istiod", &[15010, 15012])]),
                client("monitor", vec![call("istiod", &[15012, 15014])]),
            ],
        };
        assert_eq!(leave_out(&mut map), 2);
        let kept: Vec<(&str, Vec<&str>)> = map
            .clients
            .iter()
            .map(|c| (c.name.as_str(), c.calls.iter().map(|call| call.server.as_str()).collect()))
            .collect();
        assert_eq!(kept, vec![("web", vec!["orders", "legacy"]), ("monitor", vec!["istiod"])]);
    }
}
