//! Fake procfs for the socket scanner's tests and benchmark: `net/tcp{,6}` text written the way the kernel writes
//! it, copying the fixture tree `tests/fixtures/proc`, and generating large fake trees.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::symlink;
use std::path::Path;

pub const ESTABLISHED: u8 = 0x01;
pub const SYN_SENT: u8 = 0x02;
pub const TIME_WAIT: u8 = 0x06;
pub const LISTEN: u8 = 0x0A;

/// One row to write into a table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    pub inode: u64,
    /// The socket's owner; 1000 unless set with [`Row::uid`].
    pub uid: u32,
}

impl Row {
    pub fn new(local: &str, remote: &str, state: u8, inode: u64) -> Row {
        let (local, remote) = (local.parse().expect("test address"), remote.parse().expect("test address"));
        Row { local, remote, state, inode, uid: 1000 }
    }

    /// Owned by `uid` (a mesh proxy's 1337, ztunnel's 0, ...).
    pub fn uid(self, uid: u32) -> Row {
        Row { uid, ..self }
    }
}

/// A whole `net/tcp` (`v6 == false`) or `net/tcp6` file: header, then one line per row, formatted like
/// `tcp4_seq_show`/`tcp6_seq_show` (IPv4 lines padded to 149 columns, addresses as native-order hex words).
pub fn table_text(v6: bool, rows: &[Row]) -> String {
    let mut text = if v6 {
        "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n".to_string()
    } else {
        format!(
            "{:<149}\n",
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
        )
    };
    for (slot, row) in rows.iter().enumerate() {
        let line = format!(
            "{slot:4}: {} {} {:02X} 00000000:00000000 00:00000000 00000000 {:5}        0 {} 1 0000000000000000 100 0 0 10 0",
            endpoint(row.local, v6),
            endpoint(row.remote, v6),
            row.state,
            row.uid,
            row.inode
        );
        if v6 {
            writeln!(text, "{line}").unwrap();
        } else {
            writeln!(text, "{line:<149}").unwrap();
        }
    }
    text
}

fn endpoint(addr: SocketAddr, v6: bool) -> String {
    let bytes: Vec<u8> = match (addr.ip(), v6) {
        (IpAddr::V4(ip), false) => ip.octets().to_vec(),
        // The kernel shows a dual-stack wildcard listener as `::`, an IPv4 peer as `::ffff:a.b.c.d`.
        (IpAddr::V4(ip), true) if ip.is_unspecified() => [0; 16].to_vec(),
        (IpAddr::V4(ip), true) => ip.to_ipv6_mapped().octets().to_vec(),
        (IpAddr::V6(ip), true) => ip.octets().to_vec(),
        (IpAddr::V6(ip), false) => panic!("{ip} cannot go into net/tcp"),
    };
    let mut text = String::new();
    for word in bytes.chunks_exact(4) {
        let value = u32::from_ne_bytes(word.try_into().unwrap());
        write!(text, "{value:08X}").unwrap();
    }
    write!(text, ":{:04X}", addr.port()).unwrap();
    text
}

/// A `net/snmp` file as the kernel prints it (Linux 6.1 columns), with the TCP `ActiveOpens` counter given and
/// made-up values elsewhere; the scanner finds `ActiveOpens` by its column name.
pub fn snmp_text(active_opens: u64) -> String {
    format!(
        "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards \
InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates \
OutTransmits\nIp: 1 64 15598 0 0 0 0 0 15598 9196 0 0 0 0 0 0 0 0 0 9196\n\
IcmpMsg: InType3\nIcmpMsg: 1\n\
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs \
RetransSegs InErrs OutRsts InCsumErrors\nTcp: 1 200 120000 -1 {active_opens} 2 6 12 0 15398 9026 0 0 116 0\n\
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n\
Udp: 199 0 0 200 0 0 0 0 0\n"
    )
}

/// One connection tracking entry: the original direction (`client` → `dialled`), who answers (`reply_from`:
/// `127.0.0.1:15001` for a connection redirected to a proxy on loopback, `dialled` itself when nothing was
/// translated) and the TCP state.
#[derive(Debug, Clone, Copy)]
pub struct Tracked {
    pub client: SocketAddr,
    pub dialled: SocketAddr,
    pub reply_from: SocketAddr,
    pub state: &'static str,
}

