//! Property test of the `ActiveOpens` gate (docs/design.md §3 "TCP sockets"): over random interleavings of
//! connects (some refused), handshakes completing, closes, processes starting and exiting, and scans (some
//! racing with a connect or close between the counter read and the table read), every client-side connection
//! that is ESTABLISHED when some scan reads the tables is reported exactly once, by the first such scan, and no
//! other connection is ever reported.
//!
//! The kernel is modelled on a fake procfs tree (the conventions of `tests/fixtures/proc`): `connect()` puts the
//! socket in the table in SYN_SENT and moves `ActiveOpens` at once, as the kernel does. Each namespace keeps at
//! least one process, as a pod's pause container holds its namespace for the pod's lifetime.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use network_mapper::sources::sockets::{ProcRoot, Scanner};
use proptest::prelude::*;
use testkit::procfs::{ESTABLISHED, LISTEN, Row, SYN_SENT, snmp_text, table_text};

const NAMESPACES: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Connect(usize),
    /// A `connect()` that fails: the counter moves, no socket stays.
    Refused(usize),
    Establish(usize),
    Close(usize),
    PidStart(usize),
    PidExit(usize),
    Scan,
    /// A scan that reads the counters, then the op happens, then it reads the tables.
    RacingScan(Box<Op>),
}

fn op() -> impl Strategy<Value = Op> {
    let ns = 0..NAMESPACES;
    let plain = prop_oneof![
        3 => ns.clone().prop_map(Op::Connect),
        1 => ns.clone().prop_map(Op::Refused),
        3 => any::<usize>().prop_map(Op::Establish),
        2 => any::<usize>().prop_map(Op::Close),
        1 => ns.clone().prop_map(Op::PidStart),
        1 => ns.prop_map(Op::PidExit),
    ];
    prop_oneof![4 => plain.clone(), 3 => Just(Op::Scan), 2 => plain.prop_map(|op| Op::RacingScan(Box::new(op)))]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    SynSent,
    Established,
    Closed,
}

#[derive(Debug)]
struct Conn {
    ns: usize,
    inode: u64,
    state: State,
}

/// The simulated node: its namespaces' sockets and counters, written into a procfs tree on demand.
struct Node<'a> {
    root: &'a Path,
    conns: Vec<Conn>,
    active_opens: [u64; NAMESPACES],
    pids: [Vec<u32>; NAMESPACES],
    next_pid: u32,
}

impl<'a> Node<'a> {
    fn new(root: &'a Path) -> Node<'a> {
        fs::create_dir_all(root.join("netns/host")).unwrap();
        fs::write(root.join("netns/host/tcp"), table_text(false, &[])).unwrap();
        link(root, 1, "host");
        let mut node =
            Node { root, conns: Vec::new(), active_opens: [0; NAMESPACES], pids: Default::default(), next_pid: 100 };
        for ns in 0..NAMESPACES {
            fs::create_dir_all(root.join(format!("netns/pod{ns}"))).unwrap();
            node.write_tables(ns);
            node.write_counter(ns);
            node.apply(&Op::PidStart(ns));
        }
        node
    }

    /// Applies an op to the model and the tables; the counters are written by the caller.
    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Connect(ns) => {
                let inode = 10_000 + self.conns.len() as u64;
                self.conns.push(Conn { ns, inode, state: State::SynSent });
                self.active_opens[ns] += 1;
                self.write_tables(ns);
            }
            Op::Refused(ns) => self.active_opens[ns] += 1,
            Op::Establish(i) => self.transition(i, State::SynSent, State::Established),
            Op::Close(i) => {
                if let Some(conn) = self.pick(i) {
                    conn.state = State::Closed;
                    let ns = conn.ns;
                    self.write_tables(ns);
                }
            }
            Op::PidStart(ns) => {
                link(self.root, self.next_pid, &format!("pod{ns}"));
                self.pids[ns].push(self.next_pid);
                self.next_pid += 1;
            }
            Op::PidExit(ns) if self.pids[ns].len() > 1 => {
                let pid = self.pids[ns].remove(0);
                fs::remove_dir_all(self.root.join(pid.to_string())).unwrap();
            }
            Op::PidExit(_) | Op::Scan | Op::RacingScan(_) => {}
        }
    }

    fn pick(&mut self, i: usize) -> Option<&mut Conn> {
        let len = self.conns.len();
        (len > 0).then(|| &mut self.conns[i % len])
    }

    fn transition(&mut self, i: usize, from: State, to: State) {
        if let Some(conn) = self.pick(i).filter(|conn| conn.state == from) {
            conn.state = to;
            let ns = conn.ns;
            self.write_tables(ns);
        }
    }

    fn write_tables(&self, ns: usize) {
        let ip = format!("10.244.0.{}", 10 + ns);
        let mut rows = vec![Row::new(&format!("{ip}:8080"), "0.0.0.0:0", LISTEN, 1)];
        for conn in self.conns.iter().filter(|conn| conn.ns == ns) {
            let state = match conn.state {
                State::SynSent => SYN_SENT,
                State::Established => ESTABLISHED,
                State::Closed => continue,
            };
            let local = format!("{ip}:{}", 30_000 + conn.inode % 30_000);
            rows.push(Row::new(&local, "10.96.0.20:443", state, conn.inode));
        }
        fs::write(self.root.join(format!("netns/pod{ns}/tcp")), table_text(false, &rows)).unwrap();
    }

    fn write_counter(&self, ns: usize) {
        fs::write(self.root.join(format!("netns/pod{ns}/snmp")), snmp_text(self.active_opens[ns])).unwrap();
    }

    fn write_counters(&self) {
        (0..NAMESPACES).for_each(|ns| self.write_counter(ns));
    }

    fn established(&self) -> Vec<u64> {
        self.conns.iter().filter(|conn| conn.state == State::Established).map(|conn| conn.inode).collect()
    }
}

