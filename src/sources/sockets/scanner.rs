//! The socket scanner: walks `<root>/<pid>`, reads the tables of each network namespace that may hold a
//! connection not seen yet (at most once per scan; see [`super::gate`]), and reports the client-side
//! connections not reported before.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::Path;

use super::classify::{Intercepted, Listeners, Outcome, classify};
use super::conntrack;
use super::gate::{self, Decision, Gate, ScanMode};
use super::netns::{self, HostNetns, NetnsKey};
use super::seen::{SeenConnections, SocketKey};
use super::table::{self, Family, SocketRow};
use super::{Error, ProcRoot};
use crate::mesh::Sighting;

/// A client-side ESTABLISHED connection, reported the first time a scan sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Connection {
    /// The client's end; IPv4-mapped IPv6 is already IPv4.
    pub local: SocketAddr,
    /// The server's end (a Service ClusterIP before NAT, or a pod IP).
    pub remote: SocketAddr,
    /// The namespace: the `ns/net` inode (`net:[N]`) where permitted, else the `net/tcp` inode (see [`netns`]).
    pub netns: u64,
    /// Socket inode; 0 when the socket is no longer owned by a file descriptor, or when the connection was found
    /// in connection tracking after it closed.
    pub inode: u64,
    /// Whether a mesh proxy in the namespace intercepted it, made it, or let it through (`Plain` where none runs).
    pub sighting: Sighting,
}

/// Sockets of the scanned namespaces, by outcome. The sum is [`ScanReport::sockets`] plus `malformed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketOutcomes {
    /// Client side, first seen in this scan: the `new_connections`.
    pub client: usize,
    /// Client side, reported by an earlier scan.
    pub already_seen: usize,
    pub server_side: usize,
    pub loopback: usize,
    /// LISTEN, TIME_WAIT and every other state that is not ESTABLISHED.
    pub not_established: usize,
    /// Rows that could not be parsed; the rest of their table is kept.
    pub malformed: usize,
}

impl SocketOutcomes {
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Client(_) => self.client += 1,
            Outcome::ServerSide => self.server_side += 1,
            Outcome::Loopback => self.loopback += 1,
            Outcome::NotEstablished => self.not_established += 1,
        }
    }
}

/// What one full scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Client-side connections not reported by an earlier scan.
    pub new_connections: Vec<Connection>,
    /// Numeric directories looked at under the root.
    pub pids: usize,
    /// Network namespaces whose tables were read (the host's is not among them).
    pub namespaces: usize,
    /// Network namespaces left unread because their `ActiveOpens` had not moved since their last read.
    pub unchanged: usize,
    /// Rows parsed in those namespaces.
    pub sockets: usize,
    /// `net/tcp` and `net/tcp6` files read: twice the namespaces read when every table exists and nothing
    /// vanished (more in [`ScanMode::EveryPid`]).
    pub tables_read: usize,
    /// Processes that went away while the scan looked at them (their namespace is read through another process
    /// if one remains).
    pub vanished: usize,
    /// Processes whose files exist but could not be read (permissions); logged at debug level.
    pub unreadable: usize,
    /// Whether processes in the host's own namespace were found and skipped.
    pub skipped_host_netns: bool,
    pub outcomes: SocketOutcomes,
    /// `net/nf_conntrack` files read: one per namespace read that runs a mesh proxy.
    pub conntrack_read: usize,
    /// New connections that only connection tracking still showed (intercepted by a mesh proxy and closed before
    /// the scan); they are among `new_connections`, not among the sockets.
    pub closed_intercepted: usize,
}

/// Scans a procfs tree. Keeps the "seen" set between scans, and buffers reused across namespaces.
#[derive(Debug)]
pub struct Scanner {
    root: ProcRoot,
    host: HostNetns,
    seen: SeenConnections,
    gate: Gate,
    mode: ScanMode,
    table: Vec<u8>,
    rows: Vec<SocketRow>,
    listeners: Listeners,
    intercepted: Intercepted,
    /// Whether a scan has completed: until then, intercepted connections that had closed before the exporter
    /// started are remembered, not reported (as a closed connection without a mesh would not be seen either).
    scanned_once: bool,
}

