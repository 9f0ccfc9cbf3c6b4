//! The socket scanner in namespaces with a mesh proxy, on a fake procfs tree written the way the lab's meshed pods
//! showed their tables (docs/counting.md, "Service meshes"): an Istio sidecar pod whose application's
//! connections are intercepted, an ambient server pod where ztunnel re-originates inbound traffic, and a pod
//! without a mesh whose tables look alike but whose connection tracking table is never read.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use network_mapper::mesh::Sighting;
use network_mapper::sources::sockets::{Connection, ProcRoot, Scanner};
use testkit::procfs::{ESTABLISHED, LISTEN, Row, TIME_WAIT, Tracked, conntrack_text, snmp_text, table_text};

const ENVOY: u32 = 1337;

/// The sidecar pod 10.244.0.30: Envoy listens on 15001/15006; the application (uid 1000) holds a connection to
/// the cart ClusterIP (intercepted: Envoy accepted it on 127.0.0.1:15001) and one to a database on a port
/// excluded from capture; Envoy holds its upstream to the cart pod and its xDS stream to istiod.
fn sidecar_rows() -> Vec<Row> {
    vec![
        Row::new("0.0.0.0:15001", "0.0.0.0:0", LISTEN, 10).uid(ENVOY),
        Row::new("0.0.0.0:15006", "0.0.0.0:0", LISTEN, 11).uid(ENVOY),
        Row::new("10.244.0.30:40000", "10.96.1.12:7070", ESTABLISHED, 20),
        Row::new("127.0.0.1:15001", "10.244.0.30:40000", ESTABLISHED, 21).uid(ENVOY),
        Row::new("10.244.0.30:40002", "10.244.0.13:8070", ESTABLISHED, 22).uid(ENVOY),
        Row::new("10.244.0.30:40010", "10.96.9.1:15012", ESTABLISHED, 23).uid(ENVOY),
        Row::new("10.244.0.30:40020", "10.244.0.50:5432", ESTABLISHED, 24),
        Row::new("10.244.0.30:40030", "10.96.1.12:7070", TIME_WAIT, 0),
    ]
}

/// What the sidecar pod's kernel tracks: the held intercepted connection, a short one closed before the first
/// scan (its application socket is in TIME_WAIT above, which says nothing of a proxy), Envoy's upstream (not
/// translated), an inbound connection redirected to 15006 (answered from the pod's own address).
fn sidecar_conntrack(more: &[Tracked]) -> String {
    let mut entries = vec![
        Tracked::new("10.244.0.30:40000", "10.96.1.12:7070", "127.0.0.1:15001", "ESTABLISHED"),
        Tracked::new("10.244.0.30:40030", "10.96.1.12:7070", "127.0.0.1:15001", "TIME_WAIT"),
        Tracked::new("10.244.0.30:40002", "10.244.0.13:8070", "10.244.0.13:8070", "ESTABLISHED"),
        Tracked::new("10.244.0.14:39000", "10.244.0.30:8080", "10.244.0.30:15006", "ESTABLISHED"),
    ];
    entries.extend_from_slice(more);
    conntrack_text(&entries)
}

/// An ambient server pod 10.244.0.40: ztunnel (root) listens inside it on 15001/15006/15008, accepted an HBONE
/// tunnel from 10.244.0.30 and re-originated one connection to the application with the client's address.
fn ambient_rows() -> Vec<Row> {
    vec![
        Row::new("0.0.0.0:15008", "0.0.0.0:0", LISTEN, 30).uid(0),
        Row::new("0.0.0.0:15001", "0.0.0.0:0", LISTEN, 31).uid(0),
        Row::new("0.0.0.0:8080", "0.0.0.0:0", LISTEN, 32),
        Row::new("10.244.0.40:15008", "10.244.0.30:41000", ESTABLISHED, 33).uid(0),
        Row::new("10.244.0.30:41002", "10.244.0.40:8080", ESTABLISHED, 34).uid(0),
        Row::new("10.244.0.40:8080", "10.244.0.30:41002", ESTABLISHED, 35),
    ]
}

/// A pod without a mesh with a client socket; its (made-up) conntrack table must not be read.
fn plain_rows() -> Vec<Row> {
    vec![Row::new("10.244.0.50:42000", "10.96.1.12:7070", ESTABLISHED, 40)]
}