fn link(root: &Path, pid: u32, namespace: &str) {
    let dir = root.join(pid.to_string());
    fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(format!("../netns/{namespace}"), dir.join("net")).unwrap();
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::new(dir.path());
    let mut scanner = Scanner::new(ProcRoot(dir.path().to_path_buf())).unwrap();
    // inode → the first scan that read it ESTABLISHED; inode → the scans that reported it.
    let mut first_established: HashMap<u64, usize> = HashMap::new();
    let mut reported: HashMap<u64, Vec<usize>> = HashMap::new();
    for (step, op) in ops.iter().chain([&Op::Scan]).enumerate() {
        match op {
            Op::Scan => {}
            Op::RacingScan(inner) => node.apply(inner),
            _ => {
                node.apply(op);
                node.write_counters();
                continue;
            }
        }
        // The tables are now as the scan reads them; for a racing scan the counters are one op behind.
        for inode in node.established() {
            first_established.entry(inode).or_insert(step);
        }
        let report = scanner.scan().unwrap();
        for conn in report.new_connections {
            reported.entry(conn.inode).or_default().push(step);
        }
        node.write_counters();
    }
    for (inode, scans) in &reported {
        prop_assert_eq!(scans.len(), 1, "connection {} reported by scans {:?}", inode, scans);
        prop_assert_eq!(
            first_established.get(inode),
            Some(&scans[0]),
            "connection {} reported at scan step {} but first established at a scan step {:?}",
            inode,
            scans[0],
            first_established.get(inode)
        );
    }
    for inode in first_established.keys() {
        prop_assert!(reported.contains_key(inode), "connection {} was established at a scan, never reported", inode);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_connection_established_at_some_scan_is_reported_once(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops)?;
    }
}

#[test]
fn the_gate_leaves_quiet_namespaces_unread() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::new(dir.path());
    let mut scanner = Scanner::new(ProcRoot(dir.path().to_path_buf())).unwrap();
    assert_eq!(scanner.scan().unwrap().namespaces, NAMESPACES);
    node.apply(&Op::Connect(1));
    node.apply(&Op::Establish(0));
    node.write_counters();
    let report = scanner.scan().unwrap();
    assert_eq!((report.namespaces, report.unchanged, report.new_connections.len()), (1, 2, 1));
    let report = scanner.scan().unwrap();
    assert_eq!((report.namespaces, report.unchanged, report.new_connections.len()), (0, 3, 0));
}
