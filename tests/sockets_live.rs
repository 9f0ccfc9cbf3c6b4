//! The socket scanner on the real `/proc`: two network namespaces joined by a veth pair, a listener in one and a
//! client in the other, connected before the scanner starts. Needs root, `ip` (iproute2) and `python3`: a live
//! test (ignored by a plain `cargo test`, run by `make test`).

use std::collections::HashSet;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use network_mapper::sources::sockets::{Connection, ProcRoot, Scanner};
use testkit::cmd::LineChild;
use testkit::live;
use testkit::netns::{Netns, connect_veth};

const SERVER: &str = r#"
import socket, sys
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], int(sys.argv[2])))
listener.listen(16)
print("ready", flush=True)
held = []
while True:
    held.append(listener.accept()[0])
"#;

const CLIENT: &str = r#"
import socket, sys
conns = {}
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "connect":
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
        conns[c.getsockname()[1]] = c
        print(c.getsockname()[1], flush=True)
    elif cmd[0] == "close":
        conns.pop(int(cmd[1])).close()
        print("closed", flush=True)
"#;

const PORT: u16 = 7777;

/// Socket inodes held by a process, from its `fd/` links (`socket:[N]`).
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).expect("read the client's fds");
    fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?.to_owned();
            target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The namespace id the scanner reports for `pid`'s connections: the ns/net inode where permitted, else the
/// net/tcp inode (see `sockets::netns`).
fn reported_netns(pid: u32) -> u64 {
    fs::metadata(format!("/proc/{pid}/ns/net"))
        .or_else(|_| fs::metadata(format!("/proc/{pid}/net/tcp")))
        .expect("stat the process's namespace")
        .ino()
}

/// The connections of one scan that belong to our two namespaces.
fn ours(scanner: &mut Scanner, ids: &[u64]) -> Vec<Connection> {
    let report = scanner.scan().expect("scan /proc");
    assert!(report.skipped_host_netns, "the host namespace is pid 1's and must be seen and skipped");
    report.new_connections.into_iter().filter(|c| ids.contains(&c.netns)).collect()
}

/// `found` is exactly one connection: the client's end `local -> remote`, on a socket the client holds.
fn assert_only_client_side(found: &[Connection], client_pid: u32, local: SocketAddr, remote: SocketAddr, netns: u64) {
    let [conn] = found else {
        panic!("expected exactly the client side {local} -> {remote}, never the server side; got {found:?}");
    };
    assert_eq!((conn.local, conn.remote, conn.netns), (local, remote, netns));
    let held = socket_inodes(client_pid);
    assert!(held.contains(&conn.inode), "inode {} is not one of the client's sockets {held:?}", conn.inode);
}

#[test]
#[ignore = "live: needs root, network namespaces, python3 (run by `make test`)"]
fn the_scanner_finds_the_client_side_of_a_real_connection_once() {
    live::require(live::NETNS);
    // Unique per run so concurrent runs do not collide; link-local addresses that never leave the pair.
    let id = std::process::id();
    let octet = 20 + id % 200;
    let (server_ip, client_ip) = (format!("169.254.{octet}.1"), format!("169.254.{octet}.2"));
    let server_ns = Netns::create(format!("nmsk-{id}-srv")).expect("ip netns add");
    let client_ns = Netns::create(format!("nmsk-{id}-cli")).expect("ip netns add");
    connect_veth(&server_ns, &client_ns, &format!("nmv{id}"), &format!("{server_ip}/30"), &format!("{client_ip}/30"))
        .expect("veth pair");

    let port = PORT.to_string();
    let mut server: LineChild =
        server_ns.spawn_lines("python3", &["-c", SERVER, &server_ip, &port]).expect("start server");
    assert_eq!(server.read_line().expect("server starts"), "ready");
    let mut client = client_ns.spawn_lines("python3", &["-c", CLIENT, &server_ip, &port]).expect("start client");
    let first_port: u16 = client.ask("connect").expect("connect").parse().expect("a port");

    let ids = [reported_netns(client.pid()), reported_netns(server.pid())];
    assert_ne!(ids[0], ids[1]);
    let remote: SocketAddr = format!("{server_ip}:{PORT}").parse().unwrap();
    let local = |port: u16| SocketAddr::new(client_ip.parse().unwrap(), port);

    // The connection predates the scanner: the first scan reports it, and only the client's end.
    let mut scanner = Scanner::new(ProcRoot(PathBuf::from("/proc"))).expect("/proc is readable");
    let first = ours(&mut scanner, &ids);
    assert_only_client_side(&first, client.pid(), local(first_port), remote, ids[0]);

    for _ in 0..3 {
        assert_eq!(ours(&mut scanner, &ids), vec![], "an open connection is reported only once");
    }

    let second_port: u16 = client.ask("connect").expect("connect").parse().expect("a port");
    let second = ours(&mut scanner, &ids);
    assert_only_client_side(&second, client.pid(), local(second_port), remote, ids[0]);

    assert_eq!(client.ask(&format!("close {first_port}")).expect("close"), "closed");
    assert_eq!(ours(&mut scanner, &ids), vec![], "closing reports nothing");
    assert_eq!(ours(&mut scanner, &ids), vec![]);
}
