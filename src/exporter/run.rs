//! Wires the sources, the pipeline and the HTTP server together for the `network-mapper` binary.
//!
//! [`Sources`] bundles everything read from the outside world; [`Sources::open`] builds it from the flags, and
//! tests build it from fakes (an in-memory packet source, a fixture `/proc` tree, a ready inventory) to run the
//! whole exporter in-process. Each source runs on its own named thread (the API watches on the runtime) and
//! feeds the shared [`Recorder`]; a source that fails at run time is logged, counted, shown by
//! `network_mapper_source_up`, and retried, and never takes `/metrics` down. Shutdown is a future passed in.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::UnixMicros;
use crate::exporter::config::Args;
use crate::exporter::metrics::{
    Enabled, InventoryReport, Limits, Metrics, Outcome, ReasonLabel, ScanOutcome, SkipReason, SocketOutcome, SourceName,
};
use crate::exporter::node_filter::{NodeFilter, NodeFilterSpec};
use crate::exporter::pipeline::{DnsPipeline, Recorder};
use crate::exporter::server::{self, AppState, Exposition, Readiness};
use crate::exporter::web_config::WebConfig;
use crate::resolve::ResolveConfig;
use crate::sources::capture;
use crate::sources::capture::source::{self, Next, PacketSource, Waker};
use crate::sources::inventory::{self, Inventory};
use crate::sources::sockets::netns::PodHash;
use crate::sources::sockets::{self, ProcRoot, Scanner};

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
    /// The web configuration file (`--web-config-file`) cannot be used.
    #[error(transparent)]
    WebConfig(#[from] crate::exporter::web_config::Error),
    /// A source's thread could not start (the system's thread or memory limits).
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
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
            Error::Listen(_) | Error::Runtime(_) | Error::Sockets(_) | Error::Thread(..) => false,
            Error::Usage(_) | Error::WebConfig(_) => true,
        }
    }
}

/// How often kernel drop counts are read from pcap (and the capture reports itself alive).
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// Frames between two reads of the clock in a busy capture: the statistics above are then at most 64 frames late.
const CLOCK_EVERY: u32 = 64;
/// How often the capture thread checks whether the inventory has synced.
const READY_POLL: Duration = Duration::from_millis(100);
/// Pause before reopening a capture device that failed at run time.
const CAPTURE_RETRY: Duration = Duration::from_secs(2);

/// Reopens a live capture device after a run-time failure.
pub type Reopen = Box<dyn Fn() -> Result<Box<dyn PacketSource>, capture::Error> + Send>;

/// The packet source: a device or a file, opened.
pub struct Packets {
    /// The opened source.
    pub source: Box<dyn PacketSource>,
    /// How to reopen it after a failure; `None` for files (a failed file is not retried).
    pub reopen: Option<Reopen>,
    /// The capture thread's name.
    pub thread_name: String,
    /// Whether client SYNs are counted (`--no-syn-capture` turns it off).
    pub syns: bool,
    /// The kernel filter follows this node's pods (a live device with `--node-name` and the default filter).
    pub node_filter: Option<NodeFilterSpec>,
}

/// The socket scanner and its period.
pub struct SocketScan {
    /// The scanner over a `/proc` tree.
    pub scanner: Scanner,
    /// Time between scans.
    pub interval: Duration,
}

/// Where the inventory comes from.
pub enum InventorySource {
    /// Loaded already (an inventory file, or a test's objects): ready at once.
    Loaded(Box<Inventory>),
    /// Watched (and fetched) from the Kubernetes API with this client configuration and plan: ready once every
    /// kind the plan needs has synced.
    Api(Box<::kube::Config>, inventory::Plan),
}

/// Everything the exporter reads from the outside world.
pub struct Sources {
    /// DNS answers from a capture; `None` runs without capture.
    pub packets: Option<Packets>,
    /// Client-side connections from `/proc`; `None` with `--no-socket-scan`.
    pub sockets: Option<SocketScan>,
    /// Kubernetes objects.
    pub inventory: InventorySource,
}

