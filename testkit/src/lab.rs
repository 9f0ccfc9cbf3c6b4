//! The DNS lab of the live capture tests: a network namespace joined to the root namespace by a veth pair, and a
//! real dnsmasq serving DNS inside it, all removed by Drop guards even when the test panics. Only link-local
//! (169.254/16) and documentation (2001:db8::/32) addresses are used, so no traffic leaves the machine. Needs
//! [`crate::live::DNS_LAB`].

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::cmd::{Guarded, ok, run, run_quietly};
use crate::netns::{LiveLock, Netns, command_in, remove_leftovers};

pub const DNSMASQ: &str = "/usr/sbin/dnsmasq";
const PREFIX: &str = "nm-test-";

/// dnsmasq in the foreground in namespace `netns`, listening on `listen`, answering only from its command-line
/// `records` (no upstream, no hosts file, no cache: every answer is fresh); output appended to `log`, if given.
pub fn start_dnsmasq(netns: &str, listen: &[String], records: &[String], log: Option<&Path>) -> io::Result<Guarded> {
    let mut cmd = command_in(netns, DNSMASQ);
    cmd.args(["--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--bind-interfaces"]);
    cmd.args(["--port=53", "--pid-file=", "--user=root", "--group=root", "--cache-size=0"]);
    cmd.args(listen.iter().map(|a| format!("--listen-address={a}"))).args(records).stdin(Stdio::null());
    match log {
        Some(path) => {
            let file = std::fs::File::options().create(true).append(true).open(path)?;
            cmd.stdout(file.try_clone()?).stderr(file);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    // A process group of its own: a Ctrl-C in the demo's terminal reaches the demo only, which tears down in order.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Guarded::spawn(&mut cmd)
}

/// A unique small number per lab in this process; with the pid it makes names and subnets unique.
fn next_lab_number() -> u32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed) % 64
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
    pub fn create(netns: &Netns, lab: u32) -> io::Result<VethPair> {
        let pid = std::process::id();
        let (root_if, ns_if) = (format!("nm{pid}r{lab}"), format!("nm{pid}n{lab}"));
        run("ip", &["link", "add", &root_if, "type", "veth", "peer", "name", &ns_if, "netns", &netns.name])?;
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
        pair.configure(netns)?;
        Ok(pair)
    }

    fn configure(&self, ns: &Netns) -> io::Result<()> {
        let (root4, ns4) = (format!("{}/30", self.root_v4), format!("{}/30", self.ns_v4));
        let (root6, ns6) = (format!("{}/64", self.root_v6), format!("{}/64", self.ns_v6));
        run("ip", &["addr", "add", &root4, "dev", &self.root_if])?;
        run("ip", &["-6", "addr", "add", &root6, "dev", &self.root_if, "nodad"])?;
        run("ip", &["link", "set", &self.root_if, "up"])?;
        ns.ip(&["addr", "add", &ns4, "dev", &self.ns_if])?;
        ns.ip(&["-6", "addr", "add", &ns6, "dev", &self.ns_if, "nodad"])?;
        ns.ip(&["link", "set", &self.ns_if, "up"])
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting one end removes both.
        run_quietly("ip", &["link", "del", &self.root_if]);
    }
}

/// A namespace, a veth pair and a dnsmasq that answers. Fields drop in order: dnsmasq, veth, namespace, lock.
pub struct DnsLab {
    pub dnsmasq: Guarded,
    pub veth: VethPair,
    pub netns: Netns,
    _lock: LiveLock,
}

impl DnsLab {
    /// Starts the lab and waits until dnsmasq answers `probe_name` (which `records` must define). Fails the test
    /// with the reason when the machine cannot run it.
    pub fn start(records: &[&str], probe_name: &str) -> DnsLab {
        crate::live::require(crate::live::DNS_LAB);
        let lock = ok(LiveLock::acquire());
        remove_leftovers(PREFIX);
        let lab = next_lab_number();
        let netns = ok(Netns::create(format!("{PREFIX}{}-{lab}", std::process::id())));
        let veth = ok(VethPair::create(&netns, lab));
        let listen = [veth.ns_v4.to_string(), veth.ns_v6.to_string()];
        let records: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        let dnsmasq = ok(start_dnsmasq(&netns.name, &listen, &records, None));
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
        let query = crate::packets::query(1, probe_name, simple_dns::TYPE::A);
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

/// Sends one DNS query over UDP from `bind` and returns (client address used, response bytes).
pub fn udp_exchange(
    bind: IpAddr,
    server: SocketAddr,
    query: &[u8],
    timeout: Duration,
) -> io::Result<(SocketAddr, Vec<u8>)> {
    let socket = UdpSocket::bind(SocketAddr::new(bind, 0))?;
    socket.set_read_timeout(Some(timeout))?;
    socket.send_to(query, server)?;
    let mut buf = vec![0; 65_535];
    let (n, _) = socket.recv_from(&mut buf)?;
    buf.truncate(n);
    Ok((socket.local_addr()?, buf))
}

/// Sends one DNS query over TCP (length-prefixed) and returns (client address used, response bytes).
pub fn tcp_exchange(server: SocketAddr, query: &[u8], timeout: Duration) -> io::Result<(SocketAddr, Vec<u8>)> {
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
