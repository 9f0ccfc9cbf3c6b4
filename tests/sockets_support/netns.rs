//! Real network namespaces for live tests: created with `ip netns`, joined by a veth pair, and removed by Drop
//! guards whatever way the test ends. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Runs a command to completion; a failure carries the command line and its stderr.
pub fn run(program: &str, args: &[&str]) -> io::Result<()> {
    let output = Command::new(program).args(args).output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// A named network namespace (`ip netns add`), deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(name: String) -> io::Result<Netns> {
        run("ip", &["netns", "add", &name])?;
        let netns = Netns { name };
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// `ip <args>` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// The namespace's inode, as `/proc/<pid>/ns/net` of a process inside shows it.
    pub fn inode(&self) -> io::Result<u64> {
        Ok(std::fs::metadata(format!("/run/netns/{}", self.name))?.ino())
    }

    /// Starts `program args...` inside the namespace with piped stdin/stdout. `ip netns exec` execs the program
    /// in place, so the child's pid is the program's.
    pub fn spawn(&self, program: &str, args: &[&str]) -> io::Result<LineChild> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(LineChild { child, stdin, stdout })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(err) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("cleanup: {err}");
        }
    }
}

/// Joins two namespaces with a veth pair and gives each end an address (`a_addr`, `b_addr` in CIDR form). The
/// pair lives only inside the namespaces, so deleting them removes it.
pub fn connect_veth(a: &Netns, b: &Netns, tag: &str, a_addr: &str, b_addr: &str) -> io::Result<()> {
    let (a_if, b_if) = (format!("{tag}a"), format!("{tag}b"));
    run("ip", &["link", "add", &a_if, "netns", &a.name, "type", "veth", "peer", "name", &b_if, "netns", &b.name])?;
    for (ns, ifname, addr) in [(a, &a_if, a_addr), (b, &b_if, b_addr)] {
        ns.ip(&["addr", "add", addr, "dev", ifname])?;
        ns.ip(&["link", "set", ifname, "up"])?;
    }
    Ok(())
}

/// A child process driven line by line over stdin/stdout; killed and reaped on drop.
pub struct LineChild {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl LineChild {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command line and returns the reply line.
    pub fn ask(&mut self, line: &str) -> io::Result<String> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        self.read_line()
    }

    pub fn read_line(&mut self) -> io::Result<String> {
        let mut reply = String::new();
        if self.stdout.read_line(&mut reply)? == 0 {
            return Err(io::Error::other(format!("child {} closed its stdout", self.child.id())));
        }
        Ok(reply.trim().to_string())
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