impl Sources {
    /// Opens the sources the flags name, so that start-up errors (no permission to capture, an unreadable file
    /// or `/proc`, a bad kubeconfig) surface now, before anything is served.
    pub fn open(args: &Args) -> Result<Sources, Error> {
        let inventory = match &args.inventory_file {
            Some(path) => {
                let inventory = inventory::load_file(path)?;
                tracing::info!(path = %path.display(), counts = ?inventory.counts(), "inventory loaded from file");
                InventorySource::Loaded(Box::new(inventory))
            }
            None => {
                let config = inventory::client_config(args.kubeconfig.as_deref())?;
                InventorySource::Api(Box::new(config), args.inventory_plan())
            }
        };
        let (filter, syns) = (args.capture_filter(), !args.no_syn_capture);
        tracing::info!(filter = %filter, syns, "capture filter");
        let packets = match &args.pcap_file {
            Some(path) => Packets {
                source: source::open_file(path, Some(&filter))?,
                reopen: None,
                thread_name: "capture-file".into(),
                syns,
                node_filter: None,
            },
            None => {
                let (interface, delivery) = (args.interface.clone(), args.delivery());
                // A loaded inventory knows the node's pods already: the capture opens filtered to them.
                let known = match (&inventory, args.node_filter()) {
                    (InventorySource::Loaded(loaded), Some(spec)) => spec.filter(loaded),
                    _ => None,
                };
                let filter = known.unwrap_or_else(|| args.live_capture_filter());
                tracing::info!(delivery = ?delivery, filter = %filter, "live capture");
                Packets {
                    source: source::open_live_with(&interface, &filter, delivery)?,
                    thread_name: format!("capture-{interface}"),
                    reopen: Some(Box::new(move || source::open_live_with(&interface, &filter, delivery))),
                    syns,
                    node_filter: args.node_filter(),
                }
            }
        };
        let sockets = if args.no_socket_scan {
            None
        } else {
            let scanner = Scanner::new(ProcRoot(args.procfs_root.clone()))?;
            Some(SocketScan { scanner, interval: args.scan_interval })
        };
        Ok(Sources { packets: Some(packets), sockets, inventory })
    }

    fn enabled(&self) -> Enabled {
        Enabled {
            capture: self.packets.is_some(),
            sockets: self.sockets.is_some(),
            api_inventory: matches!(self.inventory, InventorySource::Api(..)),
        }
    }
}

/// How the exporter resolves and counts, and where it serves.
pub struct Settings {
    /// The bound `/metrics` listener.
    pub listener: TcpListener,
    /// Cluster domain and node name.
    pub resolve: ResolveConfig,
    /// Cardinality caps.
    pub limits: Limits,
    /// TLS and basic auth of the endpoints ([`WebConfig::plain`] for neither).
    pub web: WebConfig,
}

/// The parts every mode shares: metrics, the inventory and the recorder.
struct Core {
    registry: Arc<Registry>,
    metrics: Metrics,
    recorder: Recorder,
    readiness: Readiness,
}

impl Core {
    /// Builds the metrics and the recorder, and starts the inventory (a loaded one is ready at once; the API
    /// watches fill theirs on the caller's tokio runtime, and an unreachable API is retried, not fatal).
    fn new(
        inventory: InventorySource,
        resolve: ResolveConfig,
        limits: Limits,
        enabled: Enabled,
        scan_interval: Option<Duration>,
    ) -> Result<Core, Error> {
        let (metrics, registry) = Metrics::new(limits, enabled);
        let readiness = Readiness::default();
        let mut fetches = None;
        let inventory = match inventory {
            InventorySource::Loaded(inventory) => {
                metrics.inventory_file_loaded(inventory.counts());
                readiness.set(true);
                Arc::new(RwLock::new(*inventory))
            }
            InventorySource::Api(config, plan) => {
                let status = InventoryReport::watch_status(&metrics, readiness.clone());
                let client = inventory::client(*config, &status)?;
                let inventory = Arc::new(RwLock::new(Inventory::new()));
                let started = inventory::spawn(client, inventory.clone(), status, &plan);
                tracing::info!(kinds = ?plan.kinds(), fetches = plan.fetches(), "watching the Kubernetes API for the inventory");
                fetches = started.fetches;
                inventory
            }
        };
        let config = Arc::new(resolve);
        tracing::info!(cluster_domain = %config.cluster_domain, node = ?config.node_name, "resolution configured");
        // A connection is remembered long enough for the next scan to find it (docs/counting.md).
        let mut recorder = Recorder::new(inventory, config, metrics.clone());
        if let Some(interval) = scan_interval {
            recorder = recorder.with_scan_interval(interval);
        }
        if let Some(queue) = fetches {
            recorder = recorder.with_fetches(queue);
        }
        Ok(Core { registry: Arc::new(registry), metrics, recorder, readiness })
    }
}