impl Tracked {
    pub fn new(client: &str, dialled: &str, reply_from: &str, state: &'static str) -> Tracked {
        let parse = |a: &str| a.parse().expect("test address");
        Tracked { client: parse(client), dialled: parse(dialled), reply_from: parse(reply_from), state }
    }
}

/// A `net/nf_conntrack` file as `nf_conntrack_standalone.c` prints TCP entries (IPv4 only here).
pub fn conntrack_text(entries: &[Tracked]) -> String {
    let mut text = String::new();
    for e in entries {
        writeln!(
            text,
            "ipv4     2 tcp      6 117 {} src={} dst={} sport={} dport={} src={} dst={} sport={} dport={} [ASSURED] \
             mark=0 zone=0 use=2",
            e.state,
            e.client.ip(),
            e.dialled.ip(),
            e.client.port(),
            e.dialled.port(),
            e.reply_from.ip(),
            e.client.ip(),
            e.reply_from.port(),
            e.client.port()
        )
        .unwrap();
    }
    text
}

/// Copies a tree, recreating symlinks as symlinks (the fixture's pids share namespaces through them).
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            symlink(fs::read_link(entry.path())?, &target)?;
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Shape of a generated tree.
#[derive(Debug, Clone, Copy)]
pub struct FakeProcShape {
    pub namespaces: usize,
    pub sockets_per_namespace: usize,
    pub pids_per_namespace: usize,
}

/// Client-side connections per namespace in a generated tree (see [`write_fake_proc`]).
pub fn generated_clients_per_namespace(shape: FakeProcShape) -> usize {
    (0..shape.sockets_per_namespace).filter(|i| i % 4 == 1).count()
}

/// Writes a procfs tree with the same conventions as `tests/fixtures/proc` (see its README): pid 1 in a host
/// namespace, then `pids_per_namespace` pids per pod namespace, each namespace's sockets split between `tcp`
/// and `tcp6`. Of every 4 sockets: 1 LISTEN, 1 client side, 1 server side, 1 TIME_WAIT.
pub fn write_fake_proc(root: &Path, shape: FakeProcShape) -> io::Result<()> {
    write_tree(root, shape, Flavor::Plain)
}

/// Like [`write_fake_proc`], every pod namespace an Istio sidecar pod (Envoy, uid 1337). Of every 4 sockets: 1
/// LISTEN (the first two on 15001 and 15006, Envoy's), the application's connection to a ClusterIP, Envoy's
/// accepted end of it on 127.0.0.1:15001, Envoy's upstream to a pod; `nf_conntrack` tracks the intercepted
/// connections, the upstreams and one closed intercepted connection per 20 sockets. With `listening` false the
/// two Envoy listeners are on 25001 and 25006 instead: the same tables, but no mesh proxy for the scanner.
pub fn write_fake_meshed_proc(root: &Path, shape: FakeProcShape, listening: bool) -> io::Result<()> {
    write_tree(root, shape, Flavor::Sidecar { listening })
}

#[derive(Clone, Copy)]
enum Flavor {
    Plain,
    Sidecar { listening: bool },
}

fn write_tree(root: &Path, shape: FakeProcShape, flavor: Flavor) -> io::Result<()> {
    write_namespace(root, "host", 0, shape.sockets_per_namespace, Flavor::Plain)?;
    link_pid(root, 1, "host")?;
    let mut pid = 1000;
    for ns in 1..=shape.namespaces {
        let name = format!("pod{ns}");
        write_namespace(root, &name, ns, shape.sockets_per_namespace, flavor)?;
        for _ in 0..shape.pids_per_namespace {
            link_pid(root, pid, &name)?;
            pid += 1;
        }
    }
    Ok(())
}

