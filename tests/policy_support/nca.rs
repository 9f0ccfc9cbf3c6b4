//! np-guard's Network Config Analyzer's `txt_no_fw_rules` output, as TCP port sets per (source, destination):
//! `src => dst : All connections`, `No connections`, `{protocols:TCP, UDP,dst_ports:53,80-82}` (several sets
//! side by side), or `All but {…}` (the complement). Destinations outside the cluster are address ranges
//! (`10.0.0.0-10.255.255.255`, `10.0.0.0/8` or one address); a pair the analyzer does not print has no
//! connection.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use network_mapper::reduce::impact::ports::PortSet;

/// Installs the analyzer (`scripts/nca-venv.sh`, reused when present) and returns its `nca` command; fails the
/// test, saying why, when it cannot.
pub fn analyzer() -> String {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/nca-venv.sh");
    let install = Command::new(&venv).output().expect("scripts/nca-venv.sh runs");
    let why = String::from_utf8_lossy(&install.stderr);
    assert!(install.status.success(), "this live test cannot run here: installing the analyzer failed: {why}");
    String::from_utf8(install.stdout).unwrap().trim().to_owned()
}

/// The analyzer's allowed connections: (source, destination) → TCP ports.
#[derive(Debug, Default)]
pub struct Allowed {
    pairs: BTreeMap<(String, String), PortSet>,
}

impl Allowed {
    /// The TCP ports from `source` to `destination` (a pod's name, or an IPv4 address inside a printed range).
    pub fn tcp_ports(&self, source: &str, destination: &str) -> PortSet {
        if let Some(ports) = self.pairs.get(&(source.to_owned(), destination.to_owned())) {
            return ports.clone();
        }
        let Ok(address) = destination.parse::<Ipv4Addr>() else { return PortSet::none() };
        self.pairs
            .iter()
            .filter(|((s, d), _)| s == source && range_holds(d, address))
            .fold(PortSet::none(), |all, (_, ports)| all.union(ports))
    }
}

/// Parses the whole output.
pub fn parse_connectivity(text: &str) -> Allowed {
    let mut allowed = Allowed::default();
    for line in text.lines().filter(|l| l.contains(" => ")) {
        let (pair, conns) = line.split_once(" : ").unwrap_or_else(|| panic!("unexpected line {line:?}"));
        let (src, dst) = pair.split_once(" => ").unwrap();
        let ports = tcp_of(conns.trim());
        let entry = allowed.pairs.entry((src.to_owned(), dst.to_owned())).or_default();
        *entry = entry.union(&ports);
    }
    allowed
}

fn tcp_of(conns: &str) -> PortSet {
    match conns {
        "All connections" => PortSet::all(),
        "No connections" => PortSet::none(),
        _ => match conns.strip_prefix("All but ") {
            Some(complement) => complement_of(&sets(complement)),
            None => sets(conns),
        },
    }
}

/// The TCP ports of `{…},{…}`: a set without `protocols` is every protocol, one without `dst_ports` every port.
fn sets(text: &str) -> PortSet {
    let mut ports = PortSet::none();
    for set in text.split('{').skip(1).map(|s| s.split('}').next().unwrap_or_default()) {
        let protocols = field(set, "protocols");
        if protocols.is_some_and(|p| !p.split(", ").any(|p| p == "TCP")) {
            continue;
        }
        let set_ports = match field(set, "dst_ports") {
            None => PortSet::all(),
            Some(list) => list.split(',').fold(PortSet::none(), |all, range| {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                all.union(&PortSet::range(a.trim().parse().unwrap(), b.trim().parse().unwrap()))
            }),
        };
        ports = ports.union(&set_ports);
    }
    ports
}

/// The value of `key:` in a set, up to the next `,key:` of another dimension.
fn field<'a>(set: &'a str, key: &str) -> Option<&'a str> {
    let start = set.find(&format!("{key}:"))? + key.len() + 1;
    let rest = &set[start..];
    let end = ["protocols:", "src_ports:", "dst_ports:", "icmp_type:", "icmp_code:"]
        .iter()
        .filter_map(|k| rest.find(&format!(",{k}")))
        .min()
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

fn complement_of(set: &PortSet) -> PortSet {
    let mut out = PortSet::none();
    let mut next: u32 = 1;
    for &(a, b) in set.ranges() {
        if u32::from(a) > next {
            out = out.union(&PortSet::range(next as u16, a - 1));
        }
        next = u32::from(b) + 1;
    }
    if next <= 65535 {
        out = out.union(&PortSet::range(next as u16, 65535));
    }
    out
}

/// `a-b`, `a/n` or one address holds `address`.
fn range_holds(range: &str, address: Ipv4Addr) -> bool {
    let ip = |s: &str| s.trim().parse::<Ipv4Addr>().ok().map(u32::from);
    let value = u32::from(address);
    if let Some((a, b)) = range.split_once('-') {
        return matches!((ip(a), ip(b)), (Some(a), Some(b)) if a <= value && value <= b);
    }
    if let Some((net, len)) = range.split_once('/') {
        let (Some(net), Ok(len)) = (ip(net), len.parse::<u32>()) else { return false };
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        return net & mask == value & mask;
    }
    ip(range) == Some(value)
}