/// Bookkeeping for one scan: which namespaces are settled, under either identity.
#[derive(Default)]
struct Pass {
    settled: HashSet<NetnsKey>,
    tables_by_tcp_file: HashSet<u64>,
    /// Namespaces (by `net/tcp` inode) whose read failed through some process; retried next scan unless
    /// another process of theirs was read.
    failed: HashSet<u64>,
    report: ScanReport,
}

impl Scanner {
    /// Checks that `root` is a readable procfs tree with a pid 1 (whose namespace is the host's).
    pub fn new(root: ProcRoot) -> Result<Scanner, Error> {
        fs::read_dir(&root.0).map_err(|source| Error::UnreadableRoot { path: root.0.clone(), source })?;
        let host = HostNetns::of_pid1(&root.0)
            .map_err(|source| Error::NotProcfs { path: root.0.join("1/net/tcp"), source })?;
        Ok(Scanner {
            root,
            host,
            seen: SeenConnections::default(),
            gate: Gate::default(),
            mode: ScanMode::default(),
            table: Vec::new(),
            rows: Vec::new(),
            listeners: Listeners::default(),
            intercepted: Intercepted::default(),
            scanned_once: false,
        })
    }

    /// Chooses which namespaces a scan reads; the default, [`ScanMode::Gated`], is what the exporter uses.
    pub fn with_mode(mut self, mode: ScanMode) -> Scanner {
        self.mode = mode;
        self
    }

    pub fn root(&self) -> &ProcRoot {
        &self.root
    }

    /// Client-side connections remembered from the last scan (bounded by what is open).
    pub fn tracked_connections(&self) -> usize {
        self.seen.len()
    }

    /// One full pass over the tree. Only an unreadable root is an error.
    pub fn scan(&mut self) -> Result<ScanReport, Error> {
        let entries =
            fs::read_dir(&self.root.0).map_err(|source| Error::UnreadableRoot { path: self.root.0.clone(), source })?;
        let mut pass = Pass::default();
        let mut pids = Vec::new();
        for entry in entries {
            // Listing /proc races with exits; an entry that fails is a process that just went away.
            let Ok(entry) = entry else {
                pass.report.vanished += 1;
                continue;
            };
            if let Some(pid) = pid_of(&entry.file_name()) {
                pids.push(pid);
            }
        }
        // Ascending pids make a scan deterministic (which process a namespace is read through, and so which
        // identity it is reported under) whatever order the directory lists in.
        pids.sort_unstable();
        pass.report.pids = pids.len();
        for pid in pids {
            self.visit(&self.root.0.join(pid.to_string()), &mut pass);
        }
        for ns in pass.failed.difference(&pass.tables_by_tcp_file) {
            self.seen.carry(*ns);
            self.gate.read_failed(*ns);
        }
        self.seen.finish_scan();
        self.gate.finish_scan();
        self.scanned_once = true;
        Ok(pass.report)
    }

    /// Reads the namespace of one process unless this scan already has it, under either identity.
    fn visit(&mut self, pid_dir: &Path, pass: &mut Pass) {
        let key = match netns::key_of(pid_dir) {
            Ok(key) => key,
            Err(err) => return pass.lost(pid_dir, &err),
        };
        if pass.settled.contains(&key) && self.mode != ScanMode::EveryPid {
            return;
        }
        let tcp_file = match key {
            NetnsKey::TcpFile(ino) => Ok(ino),
            NetnsKey::Ns(_) => netns::tcp_file_ino(pid_dir),
        };
        let tcp_file = match tcp_file {
            Ok(ino) => ino,
            Err(err) => return pass.lost(pid_dir, &err),
        };
        if self.host.is(key, tcp_file) {
            pass.report.skipped_host_netns = true;
        } else if !pass.tables_by_tcp_file.contains(&tcp_file) {
            if let Err(err) = self.gated_read(pid_dir, key, tcp_file, &mut pass.report) {
                // Not settled: another process of the same namespace may still be there to read it through.
                pass.failed.insert(tcp_file);
                return pass.lost(pid_dir, &err);
            }
            pass.tables_by_tcp_file.insert(tcp_file);
        } else if self.mode == ScanMode::EveryPid {
            // What a per-process scanner pays: the tables again, parsed and dropped (reported once already).
            if let Err(err) = self.read_tables(pid_dir, true, &mut pass.report) {
                pass.lost(pid_dir, &err);
            }
            return;
        }
        pass.settled.insert(key);
    }

