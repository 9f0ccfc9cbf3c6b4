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
        let recorder = Recorder::new(inventory, config, metrics.clone()).with_scan_interval(args.scan_interval);
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
    let mut source = source::open_file(path, Some(&args.capture_filter()))?;
    let mut pipeline = pipeline_for(args, &core.recorder);
    drain(source.as_mut(), &mut pipeline, &core.metrics, &AtomicBool::new(false))?;
    if !args.no_socket_scan {
        let mut scanner = Scanner::new(ProcRoot(args.procfs_root.clone()))?;
        scan_once(&mut scanner, &core.recorder);
    }
    // A file's inventory will not change: what still waits for its client pod is counted now.
    core.recorder.retry_pending(now_micros(), true);
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
    let filter = args.capture_filter();
    let (source, name): (Box<dyn PacketSource>, String) = match &args.pcap_file {
        Some(path) => (source::open_file(path, Some(&filter))?, "capture-file".into()),
        None => (source::open_live(&args.interface, &filter)?, format!("capture-{}", args.interface)),
    };
    tracing::info!(source = %source.describe(), filter = %filter, syns = !args.no_syn_capture, "capturing");
    let interface = args.interface.clone();
    let live = args.pcap_file.is_none();
    let pipeline = pipeline_for(args, &core.recorder);
    let metrics = core.metrics.clone();
    let readiness = core.readiness.clone();
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        // A live capture queues in the kernel buffer meanwhile (overflow shows as kernel drops).
        if !wait_until_ready(&readiness, &stop) {
            return;
        }
        let reopen = move || source::open_live(&interface, &filter);
        capture_loop(source, pipeline, metrics, stop, live.then_some(reopen));
    });
    thread.map_err(|e| Error::Usage(format!("cannot start the capture thread: {e}")))
}

fn pipeline_for(args: &Args, recorder: &Recorder) -> DnsPipeline {
    let pipeline = DnsPipeline::new(recorder.clone());
    if args.no_syn_capture { pipeline.without_syns() } else { pipeline }
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
                // Connections from the file that wait for their client pod still get their retries.
                while pipeline.recorder().pending() > 0 && !sleep_unless_stopped(&stop, STATS_INTERVAL) {
                    pipeline.recorder().retry_pending(now_micros(), false);
                }
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
            pipeline.recorder().retry_pending(now_micros(), false);
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
        recorder.socket(conn.local, conn.remote, at);
    }
    recorder.retry_pending(at, false);
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
