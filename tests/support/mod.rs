//! Shared helpers for tests that need real network plumbing: a network namespace joined to the root namespace by a
//! veth pair, and a real dnsmasq serving DNS inside it. Every piece is removed by a Drop guard, even when the test
//! panics. Only link-local (169.254/16) and documentation (2001:db8::/32) addresses are used, so no traffic leaves
//! the machine.
//!
//! Use from a test file with `mod support;`. Live tests need root, `ip` (iproute2) and `/usr/sbin/dnsmasq`
//! (dnsmasq-base): when `CI` is set a missing prerequisite fails the test; otherwise the test is skipped with a
//! printed reason.
#![allow(dead_code)] // each test binary uses its own subset

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const DNSMASQ: &str = "/usr/sbin/dnsmasq";
const LOCK_PATH: &str = "/tmp/network-mapper-live-tests.lock";

/// Returns true when live tests can run. Otherwise fails (under CI) or prints why the test is skipped.
pub fn live_prerequisites_met() -> bool {
    let problem = if !is_root() {
        Some("live capture tests need root (network namespaces, veth pairs, CAP_NET_RAW)".to_string())
    } else if !Path::new(DNSMASQ).exists() {
        Some(format!("{DNSMASQ} is missing: apt-get install dnsmasq-base"))
    } else if Command::new("ip").arg("-V").output().is_err() {
        Some("`ip` is missing: apt-get install iproute2".to_string())
    } else {
        None
    };
    match problem {
        None => true,
        Some(reason) if std::env::var_os("CI").is_some() => {
            panic!("CI is set, so not skipping: {reason}")
        }
        Some(reason) => {
            // Straight to stderr: libtest captures eprintln!, and the reason must be seen.
            let _ = writeln!(std::io::stderr(), "skipping live test: {reason}");
            false
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// Runs a command, panicking with its stderr if it fails (setup steps must work for the test to mean anything).
pub fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Best effort, for Drop guards: cleanup must never panic during an unwinding test.
fn run_quietly(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// Serialises live tests across test binaries (they share the root namespace's routing table).
pub struct LiveLock(File);

impl LiveLock {
    pub fn acquire() -> LiveLock {
        let file = File::create(LOCK_PATH).expect("create live-test lock file");
        file.lock().expect("lock live-test lock file");
        LiveLock(file)
    }
}

/// A unique small number per lab in this process; with the pid it makes names and subnets unique.
fn next_lab_number() -> u32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed) % 64
}

pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn create(name: &str) -> NetNs {
        run("ip", &["netns", "add", name]);
        let ns = NetNs { name: name.to_string() };
        run("ip", &["-n", name, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        run_quietly("ip", &["netns", "del", &self.name]);
    }
}

/// A veth pair: `root_if` in the root namespace, `ns_if` in the namespace, each with an IPv4 /30 and IPv6 /64.
pub struct VethPair {
    pub root_if: String,
    pub ns_if: String,
    pub root_v4: Ipv4Addr,
    pub ns_v4: Ipv4Addr,
    pub root_v6: Ipv6Addr,
    pub ns_v6: Ipv6Addr,
}

impl VethPair {
    pub fn create(netns: &NetNs, lab: u32) -> VethPair {
        let pid = std::process::id();
        let (root_if, ns_if) = (format!("nm{pid}r{lab}"), format!("nm{pid}n{lab}"));
        run("ip", &["link", "add", &root_if, "type", "veth", "peer", "name", &ns_if, "netns", &netns.name]);
        // The guard exists from here on, so a failure below still removes the pair.
        let base = (lab * 4) as u8;
        let third = 1 + (pid % 250) as u8; // 169.254.0/24 and .255/24 are reserved
        let pair = VethPair {
            root_v4: Ipv4Addr::new(169, 254, third, base + 1),
            ns_v4: Ipv4Addr::new(169, 254, third, base + 2),
            root_v6: Ipv6Addr::new(0x2001, 0xdb8, (pid & 0xffff) as u16, lab as u16, 0, 0, 0, 1),
            ns_v6: Ipv6Addr::new(0x2001, 0xdb8, (pid & 0xffff) as u16, lab as u16, 0, 0, 0, 2),
            root_if,
            ns_if,
        };
        pair.configure(&netns.name);
        pair
    }

    fn configure(&self, ns: &str) {
        let (root4, ns4) = (format!("{}/30", self.root_v4), format!("{}/30", self.ns_v4));
        let (root6, ns6) = (format!("{}/64", self.root_v6), format!("{}/64", self.ns_v6));
        run("ip", &["addr", "add", &root4, "dev", &self.root_if]);
        run("ip", &["-6", "addr", "add", &root6, "dev", &self.root_if, "nodad"]);
        run("ip", &["link", "set", &self.root_if, "up"]);
        run("ip", &["-n", ns, "addr", "add", &ns4, "dev", &self.ns_if]);
        run("ip", &["-n", ns, "-6", "addr", "add", &ns6, "dev", &self.ns_if, "nodad"]);
        run("ip", &["-n", ns, "link", "set", &self.ns_if, "up"]);
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting one end removes both.
        run_quietly("ip", &["link", "del", &self.root_if]);
    }
}

/// dnsmasq in the foreground inside the namespace, answering only from its command-line records.
pub struct Dnsmasq {
    child: Child,
}

impl Dnsmasq {
    pub fn start(netns: &NetNs, veth: &VethPair, records: &[&str]) -> Dnsmasq {
        let listen4 = format!("--listen-address={}", veth.ns_v4);
        let listen6 = format!("--listen-address={}", veth.ns_v6);
        let mut args = vec!["netns", "exec", &netns.name, DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts"];
        args.extend(["--conf-file=/dev/null", "--bind-interfaces", "--port=53", "--pid-file=", "--user=root"]);
        args.extend(["--group=root", "--cache-size=0", &listen4, &listen6]);
        args.extend(records);
        let child =
            Command::new("ip").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start dnsmasq");
        Dnsmasq { child }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        // `ip netns exec` execs dnsmasq, so this pid is dnsmasq itself.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A namespace, a veth pair and a dnsmasq that answers. Fields drop in order: dnsmasq, veth, namespace, lock.
pub struct DnsLab {
    pub dnsmasq: Dnsmasq,
    pub veth: VethPair,
    pub netns: NetNs,
    _lock: LiveLock,
}

impl DnsLab {
    /// Starts the lab and waits until dnsmasq answers `probe_name` (which `records` must define).
    pub fn start(records: &[&str], probe_name: &str) -> DnsLab {
        let lock = LiveLock::acquire();
        remove_labs_of_dead_processes();
        let lab = next_lab_number();
        let netns = NetNs::create(&format!("nm-test-{}-{lab}", std::process::id()));
        let veth = VethPair::create(&netns, lab);
        let dnsmasq = Dnsmasq::start(&netns, &veth, records);
        let lab = DnsLab { dnsmasq, veth, netns, _lock: lock };
        lab.wait_until_answering(probe_name);
        lab
    }

    pub fn server_v4(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.veth.ns_v4), 53)
    }

    pub fn server_v6(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V6(self.veth.ns_v6), 53)
    }

    fn wait_until_answering(&self, probe_name: &str) {
        let query = network_mapper::sources::capture::synth::query(1, probe_name, simple_dns::TYPE::A);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if udp_exchange(IpAddr::V4(self.veth.root_v4), self.server_v4(), &query, Duration::from_millis(200)).is_ok()
            {
                return;
            }
        }
        panic!("dnsmasq in {} did not answer within 10 s", self.netns.name);
    }
}

/// A test process killed by a signal runs no Drop guards: remove its namespaces and veth pairs, found by name.
fn remove_labs_of_dead_processes() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix("nm-test-") else {
            continue;
        };
        let Some((pid, lab)) = rest.split_once('-') else {
            continue;
        };
        if pid.parse::<u32>().is_err() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        run_quietly("ip", &["link", "del", &format!("nm{pid}r{lab}")]);
        run_quietly("ip", &["netns", "del", name]);
    }
}