    /// Reads a namespace's tables unless the gate says they hold nothing new. `ActiveOpens` is read before the
    /// tables, so a `connect()` racing with the read moves the counter past what is remembered.
    fn gated_read(&mut self, pid_dir: &Path, key: NetnsKey, tcp_file: u64, report: &mut ScanReport) -> io::Result<()> {
        let active_opens = match self.mode {
            ScanMode::Gated => read_counter(pid_dir, "net/snmp", gate::active_opens, &mut self.table),
            ScanMode::EveryNamespace | ScanMode::EveryPid => None,
        };
        if self.gate.decide(tcp_file, active_opens) == Decision::Unchanged {
            self.seen.carry(tcp_file);
            report.unchanged += 1;
            return Ok(());
        }
        // After the counter, so that a socket created after this look has its connect() counted after the
        // counter's read, and the next scan reads the namespace again.
        let v6 = match self.mode {
            ScanMode::Gated => read_counter(pid_dir, "net/sockstat6", gate::tcp6_in_use, &mut self.table) != Some(0),
            ScanMode::EveryNamespace | ScanMode::EveryPid => true,
        };
        self.read_namespace(pid_dir, key, tcp_file, v6, report)?;
        let connecting = self.rows.iter().any(|row| row.state == table::state::SYN_SENT);
        self.gate.read_done(tcp_file, active_opens, connecting);
        Ok(())
    }

    /// Reads and classifies both tables of one namespace (`tcp6` only if `v6`: it may be known to be empty). No
    /// connection is recorded unless both reads succeed.
    fn read_namespace(
        &mut self,
        pid_dir: &Path,
        key: NetnsKey,
        tcp_file: u64,
        v6: bool,
        report: &mut ScanReport,
    ) -> io::Result<()> {
        let malformed = self.read_tables(pid_dir, v6, report)?;
        report.namespaces += 1;
        report.sockets += self.rows.len();
        report.outcomes.malformed += malformed;
        self.classify_rows(key, tcp_file, report);
        if self.listeners.proxy_uid().is_some() {
            self.read_intercepted(pid_dir, key, tcp_file, report);
        }
        Ok(())
    }

    /// In a namespace with a mesh proxy, the intercepted connections that connection tracking still shows: those
    /// that opened and closed since the last read too (docs/counting.md, "Service meshes"). A kernel without
    /// `nf_conntrack` in procfs, or a process gone since its tables were read, leaves the sockets alone to tell.
    fn read_intercepted(&mut self, pid_dir: &Path, key: NetnsKey, tcp_file: u64, report: &mut ScanReport) {
        if let Err(err) = read_whole(&pid_dir.join("net/nf_conntrack"), &mut self.table) {
            tracing::debug!(pid_dir = %pid_dir.display(), error = %err, "no connection tracking table");
            return;
        }
        report.conntrack_read += 1;
        for entry in conntrack::intercepted(&self.table) {
            if self.seen.observe(tcp_file, SocketKey::Tuple(entry.client, entry.dialled)) && self.scanned_once {
                report.closed_intercepted += 1;
                report.new_connections.push(Connection {
                    local: entry.client,
                    remote: entry.dialled,
                    netns: key.id(),
                    inode: 0,
                    sighting: Sighting::Intercepted,
                });
            }
        }
    }

