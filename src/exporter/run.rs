//! Wires the sources, the pipeline and the HTTP server together for the `network-mapper` binary.
//!
//! Each source runs on its own named thread and feeds the shared [`Recorder`]; a source that fails at run time
//! is logged, counted and retried, and never takes `/metrics` down. Shutdown is a future passed in, so tests
//! control it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::registry::Registry;

use crate::UnixMicros;
use crate::exporter::config::Args;
use crate::exporter::metrics::{InventoryReport, KindLabels, Metrics, OutcomeLabels, ReasonLabels};
use crate::exporter::pipeline::{DnsPipeline, Recorder, SharedInventory};
use crate::exporter::server::{self, AppState, Exposition, Readiness};
use crate::resolve::ResolveConfig;
use crate::sources::capture;
use crate::sources::capture::source::{self, Next, PacketSource};
use crate::sources::inventory::{self, Inventory};
use crate::sources::sockets::{self, ProcRoot, Scanner};

/// How often kernel drop counts are read from pcap.
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the capture thread checks whether the inventory has synced.
const READY_POLL: Duration = Duration::from_millis(100);
/// Pause before reopening a capture device that failed at run time.
const CAPTURE_RETRY: Duration = Duration::from_secs(2);

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The inventory could not be loaded.
    #[error(transparent)]
    Inventory(#[from] inventory::Error),
    /// The Kubernetes API client could not be set up.
    #[error(transparent)]
    Kube(#[from] inventory::KubeError),
    /// The capture source could not be opened.
    #[error(transparent)]
    Capture(#[from] capture::Error),
    /// The listen address could not be bound.
    #[error(transparent)]
    Listen(std::io::Error),
    /// The socket scanner could not start (unreadable --procfs-root).
    #[error(transparent)]
    Sockets(#[from] sockets::Error),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The flags do not describe a runnable configuration.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// Whether the user's input is at fault (exit code 2) rather than the environment (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Inventory(e) => e.is_bad_input(),
            Error::Kube(e) => e.is_bad_input(),
            Error::Capture(e) => e.is_bad_input(),
            Error::Listen(_) | Error::Runtime(_) | Error::Sockets(_) => false,
            Error::Usage(_) => true,
        }
    }
}

/// The parts every mode shares: metrics, the inventory and the recorder.
pub struct Core {
    /// The registry served on `/metrics`.
    pub registry: Arc<Registry>,
    /// The self-metrics and edge counter.
    pub metrics: Metrics,
    /// Resolution and counting.
    pub recorder: Recorder,
    /// Ready once the inventory has synced.
    pub readiness: Readiness,
}

impl Core {
    /// Builds the core and loads the inventory.
    pub fn new(args: &Args) -> Result<Core, Error> {
        let (metrics, registry) = Metrics::new(args.limits());
        let readiness = Readiness::default();
        let inventory = load_inventory(args, &metrics, &readiness)?;
        let config = Arc::new(ResolveConfig { cluster_domain: args.cluster_domain(), node_name: args.node_name() });
        tracing::info!(cluster_domain = %config.cluster_domain, node = ?config.node_name, "resolution configured");
        let recorder = Recorder::new(inventory, config, metrics.clone());
        Ok(Core { registry: Arc::new(registry), metrics, recorder, readiness })
    }
}

fn load_inventory(args: &Args, metrics: &Metrics, readiness: &Readiness) -> Result<SharedInventory, Error> {
    let Some(path) = &args.inventory_file else { return watch_inventory(args, metrics, readiness) };
    let inventory: Inventory = inventory::load_file(path)?;
    metrics.inventory_counts(inventory.counts());
    metrics.inventory_synced.get_or_create(&KindLabels { kind: "File" }).set(1);
    readiness.set(true);
    tracing::info!(path = %path.display(), counts = ?inventory.counts(), "inventory loaded from file");
    Ok(Arc::new(RwLock::new(inventory)))
}

/// Without `--inventory-file`: the API watches fill the inventory in the background, on the caller's tokio
/// runtime; `/readyz` turns ready once every kind has synced. An unreachable API is retried, not fatal.
fn watch_inventory(args: &Args, metrics: &Metrics, readiness: &Readiness) -> Result<SharedInventory, Error> {
    if args.print_metrics || tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::Usage("--print-metrics reads the inventory once: pass --inventory-file".into()));
    }
    let status = InventoryReport::watch_status(metrics, readiness.clone());
    let client = inventory::client(inventory::client_config(args.kubeconfig.as_deref())?, &status)?;
    let inventory = Arc::new(RwLock::new(Inventory::new()));
    inventory::spawn_watches(client, inventory.clone(), status);
    tracing::info!("watching the Kubernetes API for the inventory");
    Ok(inventory)
}