fn write_namespace(root: &Path, name: &str, ns: usize, sockets: usize, flavor: Flavor) -> io::Result<()> {
    let dir = root.join("netns").join(name);
    fs::create_dir_all(&dir)?;
    let pod_ip = format!("10.{}.{}.10", 100 + ns / 250, ns % 250);
    let rows: Vec<Row> = match flavor {
        Flavor::Plain => (0..sockets).map(|i| generated_row(&pod_ip, i)).collect(),
        Flavor::Sidecar { listening } => (0..sockets).map(|i| sidecar_row(&pod_ip, i, listening)).collect(),
    };
    if let Flavor::Sidecar { .. } = flavor {
        fs::write(dir.join("nf_conntrack"), conntrack_text(&sidecar_conntrack(&pod_ip, sockets)))?;
    }
    let (v4, v6) = rows.split_at(sockets / 2);
    fs::write(dir.join("tcp"), table_text(false, v4))?;
    fs::write(dir.join("snmp"), snmp_text(sockets as u64))?;
    fs::write(dir.join("tcp6"), table_text(true, v6))
}

const ENVOY_UID: u32 = 1337;

fn sidecar_row(pod_ip: &str, i: usize, listening: bool) -> Row {
    let inode = 100_000 + i as u64;
    let peer = format!("10.96.{}.{}:443", i / 250, i % 250 + 1);
    let base = if listening { 15000 } else { 25000 };
    match (i % 4, i) {
        (0, 0) => Row::new(&format!("0.0.0.0:{}", base + 1), "0.0.0.0:0", LISTEN, inode).uid(ENVOY_UID),
        (0, 4) => Row::new(&format!("0.0.0.0:{}", base + 6), "0.0.0.0:0", LISTEN, inode).uid(ENVOY_UID),
        (0, _) => Row::new(&format!("0.0.0.0:{}", 1024 + i), "0.0.0.0:0", LISTEN, inode),
        (1, _) => Row::new(&format!("{pod_ip}:{}", 40000 + i), &peer, ESTABLISHED, inode),
        (2, _) => {
            Row::new("127.0.0.1:15001", &format!("{pod_ip}:{}", 40000 + i - 1), ESTABLISHED, inode).uid(ENVOY_UID)
        }
        _ => Row::new(&format!("{pod_ip}:{}", 50000 + i), &upstream(i), ESTABLISHED, inode).uid(ENVOY_UID),
    }
}

fn upstream(i: usize) -> String {
    format!("10.244.{}.{}:8080", i / 250, i % 250 + 1)
}

fn sidecar_conntrack(pod_ip: &str, sockets: usize) -> Vec<Tracked> {
    let client = |port: usize| format!("{pod_ip}:{port}");
    let mut entries = Vec::new();
    for i in 0..sockets {
        let peer = format!("10.96.{}.{}:443", i / 250, i % 250 + 1);
        match i % 4 {
            1 => entries.push(Tracked::new(&client(40000 + i), &peer, "127.0.0.1:15001", "ESTABLISHED")),
            3 => entries.push(Tracked::new(&client(50000 + i), &upstream(i), &upstream(i), "ESTABLISHED")),
            _ => {}
        }
        if i % 20 == 0 {
            entries.push(Tracked::new(&client(60000 + i), &peer, "127.0.0.1:15001", "TIME_WAIT"));
        }
    }
    entries
}

fn generated_row(pod_ip: &str, i: usize) -> Row {
    let inode = 100_000 + i as u64;
    let port = 1024 + i;
    let peer = format!("10.96.{}.{}", i / 250, i % 250 + 1);
    match i % 4 {
        0 => Row::new(&format!("0.0.0.0:{port}"), "0.0.0.0:0", LISTEN, inode),
        1 => Row::new(&format!("{pod_ip}:{}", 40000 + i), &format!("{peer}:443"), ESTABLISHED, inode),
        // Accepted on the port the LISTEN row one before opened.
        2 => Row::new(&format!("{pod_ip}:{}", port - 2), &format!("{peer}:50000"), ESTABLISHED, inode),
        _ => Row::new(&format!("{pod_ip}:{}", 40000 + i), &format!("{peer}:80"), TIME_WAIT, 0),
    }
}

fn link_pid(root: &Path, pid: u32, namespace: &str) -> io::Result<()> {
    let dir = root.join(pid.to_string());
    fs::create_dir_all(&dir)?;
    symlink(format!("../netns/{namespace}"), dir.join("net"))
}
