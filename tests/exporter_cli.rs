//! The `network-mapper` binary as a user runs it: serving HTTP, shutting down on SIGTERM, and refusing bad
//! input with exit code 2 and a message that names the file.

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CAPTURE: &str = "tests/fixtures/scrape/capture.pcap";
const INVENTORY: &str = "tests/fixtures/inventory/cluster.yaml";

fn exporter() -> Command {
    Command::new(env!("CARGO_BIN_EXE_network-mapper"))
}

fn run(args: &[&str]) -> Output {
    exporter().args(args).env("RUST_LOG", "warn").output().expect("network-mapper runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills the child on drop, so a failing assertion never leaves a server behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(url: &str, accept: Option<&str>) -> Option<reqwest::blocking::Response> {
    let client = reqwest::blocking::Client::new();
    let mut req = client.get(url).timeout(Duration::from_secs(2));
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    req.send().ok()
}

fn wait_until_serving(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if get(&format!("{base}/healthz"), None).is_some_and(|r| r.status() == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("exporter did not serve {base}/healthz within 20 s");
}

#[test]
fn serves_metrics_health_and_landing_page_then_stops_on_sigterm() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = exporter()
        .args(["--pcap-file", CAPTURE, "--inventory-file", INVENTORY, "--no-socket-scan"])
        .env("NETMAP_LISTEN_ADDRESS", format!("127.0.0.1:{port}"))
        .env("NETMAP_NODE_NAME", "node-a")
        .env("NETMAP_CLUSTER_DOMAIN", "cluster.local")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Running(child);
    wait_until_serving(&base);

    let open =
        get(&format!("{base}/metrics"), Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")).unwrap();
    assert_eq!(open.headers()["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
    let body = open.text().unwrap();
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    // The capture is read by a background thread; poll until the edge shows up.
    let edge =
        r#"network_mapper_edge_total{client="checkout",namespace="shop",server="cart",server_namespace="shop"} 2"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !get(&format!("{base}/metrics"), None).unwrap().text().unwrap().contains(edge) {
        assert!(Instant::now() < deadline, "edge never appeared on /metrics");
        std::thread::sleep(Duration::from_millis(50));
    }
    let classic = get(&format!("{base}/metrics"), None).unwrap();
    assert_eq!(classic.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    assert!(classic.text().unwrap().contains("# TYPE network_mapper_edge_total counter"));

    assert_eq!(get(&format!("{base}/readyz"), None).unwrap().status(), 200);
    let landing = get(&format!("{base}/"), None).unwrap().text().unwrap();
    assert!(landing.contains("/metrics"));
    assert_eq!(get(&format!("{base}/nope"), None).unwrap().status(), 404);

    let pid = server.0.id().to_string();
    let started = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "clean exit on SIGTERM, got {status}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no exit within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn invalid_inventory_file_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("pods.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  metadata: {name: a, namespace: b}\n  spec: 5\n",
    )
    .unwrap();
    let out = run(&["--pcap-file", CAPTURE, "--inventory-file", bad.to_str().unwrap(), "--print-metrics"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(bad.to_str().unwrap()) && err.contains("Pod b/a"), "{err}");

    std::fs::write(&bad, "just: [unclosed").unwrap();
    let out = run(&["--pcap-file", CAPTURE, "--inventory-file", bad.to_str().unwrap(), "--print-metrics"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not valid YAML or JSON"), "{}", stderr(&out));

    let missing = dir.path().join("absent.yaml");
    let out = run(&["--pcap-file", CAPTURE, "--inventory-file", missing.to_str().unwrap(), "--print-metrics"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("absent.yaml"), "{}", stderr(&out));
}

#[test]
fn truncated_and_corrupt_capture_files_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(CAPTURE).unwrap();
    let truncated = dir.path().join("truncated.pcap");
    std::fs::write(&truncated, &whole[..whole.len() - 7]).unwrap();
    let corrupt = dir.path().join("corrupt.pcap");
    std::fs::write(&corrupt, b"this is not a capture file at all, just text").unwrap();
    for path in [&truncated, &corrupt] {
        let out = run(&["--pcap-file", path.to_str().unwrap(), "--inventory-file", INVENTORY, "--print-metrics"]);
        assert_eq!(out.status.code(), Some(2), "{}: {}", path.display(), stderr(&out));
        assert!(stderr(&out).contains(path.to_str().unwrap()), "{}", stderr(&out));
    }
}

#[test]
fn unsupported_link_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("user0.pcap");
    let mut w = network_mapper::sources::capture::synth::PcapWriter::new(Vec::new(), 147).unwrap();
    w.write(0, &[0u8; 40]).unwrap();
    std::fs::write(&path, w.into_inner()).unwrap();
    let out = run(&["--pcap-file", path.to_str().unwrap(), "--inventory-file", INVENTORY, "--print-metrics"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("147"), "{}", stderr(&out));
}

#[test]
fn unreadable_procfs_root_is_a_clear_start_up_error() {
    let out = run(&[
        "--pcap-file",
        CAPTURE,
        "--inventory-file",
        INVENTORY,
        "--procfs-root",
        "/nonexistent/proc",
        "--print-metrics",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("/nonexistent/proc") && err.contains("--procfs-root"), "{err}");
}
