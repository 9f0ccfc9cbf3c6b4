//! The processes of the lab, each behind a guard that ends it (by its own pid) when dropped: dnsmasq as kube-dns,
//! a small Python "application" per pod (listeners, held connections, DNS over TCP, query bursts), the exporter
//! and Prometheus. All run through `ip netns exec`, which execs in place, so the child's pid is the program's.
//! Children get their own process group: a Ctrl-C in the demo's terminal reaches the demo only, which then tears
//! everything down in order.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use crate::cmd::{Guarded, LineChild};
use crate::netns::command_in;

/// Spawns `program args` in namespace `netns` in a process group of its own, stdout and stderr appended to
/// `log`, no proxy settings inherited, `env` added.
pub fn spawn_logged(
    netns: &str,
    program: &str,
    args: &[String],
    log: &Path,
    env: &[(&str, &str)],
) -> io::Result<Guarded> {
    let log = File::options().create(true).append(true).open(log)?;
    let mut cmd = command_in(netns, program);
    cmd.args(args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).process_group(0);
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    Guarded::spawn(&mut cmd)
}

/// dnsmasq as the kube-dns pod (see [`crate::lab::start_dnsmasq`]).
pub fn start_dnsmasq(netns: &str, listen: &str, records: &[String], log: &Path) -> io::Result<Guarded> {
    crate::lab::start_dnsmasq(netns, &[listen.to_owned()], records, Some(log))
}

/// The application inside a pod: one Python process driven line by line.
const AGENT: &str = r#"
import socket, struct, sys, threading, time
held = []
def accept_forever(listener):
    while True:
        held.append(listener.accept()[0])
def query(qid, name):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", 1, 1)
def answers(reply, qid):
    rid, flags, _, ancount = struct.unpack(">HHHH", reply[:8])
    return ancount if rid == qid and flags & 0xF == 0 else -1
def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("closed")
        data += chunk
    return data
def handle(cmd):
    if cmd[0] == "listen":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", int(cmd[1])))
        listener.listen(64)
        held.append(listener)
        threading.Thread(target=accept_forever, args=(listener,), daemon=True).start()
        return "ok"
    if cmd[0] == "connect":
        conn = socket.create_connection((cmd[1], int(cmd[2])), timeout=5)
        held.append(conn)
        return "ok %d" % conn.getsockname()[1]
    if cmd[0] == "connect-close":
        # A short connection: open, hold for the given milliseconds, close (no socket scan will see it).
        conn = socket.create_connection((cmd[1], int(cmd[2])), timeout=5)
        port = conn.getsockname()[1]
        time.sleep(int(cmd[3]) / 1000.0)
        conn.close()
        return "ok %d" % port
    if cmd[0] == "dns-tcp":
        conn = socket.create_connection((cmd[1], 53), timeout=5)
        q = query(4242, cmd[2])
        conn.sendall(struct.pack(">H", len(q)) + q)
        reply = recv_exact(conn, struct.unpack(">H", recv_exact(conn, 2))[0])
        held.append(conn)  # kept open like a resolver's pooled TCP connection
        return "ok %d" % answers(reply, 4242)
    if cmd[0] == "dns-burst":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(2)
        ok = 0
        pause = float(cmd[4]) if len(cmd) > 4 else 0.0
        for i in range(int(cmd[3])):
            time.sleep(pause)
            qid = i % 65535 + 1
            sock.sendto(query(qid, cmd[2]), (cmd[1], 53))
            if answers(sock.recvfrom(4096)[0], qid) > 0:
                ok += 1
        sock.close()
        return "ok %d" % ok
    return "error unknown command"
for line in sys.stdin:
    try:
        out = handle(line.split())
    except Exception as e:
        out = "error %r" % (e,)
    print(out, flush=True)
"#;

/// A pod's application process.
pub struct Agent {
    child: LineChild,
    pub netns: String,
}

impl Agent {
    pub fn start(netns: &str) -> io::Result<Agent> {
        let mut cmd = command_in(netns, "/usr/bin/python3");
        cmd.args(["-u", "-c", AGENT]).process_group(0);
        Ok(Agent { child: LineChild::spawn(&mut cmd)?, netns: netns.to_owned() })
    }

    /// Sends one command; returns the reply after `ok`, or an error naming the pod and the command.
    pub fn ask(&mut self, command: &str) -> io::Result<String> {
        let reply = self.child.ask(command).map_err(|e| io::Error::other(format!("{}: the agent: {e}", self.netns)))?;
        match reply.strip_prefix("ok") {
            Some(rest) => Ok(rest.trim().to_owned()),
            None => Err(io::Error::other(format!("{}: `{command}` failed: {reply}", self.netns))),
        }
    }
}

/// Resolves `name` with the glibc stub resolver inside `netns` (its resolv.conf: search list, ndots:5), A
/// records only (`ahostsv4` asks no AAAA, so every lookup sends a known number of queries). Returns the
/// addresses found.
pub fn getent_v4(netns: &str, name: &str) -> io::Result<Vec<String>> {
    let out = command_in(netns, "getent").args(["ahostsv4", name]).stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("{netns}: getent ahostsv4 {name} failed ({})", out.status)));
    }
    let mut ips: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    ips.dedup();
    Ok(ips)
}

/// `dig +tcp` inside `netns`: one DNS-over-TCP query for `name` (A) to `server`, no search list; returns the
/// addresses answered.
pub fn dig_tcp(netns: &str, server: &str, name: &str) -> io::Result<Vec<String>> {
    let out = command_in(netns, "dig")
        .args(["+tcp", "+short", "+tries=1", "+time=3", &format!("@{server}"), name, "A"])
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("{netns}: dig +tcp @{server} {name} failed ({})", out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect())
}

/// CPU time and memory of a process, from `/proc/<pid>/stat` and `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub cpu_seconds: f64,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
}

impl Usage {
    pub fn of(pid: u32) -> io::Result<Usage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields overall.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        let fields: Vec<u64> = after.split_whitespace().skip(11).take(2).filter_map(|f| f.parse().ok()).collect();
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib = |key: &str| -> u64 {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_default();
            line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        Ok(Usage {
            cpu_seconds: fields.iter().sum::<u64>() as f64 / ticks,
            rss_kib: kib("VmRSS:"),
            peak_rss_kib: kib("VmHWM:"),
        })
    }
}