    /// Reads and parses both tables of a process (`tcp6` only if `v6`) into `self.rows`; returns the malformed
    /// rows.
    fn read_tables(&mut self, pid_dir: &Path, v6: bool, report: &mut ScanReport) -> io::Result<usize> {
        self.rows.clear();
        let mut malformed = 0;
        // tcp6 first: when it is missing and tcp then reads fine, IPv6 is simply off. A process that vanished
        // makes the tcp read fail too, so the two cases cannot be confused.
        if v6 {
            match read_whole(&pid_dir.join("net/tcp6"), &mut self.table) {
                Ok(()) => {
                    report.tables_read += 1;
                    malformed += parse_into(&self.table, Family::V6, &mut self.rows, pid_dir);
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        read_whole(&pid_dir.join("net/tcp"), &mut self.table)?;
        report.tables_read += 1;
        malformed += parse_into(&self.table, Family::V4, &mut self.rows, pid_dir);
        Ok(malformed)
    }

    /// Classifies the rows of one namespace, just read into `self.rows`. An intercepted socket is keyed by its
    /// 4-tuple, which its connection tracking entry shares ([`Self::read_intercepted`]).
    fn classify_rows(&mut self, key: NetnsKey, tcp_file: u64, report: &mut ScanReport) {
        self.listeners.clear();
        self.rows.iter().for_each(|row| self.listeners.add(row));
        self.intercepted.clear();
        if self.listeners.proxy_uid().is_some() {
            self.rows.iter().for_each(|row| self.intercepted.add(row));
        }
        for row in &self.rows {
            let outcome = classify(row, &self.listeners, &self.intercepted);
            let Outcome::Client(sighting) = outcome else {
                report.outcomes.count(outcome);
                continue;
            };
            let seen_as = match sighting {
                Sighting::Intercepted => SocketKey::Tuple(row.local, row.remote),
                _ => SocketKey::new(row.inode, row.local, row.remote),
            };
            if self.seen.observe(tcp_file, seen_as) {
                report.outcomes.count(outcome);
                let (local, remote, inode, netns) = (row.local, row.remote, row.inode, key.id());
                report.new_connections.push(Connection { local, remote, netns, inode, sighting });
            } else {
                report.outcomes.already_seen += 1;
            }
        }
    }
}

impl Pass {
    fn lost(&mut self, pid_dir: &Path, err: &io::Error) {
        if netns::vanished(err) {
            self.report.vanished += 1;
        } else {
            self.report.unreadable += 1;
            tracing::debug!(pid_dir = %pid_dir.display(), error = %err, "cannot read the process's TCP tables");
        }
    }
}

/// A counter of a process's namespace from one of its procfs files: `ActiveOpens` from `net/snmp`
/// ([`gate::active_opens`]), IPv6 TCP sockets from `net/sockstat6` ([`gate::tcp6_in_use`]). `None` when the file
/// cannot be read or parsed, so the namespace (or its `tcp6`) is read as if there were no counter; a vanished
/// process then fails the table read, which tells why.
fn read_counter(pid_dir: &Path, file: &str, parse: fn(&[u8]) -> Option<u64>, buf: &mut Vec<u8>) -> Option<u64> {
    read_whole(&pid_dir.join(file), buf).ok()?;
    parse(buf)
}

/// Reads a whole procfs file (a table, a counter file) into `buf` (reused, so its capacity fits the largest table
/// after the first scan).
fn read_whole(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    // Reserve up front so procfs is read in large chunks: each read() of a seq file walks the kernel's tables.
    buf.reserve(64 * 1024);
    File::open(path)?.read_to_end(buf).map(drop)
}

/// Appends the valid rows of `table` to `rows`; returns how many rows were malformed. The kernel never writes
/// one, so the first of each table is logged to tell a future format change from noise.
fn parse_into(table: &[u8], family: Family, rows: &mut Vec<SocketRow>, pid_dir: &Path) -> usize {
    let mut malformed = 0;
    for row in table::rows(table, family) {
        match row {
            Ok(row) => rows.push(row),
            Err(err) => {
                if malformed == 0 {
                    tracing::debug!(pid_dir = %pid_dir.display(), ?family, error = %err, "malformed TCP table row");
                }
                malformed += 1;
            }
        }
    }
    malformed
}

fn pid_of(name: &std::ffi::OsStr) -> Option<u32> {
    let name = name.to_str()?;
    // parse() alone would accept "+5"; procfs names are plain digits.
    name.bytes().all(|b| b.is_ascii_digit()).then(|| name.parse().ok())?
}