/// `--print-metrics`: processes the capture file (and one socket scan), returns the exposition.
pub fn print_metrics(args: &Args, exposition: Exposition) -> Result<String, Error> {
    if args.pcap_file.is_none() {
        return Err(Error::Usage("--print-metrics needs --pcap-file".into()));
    }
    if args.inventory_file.is_none() {
        return Err(Error::Usage("--print-metrics reads the inventory once: pass --inventory-file".into()));
    }
    let sources = Sources::open(args)?;
    let enabled = sources.enabled();
    let interval = sources.sockets.as_ref().map(|s| s.interval);
    let core = Core::new(sources.inventory, resolve_config(args), args.limits(), enabled, interval)?;
    if let Some(mut packets) = sources.packets {
        let pipeline = pipeline_for(packets.syns, &core.recorder);
        let stop = Arc::new(AtomicBool::new(false));
        let mut capture = Capture { pipeline, metrics: core.metrics.clone(), stop, node_filter: None, waker: None };
        drain(packets.source.as_mut(), &mut capture)?;
    }
    if let Some(mut sockets) = sources.sockets {
        scan_once(&mut sockets.scanner, &core.recorder);
    }
    // A file's inventory will not change: what still waits for its client pod is counted now.
    core.recorder.retry_pending(now_micros(), true);
    Ok(server::encode_metrics(&core.registry, exposition))
}

fn resolve_config(args: &Args) -> ResolveConfig {
    ResolveConfig { cluster_domain: args.cluster_domain(), node_name: args.node_name() }
}

/// The binary's entry: opens the sources the flags name, binds the listen address, runs until `shutdown`.
pub async fn run_with_args(args: Args, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let web = match &args.web_config_file {
        Some(path) => WebConfig::load(path)?,
        None => WebConfig::plain(),
    };
    let sources = Sources::open(&args)?;
    let listener = server::bind(args.listen_address).await.map_err(Error::Listen)?;
    tracing::info!(address = %args.listen_address, web = ?web.current(), "serving /metrics");
    let settings = Settings { listener, resolve: resolve_config(&args), limits: args.limits(), web };
    run(settings, sources, shutdown).await
}

/// Runs the exporter over `sources` until `shutdown` completes. Needs a tokio runtime with I/O and timers.
pub async fn run(settings: Settings, sources: Sources, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let enabled = sources.enabled();
    let interval = sources.sockets.as_ref().map(|s| s.interval);
    let core = Core::new(sources.inventory, settings.resolve, settings.limits, enabled, interval)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (mut threads, mut wakers) = (Vec::new(), Vec::new());
    if let Some(packets) = sources.packets {
        let (thread, waker) = spawn_capture(packets, &core, stop.clone())?;
        threads.push(thread);
        wakers.push(waker);
    }
    if let Some(sockets) = sources.sockets {
        threads.push(spawn_socket_scanner(sockets, &core, stop.clone())?);
    }
    let web = Arc::new(settings.web);
    let reload = tokio::spawn(web.clone().watch());
    let state = AppState { registry: core.registry.clone(), readiness: core.readiness.clone(), web };
    server::serve(settings.listener, state, shutdown).await;
    reload.abort();
    stop.store(true, Ordering::Release);
    wakers.iter().for_each(Waker::wake);
    for thread in threads {
        if thread.join().is_err() {
            tracing::error!("a source thread panicked");
        }
    }
    tracing::info!("shut down");
    Ok(())
}