/// Sends one DNS query over UDP from `bind` and returns (client address used, response bytes).
pub fn udp_exchange(
    bind: IpAddr,
    server: SocketAddr,
    query: &[u8],
    timeout: Duration,
) -> std::io::Result<(SocketAddr, Vec<u8>)> {
    let socket = UdpSocket::bind(SocketAddr::new(bind, 0))?;
    socket.set_read_timeout(Some(timeout))?;
    socket.send_to(query, server)?;
    let mut buf = vec![0; 65_535];
    let (n, _) = socket.recv_from(&mut buf)?;
    buf.truncate(n);
    Ok((socket.local_addr()?, buf))
}

/// Sends one DNS query over TCP (length-prefixed) and returns (client address used, response bytes).
pub fn tcp_exchange(server: SocketAddr, query: &[u8], timeout: Duration) -> std::io::Result<(SocketAddr, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&server, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(&(query.len() as u16).to_be_bytes())?;
    stream.write_all(query)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut response = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut response)?;
    Ok((stream.local_addr()?, response))
}

/// What one thread of this process has cost so far: CPU in clock ticks (utime + stime, 1/100 s)
/// and voluntary context switches (each one a sleep the thread woke from).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadUsage {
    pub cpu_ticks: u64,
    pub wakeups: u64,
}

impl ThreadUsage {
    /// The calling thread's id, for [`ThreadUsage::of`] from another thread.
    pub fn current_tid() -> i32 {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::gettid() }
    }

    /// The usage of thread `tid` of this process, read from `/proc/self/task/<tid>/`.
    pub fn of(tid: i32) -> ThreadUsage {
        let task = format!("/proc/self/task/{tid}");
        let stat = std::fs::read_to_string(format!("{task}/stat")).expect("read the thread's stat");
        // Fields after the parenthesised command name: state is the 3rd field, utime the 14th, stime the 15th.
        let after_name = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let cpu_ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let status = std::fs::read_to_string(format!("{task}/status")).expect("read the thread's status");
        let wakeups = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("voluntary_ctxt_switches in status");
        ThreadUsage { cpu_ticks, wakeups }
    }

    pub fn since(self, earlier: ThreadUsage) -> ThreadUsage {
        ThreadUsage { cpu_ticks: self.cpu_ticks - earlier.cpu_ticks, wakeups: self.wakeups - earlier.wakeups }
    }
}
