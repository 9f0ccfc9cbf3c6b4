//! The live-test policy. A live test needs root and real programs (network namespaces, dnsmasq, Prometheus...).
//! Every live test is marked `#[ignore = "live: ..."]`, so a plain `cargo test` lists it as *ignored* with the
//! reason; `make test` runs them with `--include-ignored` and fails if any was not run. A live test that runs
//! here but cannot work (no root, a program missing) fails with the reason: it never returns early as passed.

use std::path::Path;
use std::process::Command;

/// What a live test needs from the machine.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    /// uid 0: network namespaces, veths, iptables, CAP_NET_RAW.
    Root,
    /// A program at a fixed path, and the Debian package that installs it.
    File(&'static str, &'static str),
    /// A program found through PATH (`<name> -V` must run), and its package.
    Tool(&'static str, &'static str),
}

/// Root alone: opening a live capture (CAP_NET_RAW).
pub const ROOT: &[Need] = &[Need::Root];

/// Root, `ip` and dnsmasq: the DNS lab of [`crate::lab::DnsLab`].
pub const DNS_LAB: &[Need] =
    &[Need::Root, Need::Tool("ip", "iproute2"), Need::File(crate::lab::DNSMASQ, "dnsmasq-base")];

/// Root, `ip` and python3: two namespaces with processes in them.
pub const NETNS: &[Need] = &[Need::Root, Need::Tool("ip", "iproute2"), Need::File("/usr/bin/python3", "python3")];

/// Everything the simulated node of [`crate::e2e`] needs.
pub const NODE_LAB: &[Need] = &[
    Need::Root,
    Need::File(crate::lab::DNSMASQ, "dnsmasq-base"),
    Need::File("/usr/bin/prometheus", "prometheus"),
    Need::File("/usr/bin/python3", "python3"),
    Need::File("/usr/bin/getent", "libc-bin"),
    Need::File("/usr/bin/dig", "dnsutils"),
    Need::Tool("ip", "iproute2"),
    Need::Tool("iptables", "iptables"),
];

/// Why a live test cannot run here, if it cannot.
pub fn missing(needs: &[Need]) -> Option<String> {
    needs.iter().find_map(|need| match *need {
        Need::Root if !is_root() => {
            Some("needs root (network namespaces, veth pairs, iptables, CAP_NET_RAW): run `sudo make test`".into())
        }
        Need::File(path, package) if !Path::new(path).exists() => {
            Some(format!("{path} is missing: apt-get install {package} (or run scripts/setup.sh)"))
        }
        Need::Tool(name, package) if Command::new(name).arg("-V").output().is_err() => {
            Some(format!("`{name}` is missing: apt-get install {package} (or run scripts/setup.sh)"))
        }
        _ => None,
    })
}

/// Fails the calling live test, with the reason, unless the machine has everything it needs.
pub fn require(needs: &[Need]) {
    if let Some(reason) = missing(needs) {
        panic!("this live test cannot run here: {reason}");
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
