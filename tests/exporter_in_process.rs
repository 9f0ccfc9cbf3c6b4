//! The whole exporter in-process, no root: `exporter::run` over fake sources (frames from memory, the fixture
//! `/proc` tree, a loaded inventory), scraped over HTTP. Shows that a source failing at run time shows on
//! `/metrics` at once (`network_mapper_source_up`) while `/metrics` keeps serving, and that shutdown is clean.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use network_mapper::UnixMicros;
use network_mapper::exporter::metrics::Limits;
use network_mapper::exporter::web_config::WebConfig;
use network_mapper::exporter::{self, InventorySource, Packets, Settings, SocketScan, Sources};
use network_mapper::resolve::ResolveConfig;
use network_mapper::sources::capture::frame::LinkType;
use network_mapper::sources::capture::source::{KernelStats, Next, Packet, PacketSource};
use network_mapper::sources::capture::{self, source};
use network_mapper::sources::inventory;
use network_mapper::sources::sockets::{ProcRoot, Scanner};

const CAPTURE: &str = "tests/fixtures/scrape/capture.pcap";
const INVENTORY: &str = "tests/fixtures/inventory/cluster.yaml";
const PROC: &str = "tests/fixtures/proc";

/// Frames held in memory, then a read error, then nothing (a device that died).
struct FakePackets {
    link: LinkType,
    frames: Vec<(UnixMicros, Vec<u8>)>,
    next: usize,
    failed: bool,
}

impl FakePackets {
    /// The frames of the golden scrape's capture file, read once into memory.
    fn from_fixture() -> FakePackets {
        let mut file = source::open_file(Path::new(CAPTURE), None).expect("fixture capture opens");
        let link = file.link_type();
        let mut frames = Vec::new();
        while let Next::Packet(Packet { at, data }) = file.next().expect("fixture capture reads") {
            frames.push((at, data.to_vec()));
        }
        FakePackets { link, frames, next: 0, failed: false }
    }
}

impl PacketSource for FakePackets {
    fn link_type(&self) -> LinkType {
        self.link
    }

    fn next(&mut self) -> Result<Next<'_>, capture::Error> {
        if let Some((at, data)) = self.frames.get(self.next) {
            self.next += 1;
            return Ok(Next::Packet(Packet { at: *at, data }));
        }
        if !self.failed {
            self.failed = true;
            return Err(capture::Error::Read { source_name: "fake".into(), detail: "device went away".into() });
        }
        Ok(Next::Idle)
    }

    fn kernel_stats(&mut self) -> Option<KernelStats> {
        None
    }

    fn describe(&self) -> String {
        "fake frames from memory".into()
    }
}

fn sources() -> Sources {
    let packets = Packets {
        source: Box::new(FakePackets::from_fixture()),
        reopen: None,
        thread_name: "fake".into(),
        syns: true,
        node_filter: None,
    };
    let scanner = Scanner::new(ProcRoot(PathBuf::from(PROC))).expect("fixture /proc tree");
    let inventory = inventory::load_file(Path::new(INVENTORY)).expect("fixture inventory loads");
    Sources {
        packets: Some(packets),
        sockets: Some(SocketScan { scanner, interval: Duration::from_secs(3600) }),
        inventory: InventorySource::Loaded(Box::new(inventory)),
    }
}

/// `GET path`; the body of a 200 answer.
fn get(addr: SocketAddr, path: &str) -> String {
    let (status, body) = testkit::http::get(&format!("http://{addr}{path}")).expect("the exporter answers");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn the_whole_exporter_runs_over_fake_sources_and_shows_a_failed_source_at_once() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let resolve = ResolveConfig { cluster_domain: "cluster.local".into(), node_name: Some("node-a".into()) };
    let settings = Settings { listener, resolve, limits: Limits::default(), web: WebConfig::plain() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let exporter = runtime.spawn(exporter::run(settings, sources(), async {
        stopped.await.ok();
    }));

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let scrape = get(addr, "/metrics");
        // Both sources have run: the capture read every frame and then failed, the scanner finished a scan.
        let failed = value(&scrape, r#"network_mapper_capture_errors_total{error="read"}"#) == Some(1.0);
        let scanned = value(&scrape, r#"network_mapper_socket_scans_total{outcome="ok"}"#).is_some_and(|n| n >= 1.0);
        if failed && scanned {
            break;
        }
        assert!(Instant::now() < deadline, "the fake source's error and a socket scan never both showed:\n{scrape}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A scrape is not a snapshot: its families are encoded one after another while the sources keep counting, so
    // the scrape that showed the scan done may have encoded `edge_total` before the scan's edges were recorded.
    // Everything both sources counted is recorded before their error or scan counter moves, so the next scrape
    // holds all of it.
    let scrape = get(addr, "/metrics");
    // The same edges as the golden scrape's capture and /proc tree (tests/golden/scrape.prom).
    let edge = |client: &str, server: &str| {
        let series = format!(
            r#"network_mapper_edge_total{{client="{client}",namespace="shop",server="{server}",server_namespace="shop"}}"#
        );
        value(&scrape, &series)
    };
    assert_eq!(edge("checkout", "cart"), Some(2.0), "{scrape}");
    assert_eq!(edge("report", "payments-gw"), Some(1.0), "{scrape}");
    assert_eq!(value(&scrape, "network_mapper_edges"), Some(15.0), "{scrape}");
    // The capture died and says so; the other sources are up; /metrics kept serving throughout.
    assert_eq!(value(&scrape, r#"network_mapper_source_up{source="capture"}"#), Some(0.0), "{scrape}");
    assert_eq!(value(&scrape, r#"network_mapper_source_up{source="sockets"}"#), Some(1.0), "{scrape}");
    assert_eq!(value(&scrape, r#"network_mapper_source_up{source="inventory"}"#), Some(1.0), "{scrape}");
    let last_success = value(&scrape, r#"network_mapper_source_last_success_timestamp_seconds{source="capture"}"#);
    assert!(last_success.is_some_and(|t| t > 1.0e9), "the capture succeeded before it failed: {scrape}");
    assert_eq!(get(addr, "/readyz").trim(), "ready");

    stop.send(()).unwrap();
    let result = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), exporter).await });
    result.expect("shuts down within 10 s").expect("task joins").expect("run returns Ok");
}
