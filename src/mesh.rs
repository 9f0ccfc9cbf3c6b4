//! Service meshes as a node sees them (docs/design.md §3 "Service meshes", docs/counting.md "Service meshes"):
//! which pods run a mesh proxy, the ports a proxy owns, the control-plane ports, and the one rule that decides
//! whether a connection is an application call or a proxy's.
//!
//! Shared vocabulary with no I/O, like [`crate::UnixMicros`]: the socket scan, the inventory, the pipeline and the
//! reducer all speak it (`tests/layering.rs` lets every layer import it). Nothing here is configuration: the
//! numbers are the meshes' own, and a pod's mesh comes from the annotation its mesh writes on it.

/// The mesh a pod belongs to, from the annotation its mesh writes on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mesh {
    /// An Istio sidecar (`istio-proxy`, uid 1337): annotation `sidecar.istio.io/status`, written by the injector.
    IstioSidecar,
    /// Istio ambient with in-pod redirection: `ambient.istio.io/redirection: enabled`, written by istio-cni.
    IstioAmbient,
    /// A Linkerd proxy (`linkerd-proxy`, uid 2102): `linkerd.io/proxy-version`, written by the injector.
    Linkerd,
}

/// The annotations that say a pod is meshed, and the value that must match (`None`: any value).
const ANNOTATIONS: [(&str, Option<&str>, Mesh); 3] = [
    ("sidecar.istio.io/status", None, Mesh::IstioSidecar),
    ("ambient.istio.io/redirection", Some("enabled"), Mesh::IstioAmbient),
    ("linkerd.io/proxy-version", None, Mesh::Linkerd),
];

impl Mesh {
    /// The mesh a pod's annotations name (`get` looks one up by key), if any.
    pub fn from_annotations<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<Mesh> {
        ANNOTATIONS.iter().find_map(|(key, wanted, mesh)| match (get(key), wanted) {
            (Some(value), Some(wanted)) if value == *wanted => Some(*mesh),
            (Some(_), None) => Some(*mesh),
            _ => None,
        })
    }

    /// Short stable name (policy annotations, logs).
    pub fn name(self) -> &'static str {
        match self {
            Mesh::IstioSidecar => "istio-sidecar",
            Mesh::IstioAmbient => "istio-ambient",
            Mesh::Linkerd => "linkerd",
        }
    }
}

/// The port a call between a client and a server of these meshes surely takes on the wire instead of the
/// server's target port: ztunnel's HBONE port between ambient pods, Linkerd's inbound port between Linkerd pods
/// (the target port travels inside). `None` where the target port is on the wire: an Istio sidecar is reached on
/// it (its REDIRECT happens inside the pod), and so is any pod from outside its mesh.
pub fn tunnel_port(server: Option<Mesh>, client: Option<Mesh>) -> Option<u16> {
    match (server?, client?) {
        (Mesh::IstioAmbient, Mesh::IstioAmbient) => Some(HBONE_PORT),
        (Mesh::Linkerd, Mesh::Linkerd) => Some(LINKERD_INBOUND_PORT),
        _ => None,
    }
}

/// ztunnel's (and a waypoint's) HBONE port.
pub const HBONE_PORT: u16 = 15008;
/// Linkerd's inbound proxy port.
pub const LINKERD_INBOUND_PORT: u16 = 4143;

/// Ports a mesh proxy listens on: Istio's outbound and inbound capture (15001, 15006), HBONE (15008), the DNS
/// proxy (15053), Envoy's Prometheus endpoint (15090); Linkerd's outbound and inbound proxy (4140, 4143) and
/// admin (4191). A connection to one of them is the proxy's, never an application call.
pub const PROXY_PORTS: [u16; 8] = [15001, 15006, HBONE_PORT, 15053, 15090, 4140, LINKERD_INBOUND_PORT, 4191];

/// istiod's xDS ports (15010 plaintext, 15012 mTLS, also the CA): a proxy's connections there are the pod's own.
pub const CONTROL_PLANE_PORTS: [u16; 2] = [15010, 15012];

