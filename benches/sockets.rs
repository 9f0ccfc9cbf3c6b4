//! Socket scanner benchmark: one full scan of a generated procfs tree of 200 namespaces × 500 sockets, each
//! namespace shared by 5 pids. Reports the median CPU time per scan (user + system of this thread, from
//! `CLOCK_THREAD_CPUTIME_ID`) with every namespace read (`ScanMode::EveryNamespace`, the parser's and
//! classifier's cost) and checks each namespace's tables are read once; then the gated scan of the same tree
//! when no namespace opened a connection. Fails when the ungated median exceeds the 50 ms budget. Also compares
//! the row parser with `procfs`, and measures the mesh work (docs/counting.md, "Service meshes") on a tree of
//! Istio sidecar pods, side by side with the same tables when no mesh listener tells the scanner a proxy runs. The kernel's share on a real `/proc` is measured by `benches/sockets_live.sh`.
//!
//! Run: `cargo bench --bench sockets`

use std::time::{Duration, Instant};

use network_mapper::sources::sockets::table::{self, Family};
use network_mapper::sources::sockets::{ProcRoot, ScanMode, Scanner};
use testkit::procfs::{FakeProcShape, generated_clients_per_namespace, write_fake_meshed_proc, write_fake_proc};

const SHAPE: FakeProcShape = FakeProcShape { namespaces: 200, sockets_per_namespace: 500, pids_per_namespace: 5 };
const SCANS: usize = 30;
const BUDGET: Duration = Duration::from_millis(50);

/// CPU time this thread has run, user and system together. (`/proc/thread-self/schedstat` would avoid libc
/// but only advances at scheduler ticks, too coarse for a few-millisecond scan.)
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_fake_proc(dir.path(), SHAPE).expect("write the fake procfs tree");
    let mut scanner =
        Scanner::new(ProcRoot(dir.path().to_path_buf())).expect("scanner").with_mode(ScanMode::EveryNamespace);
    let clients = SHAPE.namespaces * generated_clients_per_namespace(SHAPE);

    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    let first = scanner.scan().expect("scan");
    let (first_cpu, first_wall) = (thread_cpu() - cpu0, wall0.elapsed());
    assert_eq!(first.new_connections.len(), clients);
    assert_eq!(first.pids, 1 + SHAPE.namespaces * SHAPE.pids_per_namespace);
    assert_eq!(first.sockets, SHAPE.namespaces * SHAPE.sockets_per_namespace);
    assert_tables_read_once(&first);

    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    for _ in 0..SCANS {
        let (cpu0, wall0) = (thread_cpu(), Instant::now());
        let report = scanner.scan().expect("scan");
        cpu.push(thread_cpu() - cpu0);
        wall.push(wall0.elapsed());
        assert_eq!((report.new_connections.len(), report.outcomes.already_seen), (0, clients));
        assert_tables_read_once(&report);
    }
    let (cpu, wall) = (median(cpu), median(wall));

    println!(
        "tree: {} namespaces x {} sockets, {} pids per namespace ({} pids)",
        SHAPE.namespaces, SHAPE.sockets_per_namespace, SHAPE.pids_per_namespace, first.pids
    );
    println!("tables read per scan: {} (tcp + tcp6 of each namespace, once)", first.tables_read);
    println!("first scan (reports {clients} connections): cpu {first_cpu:.2?}, wall {first_wall:.2?}");
    println!("steady scan, median of {SCANS}: cpu {cpu:.2?}, wall {wall:.2?} (budget {BUDGET:?} cpu)");
    gated_steady_scan(dir.path(), clients);
    meshed_steady_scan();
    compare_parsers();
    scan_real_proc();
    if cpu > BUDGET || first_cpu > BUDGET {
        eprintln!("over budget: a full scan must take under {BUDGET:?} of CPU");
        std::process::exit(1);
    }
}

/// The exporter's scan of the same tree once every namespace is known and none opened a connection: one
/// `net/snmp` read per namespace, no table.
fn gated_steady_scan(root: &std::path::Path, clients: usize) {
    let mut scanner = Scanner::new(ProcRoot(root.to_path_buf())).expect("scanner");
    assert_eq!(scanner.scan().expect("scan").new_connections.len(), clients);
    let mut cpu = Vec::new();
    for _ in 0..SCANS {
        let cpu0 = thread_cpu();
        let report = scanner.scan().expect("scan");
        cpu.push(thread_cpu() - cpu0);
        assert_eq!((report.namespaces, report.unchanged, report.tables_read), (0, SHAPE.namespaces, 0));
    }
    println!("gated steady scan (no connect anywhere), median of {SCANS}: cpu {:.2?}", median(cpu));
}