fn write_namespace(root: &Path, name: &str, rows: &[Row], conntrack: &str, active_opens: u64) {
    let dir = root.join("netns").join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("tcp"), table_text(false, rows)).unwrap();
    fs::write(dir.join("tcp6"), table_text(true, &[])).unwrap();
    fs::write(dir.join("snmp"), snmp_text(active_opens)).unwrap();
    fs::write(dir.join("nf_conntrack"), conntrack).unwrap();
}

fn link_pid(root: &Path, pid: u32, name: &str) {
    let dir = root.join(pid.to_string());
    fs::create_dir_all(&dir).unwrap();
    symlink(format!("../netns/{name}"), dir.join("net")).unwrap();
}

fn tree(root: &Path) {
    write_namespace(root, "host", &[], "", 1);
    link_pid(root, 1, "host");
    write_namespace(root, "sidecar", &sidecar_rows(), &sidecar_conntrack(&[]), 5);
    write_namespace(root, "ambient", &ambient_rows(), "", 1);
    let plain_conntrack = conntrack_text(&[Tracked::new("10.244.0.50:1", "10.96.1.12:7070", "127.0.0.1:1", "CLOSE")]);
    write_namespace(root, "plain", &plain_rows(), &plain_conntrack, 1);
    for (pid, name) in [(100, "sidecar"), (200, "ambient"), (300, "plain")] {
        link_pid(root, pid, name);
    }
}

fn found(connections: &[Connection]) -> Vec<(String, String, Sighting, u64)> {
    let mut found: Vec<_> =
        connections.iter().map(|c| (c.local.to_string(), c.remote.to_string(), c.sighting, c.inode)).collect();
    found.sort();
    found
}

fn expect(rows: &[(&str, &str, Sighting, u64)]) -> Vec<(String, String, Sighting, u64)> {
    let mut rows: Vec<_> = rows.iter().map(|(l, r, s, i)| (l.to_string(), r.to_string(), *s, *i)).collect();
    rows.sort();
    rows
}

#[test]
fn each_client_socket_of_a_meshed_pod_is_told_whose_it_is_and_closed_intercepted_connections_are_found() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let mut scanner = Scanner::new(ProcRoot(dir.path().to_path_buf())).unwrap();
    let report = scanner.scan().unwrap();
    use Sighting::*;
    assert_eq!(
        found(&report.new_connections),
        expect(&[
            ("10.244.0.30:40000", "10.96.1.12:7070", Intercepted, 20),
            ("10.244.0.30:40002", "10.244.0.13:8070", Proxy, 22),
            ("10.244.0.30:40010", "10.96.9.1:15012", Proxy, 23),
            ("10.244.0.30:40020", "10.244.0.50:5432", Bypass, 24),
            ("10.244.0.30:41002", "10.244.0.40:8080", Proxy, 34),
            ("10.244.0.50:42000", "10.96.1.12:7070", Plain, 40),
        ])
    );
    // 40030 closed before the first scan (before the exporter started): remembered, not reported, as a closed
    // connection without a mesh would not be seen either.
    assert_eq!((report.conntrack_read, report.closed_intercepted), (2, 0), "sidecar and ambient; plain not read");
    assert_eq!(report.outcomes.client, 6);
    assert_eq!(report.outcomes.loopback, 1, "Envoy's accepted end");
}

#[test]
fn a_held_intercepted_connection_counts_once_and_a_later_short_one_is_found_alone() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let mut scanner = Scanner::new(ProcRoot(dir.path().to_path_buf())).unwrap();
    scanner.scan().unwrap();
    // A connect() moves ActiveOpens: the namespace is read again, and nothing it held is new.
    write_namespace(dir.path(), "sidecar", &sidecar_rows(), &sidecar_conntrack(&[]), 6);
    assert!(scanner.scan().unwrap().new_connections.is_empty());
    // Another short connection through the warm pool: no socket left, no SYN on the wire, one conntrack entry.
    let short = Tracked::new("10.244.0.30:40040", "10.96.1.12:7070", "127.0.0.1:15001", "TIME_WAIT");
    write_namespace(dir.path(), "sidecar", &sidecar_rows(), &sidecar_conntrack(&[short]), 7);
    let report = scanner.scan().unwrap();
    assert_eq!(
        found(&report.new_connections),
        expect(&[("10.244.0.30:40040", "10.96.1.12:7070", Sighting::Intercepted, 0)])
    );
}
