//! Client-side TCP connections found by scanning `/proc`: long-lived connections opened before start-up, and
//! clients that cache DNS so no answer is ever captured for them (docs/design.md §3 "TCP sockets").
//!
//! Layers, from the bytes up:
//! - [`table`]: parses `net/tcp` and `net/tcp6` text; pure.
//! - [`classify`]: client side, server side, loopback or not established, per namespace, and whose a client
//!   socket is where a mesh proxy runs; pure.
//! - [`conntrack`]: parses `net/nf_conntrack` for the connections a mesh proxy intercepted; pure.
//! - [`seen`]: reports each connection once, forgets closed ones.
//! - [`gate`]: which namespaces a scan must read: those whose `ActiveOpens` moved, and new ones.
//! - [`netns`]: identifies a process's network namespace and the host's, from stats under the procfs root.
//! - [`Scanner`]: walks `<root>/<pid>` and ties the above together; the only part that reads files.
//!
//! Resolving addresses to workloads and counting belong to the resolver and metrics modules; this module hands
//! them [`Connection`]s and the per-outcome counts in [`ScanReport`].

pub mod classify;
pub mod conntrack;
pub mod gate;
pub mod netns;
mod scanner;
pub mod seen;
pub mod table;

pub use gate::ScanMode;
pub use scanner::{Connection, ScanReport, Scanner, SocketOutcomes};

use std::path::PathBuf;

/// Where the procfs tree is (`--procfs-root`): `/proc`, `/host/proc` in the DaemonSet, a fixture in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcRoot(pub PathBuf);

impl Default for ProcRoot {
    fn default() -> Self {
        ProcRoot(PathBuf::from("/proc"))
    }
}

/// Failures of the scanner as a whole. A process or namespace that vanishes mid-scan is not one of them: it is
/// skipped and counted in [`ScanReport`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot read the procfs root {path}: {source}. Point --procfs-root at a readable procfs; in a container, \
         mount the host's /proc (e.g. at /host/proc) and pass --procfs-root /host/proc"
    )]
    UnreadableRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} cannot be read ({source}), so --procfs-root does not look like a procfs tree with the host's \
         processes. Mount the host's /proc (e.g. at /host/proc, with hostPID: true) and pass --procfs-root"
    )]
    NotProcfs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Short stable label for self-metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::UnreadableRoot { .. } => "unreadable_root",
            Error::NotProcfs { .. } => "not_procfs",
        }
    }
}
