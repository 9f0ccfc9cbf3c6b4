//! Live socket-scan benchmark on the real `/proc` (needs root): creates 100 network namespaces, each with a
//! process holding 200 pooled TCP connections (loopback, so the scan classifies and skips them, but the kernel
//! walks its established hash for every table read all the same) and 4 more processes (5 pids per namespace).
//! Then it scans the whole host with the three scan modes side by side in one run: the exporter's gated scan,
//! every namespace read once (the scanner before the gate), and every pid read (as Otterize's scanner does):
//! - quiet: no namespace opens a connection between scans;
//! - churn: before each scan, 10% of the namespaces open (and close) one connection.
//!
//! It does so twice, with the same lab built two ways:
//! - `shared`: the kernel's default, every namespace's sockets in the host-wide established hash, so every table
//!   read walks all of it (40,000 sockets here);
//! - `own`: the namespaces created while `net.ipv4.tcp_child_ehash_entries` is set (Linux ≥ 6.1), so each has a
//!   hash of its own and a table read walks only what the namespace holds (`docs/performance.md`).
//!
//! It reports this thread's CPU (user + system, `CLOCK_THREAD_CPUTIME_ID`, so the kernel's hash walks count)
//! per scan, per minute and as a share of one core at `--scan-interval` 5 s and 1 s, and exits non-zero when the
//! gated scan misses its budget at 5 s: quiet ≤ 0.5% of a core in both labs; churn ≤ 2% with hashes of their
//! own; with the shared hash, whose per-read cost the kernel sets, churn must read a table of every connecting
//! namespace (one each is the fewest that finds every connection; a process outside the lab may add one).
//!
//! Run: `sudo cargo bench --bench sockets_live` (namespaces are named `nmb<pid>-<lab>-<n>` and removed at exit,
//! and the sysctl is put back). `SOCKETS_LIVE_NAMESPACES`, `SOCKETS_LIVE_SCANS` and `SOCKETS_LIVE_CHILD_EHASH`
//! override 100, 10 and 16384 (the `own` hash's buckets; 0 skips that lab).

use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use network_mapper::sources::sockets::{ProcRoot, ScanMode, Scanner};
use testkit::cmd;
use testkit::netns::{Netns, in_netns, remove_leftovers};

const CONNECTIONS: usize = 200;
const EXTRA_PIDS: usize = 4;
const PORT: u16 = 9000;
const CHILD_EHASH: &str = "/proc/sys/net/ipv4/tcp_child_ehash_entries";

/// Where a lab's namespaces keep their TCP sockets.
#[derive(Clone, Copy, Debug)]
enum Hash {
    /// The host-wide established hash (the kernel's default).
    Shared,
    /// A hash of their own with this many buckets (`net.ipv4.tcp_child_ehash_entries` while they are created).
    Own(u32),
}

impl Hash {
    fn label(self) -> &'static str {
        match self {
            Hash::Shared => "shared",
            Hash::Own(_) => "own",
        }
    }
}

/// Sets `tcp_child_ehash_entries` and puts the old value back on drop, even after a panic.
struct ChildEhash(String);

impl ChildEhash {
    fn set(entries: u32) -> ChildEhash {
        let old = std::fs::read_to_string(CHILD_EHASH).expect("read tcp_child_ehash_entries (Linux >= 6.1)");
        std::fs::write(CHILD_EHASH, entries.to_string()).expect("set tcp_child_ehash_entries");
        ChildEhash(old.trim().to_string())
    }
}

impl Drop for ChildEhash {
    fn drop(&mut self) {
        let _ = std::fs::write(CHILD_EHASH, &self.0);
    }
}

