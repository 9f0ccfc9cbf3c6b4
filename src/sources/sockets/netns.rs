//! Which network namespace a process is in, and whether that is the host's, from a procfs tree.
//!
//! Two identities exist, and both come from the kernel's one pool of proc inode numbers (`proc_alloc_inum`), so
//! they never collide between live namespaces:
//! - the inode of `<pid>/ns/net` (the `N` of `net:[N]`, what `lsns` and `ip netns identify` show). Reading it
//!   needs ptrace-read access to the process (in Kubernetes: hostPID plus CAP_SYS_PTRACE).
//! - the inode of `<pid>/net/tcp`. Each namespace registers its own `tcp` proc entry, so this number is distinct
//!   per namespace and stable while the namespace lives. It is readable whenever the table itself is. It is
//!   undocumented, so it serves only as a dedupe key, never as a name shown to operators.
//!
//! One namespace can be seen under both identities in the same scan (ns/net permitted for one of its processes,
//! refused for another); the scanner aliases them through the `net/tcp` inode so a table is still read once.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// How a process's namespace was identified this scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetnsKey {
    /// Inode of `<pid>/ns/net`.
    Ns(u64),
    /// Inode of `<pid>/net/tcp`, when `ns/net` could not be stat'ed.
    TcpFile(u64),
}

impl NetnsKey {
    /// The number reported as the connection's namespace.
    pub fn id(self) -> u64 {
        match self {
            NetnsKey::Ns(ino) | NetnsKey::TcpFile(ino) => ino,
        }
    }
}

/// Identifies the namespace of the process whose procfs directory is `pid_dir`: one `stat` when `ns/net` is
/// permitted, two otherwise. Any `ns/net` failure falls back, so a fake tree without `ns/` works too; a process
/// that vanished fails both and the second error is returned.
pub fn key_of(pid_dir: &Path) -> io::Result<NetnsKey> {
    match std::fs::metadata(pid_dir.join("ns/net")) {
        Ok(meta) => Ok(NetnsKey::Ns(meta.ino())),
        Err(_) => tcp_file_ino(pid_dir).map(NetnsKey::TcpFile),
    }
}

/// Inode of `<pid_dir>/net/tcp`.
pub fn tcp_file_ino(pid_dir: &Path) -> io::Result<u64> {
    std::fs::metadata(pid_dir.join("net/tcp")).map(|meta| meta.ino())
}

/// The host's own network namespace: the one of pid 1 under the procfs root. Known by its `net/tcp` inode
/// always, and by its `ns/net` inode where permitted, so a process matches whichever way it was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostNetns {
    ns: Option<u64>,
    tcp_file: u64,
}

impl HostNetns {
    /// Reads pid 1's identities. Fails only when `<root>/1/net/tcp` cannot be stat'ed.
    pub fn of_pid1(root: &Path) -> io::Result<Self> {
        let pid1 = root.join("1");
        let tcp_file = tcp_file_ino(&pid1)?;
        let ns = std::fs::metadata(pid1.join("ns/net")).ok().map(|meta| meta.ino());
        Ok(HostNetns { ns, tcp_file })
    }

    /// Whether a namespace known as `key`, whose `net/tcp` inode is `tcp_file`, is the host's.
    pub fn is(&self, key: NetnsKey, tcp_file: u64) -> bool {
        tcp_file == self.tcp_file || matches!(key, NetnsKey::Ns(ino) if Some(ino) == self.ns)
    }
}

/// Where network namespaces created from now on keep their established TCP sockets, as the host's
/// `net.ipv4.tcp_child_ehash_entries` (Linux ≥ 6.1) decides. It is what one table read costs: the kernel walks
/// the whole hash the namespace's sockets are in, and keeps that namespace's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodHash {
    /// The host-wide hash (the kernel's default), of `host_buckets` buckets.
    Shared { host_buckets: u64 },
    /// A hash of their own, of `buckets` (the kernel rounds it up to a power of two).
    Own { buckets: u64 },
}

impl PodHash {
    /// Reads the sysctls under the procfs root. They show the namespace of the process that reads them, so
    /// this is the host's only when the exporter runs in it (hostNetwork). `None` on kernels without the
    /// setting.
    pub fn of_host(root: &Path) -> Option<PodHash> {
        let sysctl = |name: &str| -> Option<i64> {
            std::fs::read_to_string(root.join("sys/net/ipv4").join(name)).ok()?.trim().parse().ok()
        };
        match sysctl("tcp_child_ehash_entries")? {
            0 => Some(PodHash::Shared { host_buckets: sysctl("tcp_ehash_entries")?.unsigned_abs() }),
            buckets => Some(PodHash::Own { buckets: buckets.unsigned_abs() }),
        }
    }
}

/// Whether an I/O error means the process (or its namespace) went away while we looked: the directory is
/// gone (ENOENT) or the task is dead (ESRCH, which `/proc/<pid>/...` returns for exiting tasks).
pub fn vanished(err: &io::Error) -> bool {
    const ESRCH: i32 = 3;
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(ESRCH)
}