/// Every namespace read, every one an Istio sidecar pod: with Envoy's listeners on its ports the scanner builds
/// the intercepted set, tells each client socket whose it is and reads `nf_conntrack`; on other ports the same
/// tables take the plain path. The difference is the mesh work, per scan and per socket.
fn meshed_steady_scan() {
    let mut medians = Vec::new();
    for listening in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        write_fake_meshed_proc(dir.path(), SHAPE, listening).expect("write the meshed tree");
        let mut scanner =
            Scanner::new(ProcRoot(dir.path().to_path_buf())).expect("scanner").with_mode(ScanMode::EveryNamespace);
        let first = scanner.scan().expect("scan");
        // Per namespace: 125 intercepted application sockets and 125 Envoy upstreams.
        assert_eq!(first.new_connections.len(), SHAPE.namespaces * SHAPE.sockets_per_namespace / 2);
        assert_eq!(first.conntrack_read, if listening { SHAPE.namespaces } else { 0 });
        let mut cpu = Vec::new();
        for _ in 0..SCANS {
            let cpu0 = thread_cpu();
            let report = scanner.scan().expect("scan");
            cpu.push(thread_cpu() - cpu0);
            assert!(report.new_connections.is_empty());
        }
        medians.push(median(cpu));
    }
    let sockets = (SHAPE.namespaces * SHAPE.sockets_per_namespace) as u32;
    let extra = medians[1].saturating_sub(medians[0]);
    println!(
        "sidecar tree, every namespace read, median of {SCANS}: cpu {:.2?} without mesh listeners, {:.2?} with \
         (intercepted set, sightings, nf_conntrack): +{extra:.2?} per scan, +{:.0?} per socket",
        medians[0],
        medians[1],
        extra / sockets
    );
}

/// For scale: a scan of this machine's own `/proc`, where reading a table walks the kernel's TCP hash.
fn scan_real_proc() {
    for mode in [ScanMode::Gated, ScanMode::EveryNamespace, ScanMode::EveryPid] {
        let Ok(scanner) = Scanner::new(ProcRoot("/proc".into())) else {
            println!("real /proc: not readable here");
            return;
        };
        let mut scanner = scanner.with_mode(mode);
        scanner.scan().expect("scan /proc");
        let (cpu0, wall0) = (thread_cpu(), Instant::now());
        let report = scanner.scan().expect("scan /proc");
        let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
        println!(
            "real /proc, {mode:?}: {} pids, {} namespaces read, {} unchanged, {} tables: cpu {cpu:.2?}, wall {wall:.2?}",
            report.pids, report.namespaces, report.unchanged, report.tables_read
        );
    }
}

fn assert_tables_read_once(report: &network_mapper::sources::sockets::ScanReport) {
    assert_eq!(report.namespaces, SHAPE.namespaces, "every pod namespace read");
    assert_eq!(report.tables_read, 2 * SHAPE.namespaces, "tcp and tcp6 once per namespace, never per pid");
    assert!(report.skipped_host_netns);
}

/// ns per row for the hand-written parser and for `procfs::net::TcpNetEntries` on the same table.
fn compare_parsers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shape = FakeProcShape { namespaces: 1, sockets_per_namespace: 2000, pids_per_namespace: 1 };
    write_fake_proc(dir.path(), shape).expect("write table");
    let text = std::fs::read(dir.path().join("netns/pod1/tcp")).expect("read table");
    let rows = table::rows(&text, Family::V4).count();
    let si = procfs::ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: cfg!(target_endian = "little"),
    };
    let ours = per_row(rows, || table::rows(&text, Family::V4).filter(Result::is_ok).count());
    let theirs = per_row(rows, || {
        use procfs::FromReadSI;
        let procfs::net::TcpNetEntries(entries) =
            procfs::net::TcpNetEntries::from_read(&text[..], &si).expect("procfs parses the table");
        entries.len()
    });
    println!("row parser: {ours:.0?}/row hand-written, {theirs:.0?}/row procfs ({rows}-row table)");
}

fn per_row(rows: usize, parse: impl Fn() -> usize) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..50 {
        let start = thread_cpu();
        assert_eq!(std::hint::black_box(parse()), rows);
        samples.push((thread_cpu() - start) / rows as u32);
    }
    median(samples)
}
