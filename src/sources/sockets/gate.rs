//! Which namespaces a scan must read: the `ActiveOpens` gate (docs/design.md §3 "TCP sockets").
//!
//! Reading `<pid>/net/tcp` makes the kernel walk the host-wide TCP established hash (milliseconds of kernel CPU
//! per table, whatever the namespace holds), while `<pid>/net/snmp` costs tens of microseconds. Its `Tcp:` line
//! has `ActiveOpens`, which counts every `connect()` of the namespace (IPv4 and IPv6 alike, refused ones too),
//! and the kernel counts it only after the socket is in the established hash in SYN_SENT. So a client-side
//! connection the scanner has not seen can exist only if the counter moved since the counter was last read
//! before a table read, and the gate reads a namespace's tables only then, or when the namespace is new.
//!
//! Why no connection is lost:
//! - The counter is read *before* the tables. A `connect()` after that read moves the counter past the
//!   remembered value, so the next scan reads the namespace again, whatever this read saw of it.
//! - A connection still in SYN_SENT when the tables were read is not reported yet (it is not established), so
//!   the counter is not advanced past it: the namespace stays "must read" until a read finds no SYN_SENT socket.
//! - State is keyed by the namespace (the `net/tcp` inode), not by a process, so a pid that exits does not
//!   lose it; a namespace that no scan finds any more is forgotten.
//! - A namespace whose `snmp` cannot be read (or parsed) is read every scan, as before the gate.

use std::collections::HashMap;

/// What a scan does with one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Read both tables.
    Read,
    /// No `connect()` since the last read: its connections are the ones already remembered.
    Unchanged,
}

/// How the scanner chooses the namespaces it reads. Only [`ScanMode::Gated`] is used by the exporter; the others
/// exist so a benchmark can measure what the gate saves on the same tree, in the same run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScanMode {
    /// Read a namespace's tables only when its `ActiveOpens` moved since its last read, or it is new.
    #[default]
    Gated,
    /// Read every namespace's tables once per scan (the scanner before the gate).
    EveryNamespace,
    /// Read the tables of every pid, as a per-process scanner does (Otterize's); namespaces still report once.
    EveryPid,
}

/// The counter values remembered per namespace between scans.
#[derive(Debug, Default)]
pub struct Gate {
    /// `None`: read at the next scan whatever the counter says (SYN_SENT seen, or no counter).
    remembered: HashMap<u64, Option<u64>>,
    /// Namespaces found by the current scan, with what to remember for them.
    current: HashMap<u64, Option<u64>>,
}

impl Gate {
    /// Decides for namespace `ns` (its `net/tcp` inode) given its `ActiveOpens` read just now (`None` when the
    /// counter could not be read). An [`Decision::Unchanged`] namespace is remembered as it was.
    pub fn decide(&mut self, ns: u64, active_opens: Option<u64>) -> Decision {
        match (self.remembered.get(&ns), active_opens) {
            (Some(Some(before)), Some(now)) if *before == now => {
                self.current.insert(ns, Some(now));
                Decision::Unchanged
            }
            _ => Decision::Read,
        }
    }

    /// Records a completed read of namespace `ns`. `active_opens` is the value given to [`Gate::decide`] for
    /// this read; `connecting` says whether the tables held a socket in SYN_SENT.
    pub fn read_done(&mut self, ns: u64, active_opens: Option<u64>, connecting: bool) {
        self.current.insert(ns, if connecting { None } else { active_opens });
    }

    /// Keeps a namespace the scan found but could not read (its process vanished mid-read, and no other one
    /// remained): it is read at the next scan, and is not new then.
    pub fn read_failed(&mut self, ns: u64) {
        self.current.entry(ns).or_insert(None);
    }

    /// Whether the gate knows namespace `ns` from an earlier scan.
    pub fn knows(&self, ns: u64) -> bool {
        self.remembered.contains_key(&ns)
    }

    /// Ends a scan: namespaces it did not find are forgotten.
    pub fn finish_scan(&mut self) {
        std::mem::swap(&mut self.remembered, &mut self.current);
        self.current.clear();
    }

    /// Namespaces remembered.
    pub fn len(&self) -> usize {
        self.remembered.len()
    }

    pub fn is_empty(&self) -> bool {
        self.remembered.is_empty()
    }
}