/// Runs the capture on a named thread; the waker ends its wait for packets (wake it after setting `stop`). It is
/// also woken when the exporter becomes ready and, with a node filter, when the node's pods change, so the thread
/// sleeps until a packet or one of those comes.
fn spawn_capture(packets: Packets, core: &Core, stop: Arc<AtomicBool>) -> Result<(JoinHandle<()>, Waker), Error> {
    tracing::info!(source = %packets.source.describe(), "capturing DNS answers");
    let live = packets.reopen.is_some();
    let pipeline = pipeline_for(packets.syns, &core.recorder);
    let metrics = core.metrics.clone();
    let readiness = core.readiness.clone();
    let inventory = core.recorder.inventory().clone();
    let waker = Waker::new().map_err(|e| Error::Thread("capture", e))?;
    readiness.wake_when_ready(waker.clone());
    if let Some(spec) = &packets.node_filter {
        let waker = waker.clone();
        inventory.write().unwrap_or_else(PoisonError::into_inner).watch_node(&spec.node, move || waker.wake());
    }
    let mut node_filter = packets.node_filter.map(|spec| NodeFilter::new(spec, inventory, metrics.clone()));
    let thread_waker = waker.clone();
    let thread = std::thread::Builder::new().name(packets.thread_name).spawn(move || {
        let _down_if_it_dies = DownOnPanic(metrics.clone(), SourceName::Capture);
        let mut source = packets.source;
        source.wake_with(thread_waker.clone());
        let Some(backlog) = read_until_ready(source.as_mut(), live, &readiness, &stop) else { return };
        metrics.source_succeeded(SourceName::Capture);
        if let Some(filter) = &mut node_filter {
            filter.refresh(source.as_mut());
        }
        let (mut pipeline, link) = (pipeline, source.link_type());
        for (at, frame) in backlog.frames {
            pipeline.process_frame(link, at, &frame);
        }
        let capture = Capture { pipeline, metrics, stop, node_filter, waker: Some(thread_waker) };
        capture_loop(source, capture, packets.reopen);
    });
    Ok((thread.map_err(|e| Error::Thread("capture", e))?, waker))
}

/// Marks a source down when its thread unwinds, so a dead thread shows on `/metrics` at once.
struct DownOnPanic(Metrics, SourceName);

impl Drop for DownOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.source_failed(self.1);
        }
    }
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
        // A live source returns Idle when woken (ready, stop) and after at most `IDLE_WAIT_MS`.
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

/// The pipeline of a capture; `syns: false` (`--no-syn-capture`) ignores client SYNs a custom filter may pass.
fn pipeline_for(syns: bool, recorder: &Recorder) -> DnsPipeline {
    let pipeline = DnsPipeline::new(recorder.clone());
    if syns { pipeline } else { pipeline.without_syns() }
}

/// What a capture thread feeds and reports into.
struct Capture {
    pipeline: DnsPipeline,
    metrics: Metrics,
    stop: Arc<AtomicBool>,
    /// Keeps the kernel filter to this node's pods; `None` without a node filter.
    node_filter: Option<NodeFilter>,
    /// Ends a live source's wait for packets (given to a reopened source too).
    waker: Option<Waker>,
}

