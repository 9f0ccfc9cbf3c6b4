//! Real network namespaces for live tests: created with `ip netns`, removed by a Drop guard whatever way the test
//! ends, and by the next run when a test process was killed before its guards ran. Live tests that share the root
//! namespace take [`LiveLock`] so they run one at a time across test binaries and worktrees. Needs root.
//!
//! Every namespace is named `<prefix><pid>-<rest>`, the prefix one per kind of lab, so [`remove_leftovers`] knows
//! which process made it.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::cmd::{LineChild, run, run_quietly};

const LOCK_PATH: &str = "/tmp/network-mapper-live-tests.lock";

/// Serialises live tests across test binaries (they share the root namespace's addresses and routes).
pub struct LiveLock {
    _file: File,
}

impl LiveLock {
    pub fn acquire() -> io::Result<LiveLock> {
        let file = File::create(LOCK_PATH)?;
        if file.try_lock().is_err() {
            eprintln!("waiting for {LOCK_PATH} (another live test or the demo is running)...");
            file.lock()?;
        }
        Ok(LiveLock { _file: file })
    }
}

/// A named network namespace (`ip netns add`) with `lo` up. Dropping it deletes the namespace (and with it the
/// veth ends inside) and its `/etc/netns/<name>` directory.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(name: impl Into<String>) -> io::Result<Netns> {
        let name = name.into();
        run("ip", &["netns", "add", &name])?;
        let netns = Netns { name };
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// `ip <args>` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        ip_in(&self.name, args)
    }

    /// The namespace's inode, as `/proc/<pid>/ns/net` of a process inside shows it.
    pub fn inode(&self) -> io::Result<u64> {
        Ok(fs::metadata(format!("/run/netns/{}", self.name))?.ino())
    }

    /// `ip netns exec <name> <program>`: the program runs in place of `ip` (so the child's pid is the program's),
    /// with the namespace's `/etc/netns/<name>/resolv.conf`.
    pub fn command(&self, program: &str) -> Command {
        command_in(&self.name, program)
    }

    /// Starts `program args...` inside the namespace, driven line by line over stdin/stdout.
    pub fn spawn_lines(&self, program: &str, args: &[&str]) -> io::Result<LineChild> {
        LineChild::spawn(self.command(program).args(args))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove_netns(&self.name);
    }
}

/// `ip <args>` inside namespace `ns`.
pub fn ip_in(ns: &str, args: &[&str]) -> io::Result<()> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    run("ip", &full).map(drop)
}

/// `ip netns exec <netns> <program>`.
pub fn command_in(netns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns, program]);
    cmd
}

/// Joins two namespaces with a veth pair `<tag>a`/`<tag>b` and gives each end an address (CIDR form). The pair
/// lives only inside the namespaces, so deleting them removes it.
pub fn connect_veth(a: &Netns, b: &Netns, tag: &str, a_addr: &str, b_addr: &str) -> io::Result<()> {
    let (a_if, b_if) = (format!("{tag}a"), format!("{tag}b"));
    run("ip", &["link", "add", &a_if, "netns", &a.name, "type", "veth", "peer", "name", &b_if, "netns", &b.name])?;
    for (ns, ifname, addr) in [(a, &a_if, a_addr), (b, &b_if, b_addr)] {
        ns.ip(&["addr", "add", addr, "dev", ifname])?;
        ns.ip(&["link", "set", ifname, "up"])?;
    }
    Ok(())
}

/// Runs `f` on a thread that has entered network namespace `ns`: sockets it (or threads it spawns) create belong
/// to that namespace.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    let path = format!("/run/netns/{ns}");
    let thread = std::thread::spawn(move || -> io::Result<T> {
        let file = File::open(&path)?;
        // SAFETY: setns only changes this thread's network namespace; the fd is valid for the call.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(f())
    });
    thread.join().map_err(|_| io::Error::other("in_netns: the closure panicked"))?
}

fn remove_netns(name: &str) {
    run_quietly("ip", &["netns", "del", name]);
    let _ = fs::remove_dir_all(Path::new("/etc/netns").join(name));
}

/// Removes what runs killed by a signal left behind: namespaces named `<prefix><pid>-…` whose process is gone,
/// after ending the processes still inside them (that run started them). A veth with one end in such a namespace
/// goes with it.
pub fn remove_leftovers(prefix: &str) {
    let Ok(out) = run("ip", &["netns", "list"]) else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name.strip_prefix(prefix).and_then(|rest| rest.split('-').next()) else { continue };
        if pid.parse::<u32>().is_err() || is_alive(pid) {
            continue;
        }
        if let Ok(pids) = run("ip", &["netns", "pids", name]) {
            for leftover in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                run_quietly("kill", &["-KILL", leftover]);
            }
        }
        remove_netns(name);
    }
}

/// Whether process `pid` runs (a zombie, killed but not yet reaped, does not).
fn is_alive(pid: &str) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("State:")).is_some_and(|state| !state.trim_start().starts_with('Z'))
}
