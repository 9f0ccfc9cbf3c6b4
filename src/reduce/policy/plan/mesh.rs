//! What a meshed pod needs on the wire (docs/policies.md, "Service meshes"). The map's ports are the
//! applications' target ports (docs/counting.md, "Service meshes"), but a mesh carries calls between its pods on a
//! port of its own: Istio ambient tunnels them to ztunnel's HBONE port 15008, Linkerd to its proxy's inbound port
//! 4143, the target port travelling inside. An Istio sidecar is reached on the target port (the REDIRECT to Envoy
//! happens inside the pod). A NetworkPolicy sees the wire, so the rules name the wire's ports, and the policy says
//! why in its `network-mapper.io/mesh` annotation.

use super::tcp;
use crate::mesh::{HBONE_PORT, LINKERD_INBOUND_PORT, Mesh, tunnel_port};
use crate::reduce::policy::inventory::TargetPort;

/// The other end of an edge as the inventory knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PeerMesh {
    /// A workload of the inventory, meshed or not.
    Known(Option<Mesh>),
    /// Not in the inventory, or not selectable: it may be meshed.
    Unknown,
}

/// The ports a call on the target `ports` uses between a client and a server of these meshes. Where the client's
/// mesh is not certain both the mesh's port and the target ports are allowed: never a silent denial. An empty
/// list (every port) stays so.
pub(super) fn wire_ports(server: Option<Mesh>, client: PeerMesh, ports: Vec<TargetPort>) -> Vec<TargetPort> {
    let (wire, tunnelled) = match (server, client) {
        (_, PeerMesh::Known(client)) if let Some(port) = tunnel_port(server, client) => (port, true),
        // A sidecar calling an ambient server may tunnel or not depending on its Istio version.
        (Some(Mesh::IstioAmbient), PeerMesh::Unknown | PeerMesh::Known(Some(Mesh::IstioSidecar))) => {
            (HBONE_PORT, false)
        }
        (Some(Mesh::Linkerd), PeerMesh::Unknown) => (LINKERD_INBOUND_PORT, false),
        _ => return ports,
    };
    if ports.is_empty() {
        return ports;
    }
    let mut on_the_wire = if tunnelled { Vec::new() } else { ports };
    on_the_wire.push(tcp(wire));
    on_the_wire.sort();
    on_the_wire.dedup();
    on_the_wire
}

/// The `mesh` annotation of a server's ingress policy.
pub(super) fn ingress_note(mesh: Mesh) -> String {
    let name = mesh.name();
    match mesh {
        Mesh::IstioAmbient => format!(
            "{name}: clients in the mesh reach it through ztunnel's HBONE tunnel on TCP {HBONE_PORT} (the target \
             port travels inside), clients outside the mesh on the target port; a waypoint in front of it reaches it \
             on TCP {HBONE_PORT} from the waypoint's pods, which this map does not show"
        ),
        Mesh::Linkerd => format!(
            "{name}: Linkerd clients reach its proxy on TCP {LINKERD_INBOUND_PORT} (the target port travels inside), \
             clients outside the mesh on the target port"
        ),
        Mesh::IstioSidecar => {
            format!("{name}: clients reach the target port; the sidecar takes the connection inside the pod")
        }
    }
}

/// The `mesh` annotation of a client's egress policy.
pub(super) fn egress_note(mesh: Mesh) -> String {
    let name = mesh.name();
    match mesh {
        Mesh::IstioAmbient => format!(
            "{name}: ztunnel carries its calls to servers in the mesh on TCP {HBONE_PORT} (HBONE), to others on the \
             target port"
        ),
        Mesh::Linkerd => {
            format!(
                "{name}: its proxy reaches Linkerd servers on TCP {LINKERD_INBOUND_PORT}, others on the target port"
            )
        }
        Mesh::IstioSidecar => format!("{name}: its sidecar reaches servers on their target ports"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(ports: &[TargetPort]) -> Vec<String> {
        ports.iter().map(|p| format!("{:?}", p.port)).collect()
    }

    #[test]
    fn meshed_pairs_meet_on_the_meshs_port_and_uncertain_ones_get_both() {
        use Mesh::*;
        let target = || vec![tcp(9091)];
        let wire = |server, client| numbers(&wire_ports(server, client, target()));
        assert_eq!(wire(Some(IstioAmbient), PeerMesh::Known(Some(IstioAmbient))), ["Number(15008)"]);
        assert_eq!(wire(Some(IstioAmbient), PeerMesh::Known(None)), ["Number(9091)"]);
        assert_eq!(wire(Some(IstioAmbient), PeerMesh::Unknown), ["Number(9091)", "Number(15008)"]);
        assert_eq!(wire(Some(IstioAmbient), PeerMesh::Known(Some(IstioSidecar))), ["Number(9091)", "Number(15008)"]);
        assert_eq!(wire(Some(Linkerd), PeerMesh::Known(Some(Linkerd))), ["Number(4143)"]);
        assert_eq!(wire(Some(Linkerd), PeerMesh::Known(Some(IstioAmbient))), ["Number(9091)"]);
        assert_eq!(wire(Some(IstioSidecar), PeerMesh::Known(Some(IstioSidecar))), ["Number(9091)"]);
        assert_eq!(wire(None, PeerMesh::Unknown), ["Number(9091)"]);
        assert!(wire_ports(Some(IstioAmbient), PeerMesh::Unknown, Vec::new()).is_empty(), "every port stays so");
    }
}