/// Reads the source until it ends or `stop` is set. A live device that fails is reopened after a pause.
fn capture_loop(mut source: Box<dyn PacketSource>, mut capture: Capture, reopen: Option<Reopen>) {
    loop {
        match drain(source.as_mut(), &mut capture) {
            Ok(()) => {
                tracing::info!(source = %source.describe(), "capture source finished");
                // Observations from the file that wait for their client pod or a fetch still get their retries.
                let recorder = capture.pipeline.recorder();
                while recorder.pending() > 0 && !sleep_unless_stopped(&capture.stop, STATS_INTERVAL) {
                    recorder.retry_pending(now_micros(), false);
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "capture failed; retrying"),
        }
        let Some(reopen) = &reopen else { return };
        loop {
            if sleep_unless_stopped(&capture.stop, CAPTURE_RETRY) {
                return;
            }
            match reopen() {
                Ok(mut s) => {
                    capture.metrics.source_succeeded(SourceName::Capture);
                    capture.waker.iter().for_each(|waker| s.wake_with(waker.clone()));
                    break source = s;
                }
                Err(e) => {
                    capture.metrics.capture_error(&e);
                    tracing::warn!(error = %e, "capture reopen failed; retrying");
                }
            }
        }
        if let Some(filter) = &mut capture.node_filter {
            filter.reset();
            filter.refresh(source.as_mut());
        }
    }
}

/// Feeds every packet of `source` to the pipeline until the source ends (`Ok`) or fails (`Err`, counted).
fn drain(source: &mut dyn PacketSource, capture: &mut Capture) -> Result<(), capture::Error> {
    let link = source.link_type();
    let mut drops = DropTracker::default();
    let mut last_stats = Instant::now();
    let mut since_clock_read = 0u32;
    while !capture.stop.load(Ordering::Acquire) {
        let idle = match source.next() {
            Ok(Next::Packet(packet)) => {
                capture.pipeline.process_frame(link, packet.at, packet.data);
                false
            }
            Ok(Next::Idle) => true,
            Ok(Next::End) => {
                drops.update(source, &capture.metrics);
                capture.metrics.source_succeeded(SourceName::Capture);
                return Ok(());
            }
            Err(e) => {
                capture.metrics.capture_error(&e);
                return Err(e);
            }
        };
        // A clock read costs a good part of a frame's decoding: a busy capture reads it every CLOCK_EVERY frames,
        // an idle one (`Next::Idle`: the ring drained, a wake-up, a wait that timed out) every time.
        since_clock_read += 1;
        if since_clock_read < CLOCK_EVERY && !idle {
            continue;
        }
        since_clock_read = 0;
        if let Some(filter) = &mut capture.node_filter {
            filter.refresh(source);
        }
        if last_stats.elapsed() >= STATS_INTERVAL {
            last_stats = Instant::now();
            drops.update(source, &capture.metrics);
            capture.metrics.source_succeeded(SourceName::Capture);
            capture.pipeline.recorder().retry_pending(now_micros(), false);
        }
    }
    drops.update(source, &capture.metrics);
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

/// Runs the socket scanner on a named thread.
fn spawn_socket_scanner(sockets: SocketScan, core: &Core, stop: Arc<AtomicBool>) -> Result<JoinHandle<()>, Error> {
    let SocketScan { mut scanner, interval } = sockets;
    tracing::info!(interval = ?interval, "scanning TCP sockets");
    match PodHash::of_host(&scanner.root().0) {
        Some(PodHash::Shared { host_buckets }) => tracing::info!(
            host_buckets,
            "new pod network namespaces share the node's TCP established hash (net.ipv4.tcp_child_ehash_entries \
             = 0), so a pod's table read walks every established socket of the node; docs/performance.md \
             \"Pods with a hash of their own\" shows the node setting that makes it cost what the pod holds"
        ),
        Some(PodHash::Own { buckets }) => {
            tracing::info!(buckets, "new pod network namespaces get a TCP established hash of their own");
        }
        None => {}
    }
    let (recorder, readiness) = (core.recorder.clone(), core.readiness.clone());
    let thread = std::thread::Builder::new().name("socket-scan".into()).spawn(move || {
        let _down_if_it_dies = DownOnPanic(recorder.metrics().clone(), SourceName::Sockets);
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
    thread.map_err(|e| Error::Thread("socket scan", e))
}

/// One full scan: new client-side connections are resolved and counted; the rest feeds the self-metrics.
/// A failed scan (the root became unreadable) is logged and counted, and the next one tries again.
fn scan_once(scanner: &mut Scanner, recorder: &Recorder) {
    let metrics = recorder.metrics();
    let started = Instant::now();
    let report = match scanner.scan() {
        Ok(report) => report,
        Err(e) => {
            metrics.socket_scans.get_or_create(&Outcome(ScanOutcome::Error)).inc();
            metrics.source_failed(SourceName::Sockets);
            tracing::warn!(error = %e, "socket scan failed");
            return;
        }
    };
    let at = now_micros();
    for conn in &report.new_connections {
        recorder.socket(conn.local, conn.remote, conn.sighting, at);
    }
    recorder.retry_pending(at, false);
    // Client sockets are the new connections just counted by resolution outcome above.
    let outcomes = &report.outcomes;
    let seen = [
        (SocketOutcome::AlreadySeen, outcomes.already_seen),
        (SocketOutcome::ServerSide, outcomes.server_side),
        (SocketOutcome::Loopback, outcomes.loopback),
        (SocketOutcome::NotEstablished, outcomes.not_established),
        (SocketOutcome::Malformed, outcomes.malformed),
    ];
    for (outcome, n) in seen {
        metrics.socket_connections.get_or_create(&Outcome(outcome)).inc_by(n as u64);
    }
    for (reason, n) in [(SkipReason::Vanished, report.vanished), (SkipReason::Unreadable, report.unreadable)] {
        metrics.socket_processes_skipped.get_or_create(&ReasonLabel(reason)).inc_by(n as u64);
    }
    metrics.socket_namespaces.set(report.namespaces as i64);
    metrics.socket_namespaces_unchanged.set(report.unchanged as i64);
    metrics.socket_scan_sockets.set(report.sockets as i64);
    metrics.socket_scan_duration.observe(started.elapsed().as_secs_f64());
    metrics.socket_scans.get_or_create(&Outcome(ScanOutcome::Ok)).inc();
    metrics.source_succeeded(SourceName::Sockets);
    tracing::debug!(
        namespaces = report.namespaces,
        unchanged = report.unchanged,
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