/// `ActiveOpens` from the text of a `net/snmp` file: the `Tcp:` header line names the columns, the next `Tcp:`
/// line holds the values. `None` when the file has no such column or its value is not a number.
pub fn active_opens(snmp: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(snmp).ok()?;
    let mut tcp = text.lines().filter(|line| line.starts_with("Tcp:"));
    let (header, values) = (tcp.next()?, tcp.next()?);
    let column = header.split_ascii_whitespace().position(|name| name == "ActiveOpens")?;
    values.split_ascii_whitespace().nth(column)?.parse().ok()
}

/// TCP sockets of the IPv6 family in a namespace, from the text of its `net/sockstat6` file (`TCP6: inuse N`):
/// every socket the `tcp6` table would list, listening or connected, IPv4-mapped ones included. Zero means the
/// `tcp6` table is empty and its read (a walk of the host-wide hash, like `tcp`'s) can be skipped.
pub fn tcp6_in_use(sockstat6: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(sockstat6).ok()?;
    let line = text.lines().find_map(|line| line.strip_prefix("TCP6:"))?;
    let mut fields = line.split_ascii_whitespace();
    while let Some(name) = fields.next() {
        if name == "inuse" {
            return fields.next()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp6_sockets_in_use_are_read_from_sockstat6() {
        let text = "TCP6: inuse 2\nUDP6: inuse 1\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n";
        assert_eq!(tcp6_in_use(text.as_bytes()), Some(2));
        assert_eq!(tcp6_in_use(b"TCP6: inuse 0\n"), Some(0));
        assert_eq!(tcp6_in_use(b"UDP6: inuse 3\n"), None);
        assert_eq!(tcp6_in_use(b"TCP6: inuse x\n"), None);
    }

    /// As `/proc/<pid>/net/snmp` prints it (Linux 6.1), Ip/Icmp lines shortened.
    const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives\nIp: 1 64 12345\n\
        Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab \
        InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n\
        Tcp: 1 200 120000 -1 4711 12 3 0 5 9999 8888 1 0 2 0\n\
        Udp: InDatagrams NoPorts\nUdp: 1 2\n";

    #[test]
    fn active_opens_is_read_by_its_column_name() {
        assert_eq!(active_opens(SNMP.as_bytes()), Some(4711));
        assert_eq!(active_opens(SNMP.replace("ActiveOpens", "Renamed").as_bytes()), None);
        assert_eq!(active_opens(b"Tcp: RtoAlgorithm ActiveOpens\n"), None);
        assert_eq!(active_opens(b"Tcp: ActiveOpens\nTcp: x\n"), None);
        assert_eq!(active_opens(b""), None);
    }

    #[test]
    fn a_namespace_is_read_when_new_or_moved_and_skipped_while_unchanged() {
        let mut gate = Gate::default();
        assert_eq!(gate.decide(7, Some(10)), Decision::Read);
        gate.read_done(7, Some(10), false);
        gate.finish_scan();
        assert_eq!(gate.decide(7, Some(10)), Decision::Unchanged);
        gate.finish_scan();
        assert_eq!(gate.decide(7, Some(10)), Decision::Unchanged);
        gate.finish_scan();
        assert_eq!(gate.decide(7, Some(11)), Decision::Read);
        assert_eq!(gate.decide(8, Some(0)), Decision::Read, "new namespace");
    }

    #[test]
    fn syn_sent_or_no_counter_keeps_a_namespace_read_every_scan() {
        let mut gate = Gate::default();
        gate.decide(7, Some(10));
        gate.read_done(7, Some(10), true);
        gate.decide(8, None);
        gate.read_done(8, None, false);
        gate.finish_scan();
        assert_eq!(gate.decide(7, Some(10)), Decision::Read, "a connection was in SYN_SENT");
        assert_eq!(gate.decide(8, None), Decision::Read, "no counter");
        gate.read_done(7, Some(10), false);
        gate.finish_scan();
        assert_eq!(gate.decide(7, Some(10)), Decision::Unchanged);
    }

    #[test]
    fn a_namespace_missing_from_a_scan_is_forgotten_and_a_failed_read_is_retried() {
        let mut gate = Gate::default();
        gate.decide(7, Some(1));
        gate.read_done(7, Some(1), false);
        gate.decide(8, Some(1));
        gate.read_done(8, Some(1), false);
        gate.finish_scan();
        assert_eq!(gate.decide(8, Some(1)), Decision::Unchanged);
        gate.finish_scan();
        assert!(!gate.knows(7) && gate.knows(8));
        assert_eq!(gate.decide(8, Some(2)), Decision::Read);
        gate.read_failed(8);
        gate.finish_scan();
        assert!(gate.knows(8));
        assert_eq!(gate.decide(8, Some(2)), Decision::Read);
    }
}
