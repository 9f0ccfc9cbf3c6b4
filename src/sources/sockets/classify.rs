//! Decides, for the sockets of one network namespace, which ones are the client side of a connection, and, where
//! a mesh proxy runs in the namespace, whose (docs/counting.md, "Service meshes"). Pure: rows in, outcomes out.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use rustc_hash::FxHashSet;

use super::table::{SocketRow, state};
use crate::mesh::{self, Sighting};

/// What one socket row is, from the point of view of edge counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// ESTABLISHED, not loopback, local port not listening: this namespace opened the connection; the sighting
    /// says whether a mesh proxy intercepted it, made it, or let it through.
    Client(Sighting),
    /// ESTABLISHED on a port this namespace listens on: the server's end, counted on the client's node.
    ServerSide,
    /// Either end is a loopback address: traffic inside the pod, not an edge.
    Loopback,
    /// LISTEN, TIME_WAIT, SYN_SENT, an unknown state byte, ...
    NotEstablished,
}

/// The LISTEN sockets of one namespace, across `tcp` and `tcp6`.
#[derive(Debug, Default)]
pub struct Listeners {
    /// Ports listened on at `0.0.0.0` or `::`. A dual-stack `::` listener also accepts IPv4, so a wildcard in
    /// either family covers every local address.
    any_address: HashSet<u16>,
    specific: HashSet<SocketAddr>,
    /// The owner of a listener on a mesh proxy port ([`mesh::PROXY_PORTS`]): the namespace runs a mesh proxy,
    /// and this uid is the proxy's (Envoy's 1337, Linkerd's 2102, ztunnel's 0 for the sockets it keeps in the pod).
    proxy_uid: Option<u32>,
}

impl Listeners {
    /// Forgets everything, keeping the allocations for the next namespace.
    pub fn clear(&mut self) {
        self.any_address.clear();
        self.specific.clear();
        self.proxy_uid = None;
    }

    /// Records `row` if it is a LISTEN socket.
    pub fn add(&mut self, row: &SocketRow) {
        if row.state != state::LISTEN {
            return;
        }
        if row.local.ip().is_unspecified() {
            self.any_address.insert(row.local.port());
        } else {
            self.specific.insert(row.local);
        }
        if self.proxy_uid.is_none() && mesh::is_proxy_port(row.local.port()) {
            self.proxy_uid = Some(row.uid);
        }
    }

    /// Whether a socket bound to `local` is the accepted end of one of these listeners.
    pub fn accepts(&self, local: SocketAddr) -> bool {
        // The emptiness check spares hashing a SocketAddr in the common case of wildcard listeners only.
        self.any_address.contains(&local.port()) || (!self.specific.is_empty() && self.specific.contains(&local))
    }

    /// The mesh proxy's uid, when the namespace runs one.
    pub fn proxy_uid(&self) -> Option<u32> {
        self.proxy_uid
    }

    /// Builds the listeners of a whole namespace (tests and callers that hold all rows at once).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = &'a SocketRow>) -> Self {
        let mut listeners = Self::default();
        rows.into_iter().for_each(|row| listeners.add(row));
        listeners
    }
}

/// The client ends of the connections a proxy in the namespace intercepted: a REDIRECT in the namespace's OUTPUT
/// chain makes the proxy accept the application's connection on a loopback address (`127.0.0.1:15001` for Istio,
/// `:4140` for Linkerd) with the application's own end as the peer, while the application's socket keeps the
/// address it dialled. Only namespaces with a mesh proxy fill it.
#[derive(Debug, Default)]
pub struct Intercepted {
    client_ends: FxHashSet<SocketAddr>,
}

impl Intercepted {
    pub fn clear(&mut self) {
        self.client_ends.clear();
    }

    /// Records `row` if it is a proxy's accepted end of an intercepted connection.
    pub fn add(&mut self, row: &SocketRow) {
        if row.state != state::LISTEN && is_loopback(row.local.ip()) && !is_loopback(row.remote.ip()) {
            self.client_ends.insert(row.remote);
        }
    }

    fn contains(&self, local: SocketAddr) -> bool {
        !self.client_ends.is_empty() && self.client_ends.contains(&local)
    }
}

/// Classifies one row against the listeners of its namespace and, in a namespace with a mesh proxy, the
/// connections the proxy intercepted.
pub fn classify(row: &SocketRow, listeners: &Listeners, intercepted: &Intercepted) -> Outcome {
    if row.state != state::ESTABLISHED {
        Outcome::NotEstablished
    } else if is_loopback(row.local.ip()) || is_loopback(row.remote.ip()) {
        Outcome::Loopback
    } else if listeners.accepts(row.local) {
        Outcome::ServerSide
    } else {
        Outcome::Client(sighting(row, listeners.proxy_uid, intercepted))
    }
}

/// Whose a client socket is in a namespace with (or without) a mesh proxy. The uid decides between the proxy and
/// an application connection the proxy let through; ztunnel's transparent sockets (a connection re-originated
/// toward the application with the client's address) are the proxy's by the same test.
fn sighting(row: &SocketRow, proxy_uid: Option<u32>, intercepted: &Intercepted) -> Sighting {
    match proxy_uid {
        None => Sighting::Plain,
        Some(_) if intercepted.contains(row.local) => Sighting::Intercepted,
        Some(uid) if row.uid == uid => Sighting::Proxy,
        Some(_) => Sighting::Bypass,
    }
}