/// `--print-metrics`: processes the capture file (and one socket scan), returns the exposition.
pub fn print_metrics(args: &Args, exposition: Exposition) -> Result<String, Error> {
    let core = Core::new(args)?;
    let path = args.pcap_file.as_deref().ok_or_else(|| Error::Usage("--print-metrics needs --pcap-file".into()))?;
    let mut source = source::open_file(path, Some(&args.bpf_filter))?;
    let mut pipeline = DnsPipeline::new(core.recorder.clone());
    drain(source.as_mut(), &mut pipeline, &core.metrics, &AtomicBool::new(false))?;
    if !args.no_socket_scan {
        let mut scanner = Scanner::new(ProcRoot(args.procfs_root.clone()))?;
        scan_once(&mut scanner, &core.recorder);
    }
    Ok(server::encode_metrics(&core.registry, exposition))
}

/// Runs the exporter until `shutdown` completes.
pub async fn run(args: Args, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let core = Core::new(&args)?;
    let listener = server::bind(args.listen_address).await.map_err(Error::Listen)?;
    tracing::info!(address = %args.listen_address, "serving /metrics");
    let stop = Arc::new(AtomicBool::new(false));
    let capture = spawn_capture(&args, &core, stop.clone())?;
    let scanner = spawn_socket_scanner(&args, &core, stop.clone())?;
    let state = AppState { registry: core.registry.clone(), readiness: core.readiness.clone() };
    server::serve(listener, state, shutdown).await;
    stop.store(true, Ordering::Release);
    for thread in std::iter::once(capture).chain(scanner) {
        if thread.join().is_err() {
            tracing::error!("a source thread panicked");
        }
    }
    tracing::info!("shut down");
    Ok(())
}

/// Opens the capture source (so start-up errors surface now) and runs it on a named thread.
fn spawn_capture(args: &Args, core: &Core, stop: Arc<AtomicBool>) -> Result<JoinHandle<()>, Error> {
    let (filter, delivery) = (args.bpf_filter.clone(), args.delivery());
    let (source, name): (Box<dyn PacketSource>, String) = match &args.pcap_file {
        Some(path) => (source::open_file(path, Some(&filter))?, "capture-file".into()),
        None => (source::open_live_with(&args.interface, &filter, delivery)?, format!("capture-{}", args.interface)),
    };
    tracing::info!(source = %source.describe(), delivery = ?delivery, "capturing DNS answers");
    let interface = args.interface.clone();
    let live = args.pcap_file.is_none();
    let pipeline = DnsPipeline::new(core.recorder.clone());
    let metrics = core.metrics.clone();
    let readiness = core.readiness.clone();
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        let mut source = source;
        let Some(backlog) = read_until_ready(source.as_mut(), live, &readiness, &stop) else { return };
        let (mut pipeline, link) = (pipeline, source.link_type());
        for (at, frame) in backlog.frames {
            pipeline.process_frame(link, at, &frame);
        }
        let reopen = move || source::open_live_with(&interface, &filter, delivery);
        capture_loop(source, pipeline, metrics, stop, live.then_some(reopen));
    });
    thread.map_err(|e| Error::Usage(format!("cannot start the capture thread: {e}")))
}

/// Frames a live capture reads ahead while the inventory syncs, before it leaves them in the kernel's ring.
const BACKLOG_BYTES: usize = 8 << 20;

/// Frames read before the inventory synced, to be processed once it has.
#[derive(Debug, Default)]
struct Backlog {
    frames: Vec<(UnixMicros, Box<[u8]>)>,
    bytes: usize,
}

/// Waits until the inventory has synced, like [`wait_until_ready`]; returns `None` if `stop` was set first.
///
/// A live capture is read meanwhile into a backlog of up to [`BACKLOG_BYTES`]: the kernel hands a ring block over at
/// every block timeout that saw a packet, so a trickle of answers left unread fills all the ring's blocks within
/// seconds (`docs/capture.md`). Past the backlog the ring fills, and what overflows it is counted as kernel drops.
/// A file is not read ahead. A read error stops the reading; the capture loop meets it again and handles it.
fn read_until_ready(
    source: &mut dyn PacketSource,
    live: bool,
    readiness: &Readiness,
    stop: &AtomicBool,
) -> Option<Backlog> {
    let mut backlog = Backlog::default();
    let mut reading = live;
    while !readiness.is_ready() {
        if stop.load(Ordering::Acquire) {
            return None;
        }
        if !reading || backlog.bytes >= BACKLOG_BYTES {
            std::thread::sleep(READY_POLL);
            continue;
        }
        // A live source returns Idle after at most `IDLE_WAIT_MS`, so readiness and `stop` are checked as often.
        match source.next() {
            Ok(Next::Packet(packet)) => {
                backlog.bytes += packet.data.len();
                backlog.frames.push((packet.at, packet.data.into()));
            }
            Ok(Next::Idle | Next::End) => {}
            Err(_) => reading = false,
        }
    }
    if !backlog.frames.is_empty() {
        tracing::info!(frames = backlog.frames.len(), bytes = backlog.bytes, "processing frames read while syncing");
    }
    Some(backlog)
}