/// Whether `port` is one a mesh proxy owns ([`PROXY_PORTS`]).
pub fn is_proxy_port(port: u16) -> bool {
    PROXY_PORTS.contains(&port)
}

/// Whether `port` is a mesh control-plane port ([`CONTROL_PLANE_PORTS`]).
pub fn is_control_plane_port(port: u16) -> bool {
    CONTROL_PLANE_PORTS.contains(&port)
}

/// How a connection was seen, as far as meshes matter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sighting {
    /// A SYN on the wire, or a socket of a namespace without a mesh proxy: whose it is depends on the client pod.
    Plain,
    /// The application's socket that a mesh proxy in its namespace intercepted: its remote end is the address the
    /// application dialled.
    Intercepted,
    /// A socket of the namespace's mesh proxy (the uid of its mesh listeners): a relay's upstream, a tunnel, or
    /// the proxy's own connection to its control plane.
    Proxy,
    /// A socket of the application that its namespace's mesh proxy let through (a port or range excluded from
    /// capture).
    Bypass,
}

/// Whether a connection to port `port` (as dialled) is an application call, or a mesh proxy's that is not one:
/// - anything to a proxy port is the proxy's (a tunnel, a scrape of the proxy's own metrics);
/// - an intercepted or bypassing socket is the application's;
/// - a proxy's socket, or a plain sighting from a meshed pod, is a relay unless it goes to the control plane (a
///   meshed pod's proxy carries every connection its application makes; they are counted from the
///   application's intercepted sockets instead, once each, whatever the proxy pools or multiplexes).
pub fn is_application_call(sighting: Sighting, client_mesh: Option<Mesh>, port: u16) -> bool {
    if is_proxy_port(port) {
        return false;
    }
    match sighting {
        Sighting::Intercepted | Sighting::Bypass => true,
        Sighting::Proxy => is_control_plane_port(port),
        Sighting::Plain => client_mesh.is_none() || is_control_plane_port(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_name_the_mesh() {
        let of = |pairs: &'static [(&'static str, &'static str)]| {
            Mesh::from_annotations(|key| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v))
        };
        assert_eq!(of(&[("sidecar.istio.io/status", "{\"containers\":[\"istio-proxy\"]}")]), Some(Mesh::IstioSidecar));
        assert_eq!(of(&[("ambient.istio.io/redirection", "enabled")]), Some(Mesh::IstioAmbient));
        assert_eq!(of(&[("ambient.istio.io/redirection", "disabled")]), None, "ztunnel's own pod says disabled");
        assert_eq!(of(&[("linkerd.io/proxy-version", "edge-25.1.1")]), Some(Mesh::Linkerd));
        assert_eq!(of(&[("intents.otterize.com/workload-name", "x")]), None);
    }

    #[test]
    fn relays_and_tunnels_are_not_calls_and_the_control_plane_is() {
        use Sighting::*;
        let sidecar = Some(Mesh::IstioSidecar);
        assert!(is_application_call(Intercepted, sidecar, 8080));
        assert!(!is_application_call(Proxy, sidecar, 8080), "a relay's upstream");
        assert!(is_application_call(Proxy, sidecar, 15012), "istiod");
        assert!(!is_application_call(Plain, sidecar, 8080), "a SYN of a meshed pod: its proxy's");
        assert!(is_application_call(Plain, sidecar, 15010));
        assert!(is_application_call(Plain, None, 8080));
        assert!(is_application_call(Bypass, sidecar, 5432), "a port excluded from capture");
        for port in PROXY_PORTS {
            assert!(!is_application_call(Plain, None, port), "{port}: HBONE, Linkerd's inbound, a scrape");
        }
        let (ambient, linkerd) = (Some(Mesh::IstioAmbient), Some(Mesh::Linkerd));
        assert_eq!(tunnel_port(ambient, ambient), Some(15008));
        assert_eq!(tunnel_port(linkerd, linkerd), Some(4143));
        assert_eq!(tunnel_port(sidecar, sidecar), None, "a sidecar is reached on the target port");
        assert_eq!(tunnel_port(ambient, None), None, "from outside the mesh: plain text to the target port");
    }
}