/// 127.0.0.0/8 and ::1. Rows are canonical already, so `::ffff:127.0.0.1` arrives here as IPv4; the
/// `to_canonical` keeps this correct for callers that did not go through the parser.
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(local: &str, remote: &str, state: u8) -> SocketRow {
        SocketRow { local: local.parse().unwrap(), remote: remote.parse().unwrap(), state, inode: 1, uid: 1000 }
    }

    fn outcome(rows: &[SocketRow], index: usize) -> Outcome {
        let listeners = Listeners::from_rows(rows);
        let mut intercepted = Intercepted::default();
        rows.iter().for_each(|row| intercepted.add(row));
        classify(&rows[index], &listeners, &intercepted)
    }

    #[test]
    fn established_from_an_ephemeral_port_is_client_side() {
        let rows = [
            row("0.0.0.0:8080", "0.0.0.0:0", state::LISTEN),
            row("10.0.0.10:42482", "10.0.0.11:8080", state::ESTABLISHED),
        ];
        assert_eq!(outcome(&rows, 1), Outcome::Client(Sighting::Plain));
    }

    #[test]
    fn established_on_a_listening_port_is_server_side_for_wildcard_and_specific_listeners() {
        let rows = [
            row("[::]:8080", "[::]:0", state::LISTEN),
            row("10.0.0.10:9090", "0.0.0.0:0", state::LISTEN),
            row("10.0.0.10:8080", "10.0.0.12:40000", state::ESTABLISHED),
            row("10.0.0.10:9090", "10.0.0.12:40001", state::ESTABLISHED),
        ];
        assert_eq!(outcome(&rows, 2), Outcome::ServerSide);
        assert_eq!(outcome(&rows, 3), Outcome::ServerSide);
    }

    #[test]
    fn a_specific_listener_does_not_cover_another_local_address() {
        let rows = [
            row("10.0.0.10:9090", "0.0.0.0:0", state::LISTEN),
            row("10.0.0.99:9090", "10.0.0.12:80", state::ESTABLISHED),
        ];
        assert_eq!(outcome(&rows, 1), Outcome::Client(Sighting::Plain));
    }

    #[test]
    fn loopback_in_either_family_and_mapped_form_is_skipped() {
        for (local, remote) in [
            ("127.0.0.1:40000", "127.0.0.1:8080"),
            ("10.0.0.10:40000", "127.0.0.53:53"),
            ("[::1]:40000", "[::1]:8080"),
            ("[::ffff:127.0.0.1]:40000", "[::ffff:127.0.0.1]:8080"),
        ] {
            assert_eq!(outcome(&[row(local, remote, state::ESTABLISHED)], 0), Outcome::Loopback, "{local} -> {remote}");
        }
    }

    #[test]
    fn time_wait_and_unknown_states_are_not_established() {
        for st in [state::TIME_WAIT, state::LISTEN, 0x02, 0x0D, 0xFF] {
            assert_eq!(outcome(&[row("10.0.0.10:1", "10.0.0.11:2", st)], 0), Outcome::NotEstablished);
        }
    }

    /// An Istio sidecar pod as the lab shows it: Envoy (uid 1337) listens on 15001 and 15006; the application's
    /// connection to a ClusterIP was redirected to 127.0.0.1:15001; Envoy's upstream goes to the endpoint; a
    /// database connection on a port excluded from capture leaves from the application itself.
    #[test]
    fn in_a_sidecar_pod_the_proxy_the_intercepted_app_and_a_bypass_are_told_apart() {
        let proxy = |r: SocketRow| SocketRow { uid: 1337, ..r };
        let rows = [
            proxy(row("0.0.0.0:15001", "0.0.0.0:0", state::LISTEN)),
            proxy(row("0.0.0.0:15006", "0.0.0.0:0", state::LISTEN)),
            row("10.244.0.30:40000", "10.96.1.12:7070", state::ESTABLISHED),
            proxy(row("127.0.0.1:15001", "10.244.0.30:40000", state::ESTABLISHED)),
            proxy(row("10.244.0.30:40002", "10.244.0.13:8070", state::ESTABLISHED)),
            row("10.244.0.30:40004", "10.244.0.50:5432", state::ESTABLISHED),
            proxy(row("10.244.0.30:15006", "10.244.0.14:39000", state::ESTABLISHED)),
        ];
        assert_eq!(outcome(&rows, 2), Outcome::Client(Sighting::Intercepted));
        assert_eq!(outcome(&rows, 3), Outcome::Loopback, "Envoy's accepted end");
        assert_eq!(outcome(&rows, 4), Outcome::Client(Sighting::Proxy), "Envoy's upstream");
        assert_eq!(outcome(&rows, 5), Outcome::Client(Sighting::Bypass));
        assert_eq!(outcome(&rows, 6), Outcome::ServerSide, "inbound, redirected to 15006");
    }

    /// ztunnel in an ambient server pod: root-owned listeners on 15001/15006/15008, its HBONE tunnel accepted on
    /// 15008, and the connection it re-originates toward the application bound to the client's address.
    #[test]
    fn ztunnels_transparent_socket_in_the_server_pod_is_the_proxys() {
        let ztunnel = |r: SocketRow| SocketRow { uid: 0, ..r };
        let rows = [
            ztunnel(row("0.0.0.0:15008", "0.0.0.0:0", state::LISTEN)),
            row("0.0.0.0:8080", "0.0.0.0:0", state::LISTEN),
            ztunnel(row("10.244.0.40:15008", "10.244.0.30:41000", state::ESTABLISHED)),
            ztunnel(row("10.244.0.30:41002", "10.244.0.40:8080", state::ESTABLISHED)),
            row("10.244.0.40:8080", "10.244.0.30:41002", state::ESTABLISHED),
        ];
        assert_eq!(outcome(&rows, 2), Outcome::ServerSide);
        assert_eq!(outcome(&rows, 3), Outcome::Client(Sighting::Proxy), "never the server as a client");
        assert_eq!(outcome(&rows, 4), Outcome::ServerSide);
    }
}