/// Reads the source until it ends or `stop` is set. A live device that fails is reopened after a pause.
fn capture_loop(
    mut source: Box<dyn PacketSource>,
    mut pipeline: DnsPipeline,
    metrics: Metrics,
    stop: Arc<AtomicBool>,
    reopen: Option<impl Fn() -> Result<Box<dyn PacketSource>, capture::Error>>,
) {
    loop {
        match drain(source.as_mut(), &mut pipeline, &metrics, &stop) {
            Ok(()) => {
                tracing::info!(source = %source.describe(), "capture source finished");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "capture failed; retrying"),
        }
        let Some(reopen) = &reopen else { return };
        loop {
            if sleep_unless_stopped(&stop, CAPTURE_RETRY) {
                return;
            }
            match reopen() {
                Ok(s) => break source = s,
                Err(e) => {
                    metrics.capture_error(&e);
                    tracing::warn!(error = %e, "capture reopen failed; retrying");
                }
            }
        }
    }
}

/// Feeds every packet of `source` to the pipeline until the source ends (`Ok`) or fails (`Err`, counted).
fn drain(
    source: &mut dyn PacketSource,
    pipeline: &mut DnsPipeline,
    metrics: &Metrics,
    stop: &AtomicBool,
) -> Result<(), capture::Error> {
    let link = source.link_type();
    let mut drops = DropTracker::default();
    let mut last_stats = Instant::now();
    while !stop.load(Ordering::Acquire) {
        match source.next() {
            Ok(Next::Packet(packet)) => pipeline.process_frame(link, packet.at, packet.data),
            Ok(Next::Idle) => {}
            Ok(Next::End) => return Ok(()),
            Err(e) => {
                metrics.capture_error(&e);
                return Err(e);
            }
        }
        if last_stats.elapsed() >= STATS_INTERVAL {
            last_stats = Instant::now();
            drops.update(source, metrics);
        }
    }
    drops.update(source, metrics);
    Ok(())
}

/// Turns pcap's cumulative drop count into counter increments.
#[derive(Default)]
struct DropTracker {
    last_dropped: Option<u64>,
}

impl DropTracker {
    fn update(&mut self, source: &mut dyn PacketSource, metrics: &Metrics) {
        let Some(stats) = source.kernel_stats() else { return };
        let previous = self.last_dropped.replace(stats.dropped).unwrap_or(0);
        metrics.capture_kernel_drops.inc_by(stats.dropped.saturating_sub(previous));
    }
}

/// Starts the socket scanner on a named thread, unless `--no-socket-scan`. An unreadable root fails now.
fn spawn_socket_scanner(args: &Args, core: &Core, stop: Arc<AtomicBool>) -> Result<Option<JoinHandle<()>>, Error> {
    if args.no_socket_scan {
        return Ok(None);
    }
    let mut scanner = Scanner::new(ProcRoot(args.procfs_root.clone()))?;
    tracing::info!(root = %args.procfs_root.display(), interval = ?args.scan_interval, "scanning TCP sockets");
    let (recorder, interval, readiness) = (core.recorder.clone(), args.scan_interval, core.readiness.clone());
    let thread = std::thread::Builder::new().name("socket-scan".into()).spawn(move || {
        // A connection is reported once, at the first scan that sees it: scanned against an inventory that has
        // not synced yet, a connection opened before start-up would be counted unresolved and then never again.
        if !wait_until_ready(&readiness, &stop) {
            return;
        }
        loop {
            scan_once(&mut scanner, &recorder);
            if sleep_unless_stopped(&stop, interval) {
                return;
            }
        }
    });
    thread.map(Some).map_err(|e| Error::Usage(format!("cannot start the socket scan thread: {e}")))
}

