//! Decides, for the sockets of one network namespace, which ones are the client side of a connection.
//! Pure: rows in, outcomes out.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use super::table::{SocketRow, state};

/// What one socket row is, from the point of view of edge counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// ESTABLISHED, not loopback, local port not listening: this namespace opened the connection.
    Client,
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
}

impl Listeners {
    /// Forgets everything, keeping the allocations for the next namespace.
    pub fn clear(&mut self) {
        self.any_address.clear();
        self.specific.clear();
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
    }

    /// Whether a socket bound to `local` is the accepted end of one of these listeners.
    pub fn accepts(&self, local: SocketAddr) -> bool {
        // The emptiness check spares hashing a SocketAddr in the common case of wildcard listeners only.
        self.any_address.contains(&local.port()) || (!self.specific.is_empty() && self.specific.contains(&local))
    }

    /// Builds the listeners of a whole namespace (tests and callers that hold all rows at once).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = &'a SocketRow>) -> Self {
        let mut listeners = Self::default();
        rows.into_iter().for_each(|row| listeners.add(row));
        listeners
    }
}

/// Classifies one row against the listeners of its namespace.
pub fn classify(row: &SocketRow, listeners: &Listeners) -> Outcome {
    if row.state != state::ESTABLISHED {
        Outcome::NotEstablished
    } else if is_loopback(row.local.ip()) || is_loopback(row.remote.ip()) {
        Outcome::Loopback
    } else if listeners.accepts(row.local) {
        Outcome::ServerSide
    } else {
        Outcome::Client
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
        SocketRow { local: local.parse().unwrap(), remote: remote.parse().unwrap(), state, inode: 1 }
    }

    #[test]
    fn established_from_an_ephemeral_port_is_client_side() {
        let rows = [
            row("0.0.0.0:8080", "0.0.0.0:0", state::LISTEN),
            row("10.0.0.10:42482", "10.0.0.11:8080", state::ESTABLISHED),
        ];
        assert_eq!(classify(&rows[1], &Listeners::from_rows(&rows)), Outcome::Client);
    }

    #[test]
    fn established_on_a_listening_port_is_server_side_for_wildcard_and_specific_listeners() {
        let rows = [
            row("[::]:8080", "[::]:0", state::LISTEN),
            row("10.0.0.10:9090", "0.0.0.0:0", state::LISTEN),
            row("10.0.0.10:8080", "10.0.0.12:40000", state::ESTABLISHED),
            row("10.0.0.10:9090", "10.0.0.12:40001", state::ESTABLISHED),
        ];
        let listeners = Listeners::from_rows(&rows);
        assert_eq!(classify(&rows[2], &listeners), Outcome::ServerSide);
        assert_eq!(classify(&rows[3], &listeners), Outcome::ServerSide);
    }

    #[test]
    fn a_specific_listener_does_not_cover_another_local_address() {
        let rows = [
            row("10.0.0.10:9090", "0.0.0.0:0", state::LISTEN),
            row("10.0.0.99:9090", "10.0.0.12:80", state::ESTABLISHED),
        ];
        assert_eq!(classify(&rows[1], &Listeners::from_rows(&rows)), Outcome::Client);
    }

    #[test]
    fn loopback_in_either_family_and_mapped_form_is_skipped() {
        let listeners = Listeners::default();
        for (local, remote) in [
            ("127.0.0.1:40000", "127.0.0.1:8080"),
            ("10.0.0.10:40000", "127.0.0.53:53"),
            ("[::1]:40000", "[::1]:8080"),
            ("[::ffff:127.0.0.1]:40000", "[::ffff:127.0.0.1]:8080"),
        ] {
            let established = row(local, remote, state::ESTABLISHED);
            assert_eq!(classify(&established, &listeners), Outcome::Loopback, "{local} -> {remote}");
        }
    }

    #[test]
    fn time_wait_and_unknown_states_are_not_established() {
        let listeners = Listeners::default();
        for st in [state::TIME_WAIT, state::LISTEN, 0x02, 0x0D, 0xFF] {
            assert_eq!(classify(&row("10.0.0.10:1", "10.0.0.11:2", st), &listeners), Outcome::NotEstablished);
        }
    }
}
