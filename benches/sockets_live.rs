//! Live socket-scan benchmark on the real `/proc` (needs root): creates 100 network namespaces, each with a
//! process holding 200 pooled TCP connections (loopback, so the scan classifies and skips them, but the kernel
//! walks its established hash for every table read all the same) and 4 more processes (5 pids per namespace).
//! Then it scans the whole host with the three scan modes side by side in one run: the exporter's gated scan,
//! every namespace read once (the scanner before the gate), and every pid read (as Otterize's scanner does):
//! - quiet: no namespace opens a connection between scans;
//! - churn: before each scan, 10% of the namespaces open (and close) one connection.
//!
//! It reports this thread's CPU (user + system, `CLOCK_THREAD_CPUTIME_ID`, so the kernel's hash walks count)
//! per scan, per minute and as a share of one core at `--scan-interval` 5 s and 1 s, and exits non-zero when the
//! gated scan misses its budget at 5 s (quiet ≤ 0.5% of a core, churn ≤ 2%).
//!
//! Run: `sudo cargo bench --bench sockets_live` (namespaces are named `nmb<pid>-<n>` and removed at exit).
//! `SOCKETS_LIVE_NAMESPACES` and `SOCKETS_LIVE_SCANS` override 100 and 10.

use std::fs::File;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use network_mapper::sources::sockets::{ProcRoot, ScanMode, Scanner};

const CONNECTIONS: usize = 200;
const EXTRA_PIDS: usize = 4;
const PORT: u16 = 9000;

/// Holds the namespaces and their processes; removes them on drop, even after a panic.
struct Lab {
    names: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "delete", name]).status();
        }
    }
}

fn run(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().expect("run a command");
    assert!(status.success(), "{args:?} failed");
}

const POOL: &str = "import socket,sys,time\n\
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
l.bind(('127.0.0.1', 9000)); l.listen(1024)\n\
n=int(sys.argv[1]); c=[socket.create_connection(('127.0.0.1', 9000)) for _ in range(n)]\n\
s=[l.accept()[0] for _ in range(n)]\n\
print('ready', flush=True); time.sleep(1e6)\n";

fn build(namespaces: usize) -> Lab {
    let mut lab = Lab { names: Vec::new(), children: Vec::new() };
    for i in 0..namespaces {
        let name = format!("nmb{}-{i}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        lab.names.push(name.clone());
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        let mut pool = Command::new("ip")
            .args(["netns", "exec", &name, "python3", "-c", POOL, &CONNECTIONS.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the pool process");
        let mut ready = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(pool.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        assert_eq!(ready.trim(), "ready", "pool in {name}");
        lab.children.push(pool);
        for _ in 0..EXTRA_PIDS {
            lab.children.push(Command::new("ip").args(["netns", "exec", &name, "sleep", "1000000"]).spawn().unwrap());
        }
    }
    lab
}

/// One `connect()` in each of the given namespaces, from a helper thread that enters them.
fn churn(names: &[String]) {
    let names = names.to_vec();
    std::thread::spawn(move || {
        for name in names {
            let ns = File::open(format!("/run/netns/{name}")).expect("open the namespace");
            // SAFETY: setns on a valid namespace fd; it changes only this helper thread's network namespace.
            assert_eq!(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns {name}");
            drop(TcpStream::connect(("127.0.0.1", PORT)).expect("connect"));
        }
    })
    .join()
    .unwrap();
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) }, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Mean CPU per scan over `scans` scans after a first one; `churning` namespaces connect before each.
fn measure(mode: ScanMode, scans: usize, churning: &[String]) -> (Duration, usize, usize, usize) {
    let mut scanner = Scanner::new(ProcRoot("/proc".into())).expect("scan /proc").with_mode(mode);
    scanner.scan().expect("first scan");
    let (mut total, mut read, mut unchanged, mut tables) = (Duration::ZERO, 0, 0, 0);
    for _ in 0..scans {
        churn(churning);
        let start = thread_cpu();
        let report = scanner.scan().expect("scan");
        total += thread_cpu() - start;
        (read, unchanged, tables) = (report.namespaces, report.unchanged, report.tables_read);
    }
    (total / scans as u32, read, unchanged, tables)
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("sockets_live: needs root (creates network namespaces); run with sudo");
        std::process::exit(2);
    }
    let env = |key, default| std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (namespaces, scans) = (env("SOCKETS_LIVE_NAMESPACES", 100), env("SOCKETS_LIVE_SCANS", 10));
    let lab = build(namespaces);
    let churning: Vec<String> = lab.names.iter().step_by(10).cloned().collect();
    println!(
        "{namespaces} namespaces x {CONNECTIONS} pooled connections, {} pids each; churn: {} namespaces connect per interval",
        1 + EXTRA_PIDS,
        churning.len()
    );
    println!(
        "| case | mode | namespaces read / unchanged | tables read | CPU per scan | at 5 s: per minute, % core | at 1 s: per minute, % core |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut failed = false;
    for (case, churning, budget) in [("quiet", &[][..], 0.5), ("churn 10%", &churning[..], 2.0)] {
        for mode in [ScanMode::Gated, ScanMode::EveryNamespace, ScanMode::EveryPid] {
            let (cpu, read, unchanged, tables) = measure(mode, scans, churning);
            let ms = cpu.as_secs_f64() * 1e3;
            let (pct5, pct1) = (ms / 5_000.0 * 100.0, ms / 1_000.0 * 100.0);
            println!(
                "| {case} | {mode:?} | {read} / {unchanged} | {tables} | {ms:.2} ms | {:.0} ms, {pct5:.2}% | {:.0} ms, {pct1:.2}% |",
                ms * 12.0,
                ms * 60.0
            );
            if mode == ScanMode::Gated && pct5 > budget {
                eprintln!("over budget: gated scan, {case}: {pct5:.2}% of a core at 5 s (budget {budget}%)");
                failed = true;
            }
        }
    }
    drop(lab);
    if failed {
        std::process::exit(1);
    }
}