/// One full scan: new client-side connections are resolved and counted; the rest feeds the self-metrics.
/// A failed scan (the root became unreadable) is logged and counted, and the next one tries again.
fn scan_once(scanner: &mut Scanner, recorder: &Recorder) {
    let metrics = recorder.metrics();
    let started = Instant::now();
    let report = match scanner.scan() {
        Ok(report) => report,
        Err(e) => {
            metrics.socket_scans.get_or_create(&OutcomeLabels { outcome: "error" }).inc();
            tracing::warn!(error = %e, "socket scan failed");
            return;
        }
    };
    let at = now_micros();
    for conn in &report.new_connections {
        let counted = recorder.connection(conn.local.ip(), conn.remote.ip(), at);
        metrics.socket_connections.get_or_create(&OutcomeLabels { outcome: counted.metric_label() }).inc();
    }
    // "client" sockets are the new connections just counted by resolution outcome above.
    for (outcome, n) in report.outcomes.by_label().into_iter().filter(|(o, _)| *o != "client") {
        metrics.socket_connections.get_or_create(&OutcomeLabels { outcome }).inc_by(n as u64);
    }
    let skipped = [("vanished", report.vanished), ("unreadable", report.unreadable)];
    for (reason, n) in skipped {
        metrics.socket_processes_skipped.get_or_create(&ReasonLabels { reason }).inc_by(n as u64);
    }
    metrics.socket_namespaces.set(report.namespaces as i64);
    metrics.socket_scan_sockets.set(report.sockets as i64);
    metrics.socket_scan_duration.observe(started.elapsed().as_secs_f64());
    metrics.socket_scans.get_or_create(&OutcomeLabels { outcome: "ok" }).inc();
    tracing::debug!(
        namespaces = report.namespaces,
        sockets = report.sockets,
        new = report.new_connections.len(),
        "socket scan"
    );
}

/// Waits until the inventory has synced: observations are resolved against a synced inventory only, since a
/// partial one would count them as unresolved. Returns false if `stop` was set first.
fn wait_until_ready(readiness: &Readiness, stop: &AtomicBool) -> bool {
    while !readiness.is_ready() {
        if sleep_unless_stopped(stop, READY_POLL) {
            return false;
        }
    }
    true
}

/// Sleeps in short steps; returns true if `stop` was set meanwhile.
fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) -> bool {
    let step = Duration::from_millis(100);
    let deadline = Instant::now() + total;
    while Instant::now() < deadline {
        if stop.load(Ordering::Acquire) {
            return true;
        }
        std::thread::sleep(step);
    }
    stop.load(Ordering::Acquire)
}

/// The current wall-clock time for observations that carry no timestamp of their own (socket scans).
pub fn now_micros() -> UnixMicros {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::capture::frame::LinkType;
    use crate::sources::capture::source::{KernelStats, Packet};

    /// An endless live source of `frame`s that reports the inventory synced after `ready_after` reads.
    struct Endless {
        frame: Vec<u8>,
        reads: usize,
        ready_after: usize,
        readiness: Readiness,
    }

    impl PacketSource for Endless {
        fn link_type(&self) -> LinkType {
            LinkType::Ethernet
        }

        fn next(&mut self) -> Result<Next<'_>, capture::Error> {
            self.reads += 1;
            if self.reads >= self.ready_after {
                self.readiness.set(true);
            }
            Ok(Next::Packet(Packet { at: self.reads as i64, data: &self.frame }))
        }

        fn kernel_stats(&mut self) -> Option<KernelStats> {
            None
        }

        fn describe(&self) -> String {
            "endless".into()
        }
    }

    fn endless(frame_bytes: usize, ready_after: usize) -> Endless {
        Endless { frame: vec![0; frame_bytes], reads: 0, ready_after, readiness: Readiness::default() }
    }

    #[test]
    fn a_live_capture_is_read_into_a_backlog_while_the_inventory_syncs() {
        let mut source = endless(100, 10);
        let readiness = source.readiness.clone();
        let backlog = read_until_ready(&mut source, true, &readiness, &AtomicBool::new(false)).unwrap();
        let times: Vec<UnixMicros> = backlog.frames.iter().map(|(at, _)| *at).collect();
        assert_eq!(times, (1..=10).collect::<Vec<_>>(), "every frame, in order");
        assert_eq!(backlog.bytes, 1_000);
    }

    /// Reads `source` (live or not) until a thread reports the inventory synced 300 ms later.
    fn read_while_syncing(source: &mut Endless, live: bool) -> Backlog {
        let readiness = Readiness::default();
        let setter = readiness.clone();
        let syncs = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            setter.set(true);
        });
        let backlog = read_until_ready(source, live, &readiness, &AtomicBool::new(false)).unwrap();
        syncs.join().unwrap();
        backlog
    }

    #[test]
    fn the_backlog_stops_at_its_byte_budget_and_a_file_is_not_read_ahead() {
        let mut live = endless(1 << 20, usize::MAX);
        let backlog = read_while_syncing(&mut live, true);
        assert_eq!((backlog.frames.len(), live.reads), (BACKLOG_BYTES >> 20, BACKLOG_BYTES >> 20));

        let mut file = endless(100, usize::MAX);
        let backlog = read_while_syncing(&mut file, false);
        assert_eq!((backlog.frames.len(), file.reads), (0, 0), "a file waits unread");
        let stopped = read_until_ready(&mut file, false, &Readiness::default(), &AtomicBool::new(true));
        assert!(stopped.is_none(), "stop ends the wait");
    }
}