/// Holds the namespaces (the kit's guards delete them) and their processes, ended first; all of it goes on drop,
/// even after a panic, and a killed run's leftovers go at the next start ([`LAB_PREFIX`]).
struct Lab {
    children: Vec<Child>,
    namespaces: Vec<Netns>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Lab {
    fn names(&self) -> impl Iterator<Item = &str> {
        self.namespaces.iter().map(|ns| ns.name.as_str())
    }
}

/// The prefix of this benchmark's namespaces (`<prefix><pid>-…`, see `testkit::netns`).
const LAB_PREFIX: &str = "nmb";

const POOL: &str = "import socket,sys,time\n\
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
l.bind(('127.0.0.1', 9000)); l.listen(1024)\n\
n=int(sys.argv[1]); c=[socket.create_connection(('127.0.0.1', 9000)) for _ in range(n)]\n\
s=[l.accept()[0] for _ in range(n)]\n\
print('ready', flush=True); time.sleep(1e6)\n";

fn build(namespaces: usize, hash: Hash) -> Lab {
    let mut lab = Lab { children: Vec::new(), namespaces: Vec::new() };
    let has_setting = std::path::Path::new(CHILD_EHASH).exists();
    for i in 0..namespaces {
        let name = format!("{LAB_PREFIX}{}-{}-{i}", std::process::id(), hash.label());
        let netns = {
            // The hash is chosen when the namespace is created, from the creator's namespace: set only meanwhile
            // (to 0 for the shared lab, in case the host is tuned already).
            let _sysctl = match hash {
                Hash::Shared => has_setting.then(|| ChildEhash::set(0)),
                Hash::Own(entries) => Some(ChildEhash::set(entries)),
            };
            cmd::ok(Netns::create(&name))
        };
        if has_setting {
            let out = cmd::ok(cmd::run("ip", &["netns", "exec", &name, "cat", "/proc/sys/net/ipv4/tcp_ehash_entries"]));
            let buckets = String::from_utf8_lossy(&out.stdout).trim().to_string();
            // The kernel shows a shared hash as the negative of the host's size, and rounds its own up to a power
            // of two.
            match hash {
                Hash::Shared => assert!(buckets.starts_with('-'), "{name} should share the host's hash: {buckets}"),
                Hash::Own(entries) => {
                    assert_eq!(buckets.parse::<u32>().ok(), Some(entries.next_power_of_two()), "{name}'s own hash");
                }
            }
        }
        let mut pool = netns
            .command("python3")
            .args(["-c", POOL, &CONNECTIONS.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the pool process");
        let mut ready = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(pool.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        assert_eq!(ready.trim(), "ready", "pool in {name}");
        lab.children.push(pool);
        for _ in 0..EXTRA_PIDS {
            lab.children.push(netns.command("sleep").arg("1000000").spawn().unwrap());
        }
        lab.namespaces.push(netns);
    }
    lab
}

/// One `connect()` in each of the given namespaces, from a thread that enters it.
fn churn(names: &[String]) {
    for name in names {
        cmd::ok(in_netns(name, || drop(TcpStream::connect(("127.0.0.1", PORT)).expect("connect"))));
    }
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
    remove_leftovers(LAB_PREFIX);
    let env = |key, default| std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (namespaces, scans) = (env("SOCKETS_LIVE_NAMESPACES", 100), env("SOCKETS_LIVE_SCANS", 10));
    let mut hashes = vec![Hash::Shared];
    match env("SOCKETS_LIVE_CHILD_EHASH", 16384_usize) as u32 {
        0 => {}
        _ if !std::path::Path::new(CHILD_EHASH).exists() => {
            println!("no {CHILD_EHASH} (Linux before 6.1): only the shared-hash lab runs");
        }
        entries => hashes.push(Hash::Own(entries)),
    }
    println!(
        "{namespaces} namespaces x {CONNECTIONS} pooled connections, {} pids each; churn: {} namespaces connect per interval",
        1 + EXTRA_PIDS,
        namespaces.div_ceil(10)
    );
    println!(
        "| hash | case | mode | namespaces read / unchanged | tables read | CPU per scan | at 5 s: per minute, % core | at 1 s: per minute, % core |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut failed = false;
    for hash in hashes {
        let lab = build(namespaces, hash);
        let churning: Vec<String> = lab.names().step_by(10).map(str::to_owned).collect();
        let hash_label = match hash {
            Hash::Shared => "shared".to_string(),
            Hash::Own(entries) => format!("own, {} buckets", entries.next_power_of_two()),
        };
        for (case, churning) in [("quiet", &[][..]), ("churn 10%", &churning[..])] {
            for mode in [ScanMode::Gated, ScanMode::EveryNamespace, ScanMode::EveryPid] {
                let (cpu, read, unchanged, tables) = measure(mode, scans, churning);
                let ms = cpu.as_secs_f64() * 1e3;
                let (pct5, pct1) = (ms / 5_000.0 * 100.0, ms / 1_000.0 * 100.0);
                println!(
                    "| {hash_label} | {case} | {mode:?} | {read} / {unchanged} | {tables} | {ms:.2} ms | {:.0} ms, {pct5:.2}% | {:.0} ms, {pct1:.2}% |",
                    ms * 12.0,
                    ms * 60.0
                );
                if mode != ScanMode::Gated {
                    continue;
                }
                // Every connecting namespace's tcp table (none of them has an IPv6 socket). The scan covers the whole
                // host, so a process outside the lab that connects meanwhile adds a read: more is noted, fewer fails.
                let budget = match (hash, churning.is_empty()) {
                    (_, true) => Some(0.5),
                    (Hash::Own(_), false) => Some(2.0),
                    (Hash::Shared, false) => None,
                };
                if tables < churning.len() {
                    eprintln!("gated scan, {hash_label}, {case}: read {tables} tables, {} connected", churning.len());
                    failed = true;
                } else if tables > churning.len() {
                    eprintln!(
                        "note: {hash_label}, {case}: {tables} tables read, {} in the lab (others connected)",
                        churning.len()
                    );
                }
                if let Some(budget) = budget.filter(|budget| pct5 > *budget) {
                    eprintln!(
                        "over budget: gated scan, {hash_label}, {case}: {pct5:.2}% of a core at 5 s (budget {budget}%)"
                    );
                    failed = true;
                }
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
