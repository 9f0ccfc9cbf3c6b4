//! The `network-mapper` binary as a user runs it: serving HTTP, shutting down on SIGTERM, and refusing bad
//! input with exit code 2 and a message that names the file.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use testkit::cmd::Guarded;
use testkit::http::{eventually, free_port, request};

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

fn get(url: &str, accept: Option<&str>) -> Option<reqwest::blocking::Response> {
    request(url, accept)
}

#[test]
fn serves_metrics_health_and_landing_page_then_stops_on_sigterm() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Guarded::spawn(
        exporter()
            .args(["--pcap-file", CAPTURE, "--inventory-file", INVENTORY, "--no-socket-scan"])
            .env("NETMAP_LISTEN_ADDRESS", format!("127.0.0.1:{port}"))
            .env("NETMAP_NODE_NAME", "node-a")
            .env("NETMAP_CLUSTER_DOMAIN", "cluster.local")
            .stderr(Stdio::null()),
    )
    .unwrap();
    let healthz = format!("{base}/healthz");
    eventually("the exporter to serve /healthz", Duration::from_secs(20), || {
        get(&healthz, None).filter(|r| r.status() == 200)
    });

    let open =
        get(&format!("{base}/metrics"), Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")).unwrap();
    assert_eq!(open.headers()["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
    let body = open.text().unwrap();
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    // The capture is read by a background thread; poll until the edge shows up.
    let edge =
        r#"network_mapper_edge_total{client="checkout",namespace="shop",server="cart",server_namespace="shop"} 2"#;
    eventually("the edge on /metrics", Duration::from_secs(10), || {
        get(&format!("{base}/metrics"), None).unwrap().text().unwrap().contains(edge).then_some(())
    });
    let classic = get(&format!("{base}/metrics"), None).unwrap();
    assert_eq!(classic.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    assert!(classic.text().unwrap().contains("# TYPE network_mapper_edge_total counter"));

    assert_eq!(get(&format!("{base}/readyz"), None).unwrap().status(), 200);
    let landing = get(&format!("{base}/"), None).unwrap().text().unwrap();
    assert!(landing.contains("/metrics"));
    assert_eq!(get(&format!("{base}/nope"), None).unwrap().status(), 404);

    let (status, _) = server.terminate(Duration::from_secs(10)).expect("exit within 10 s of SIGTERM");
    assert!(status.success(), "clean exit on SIGTERM, got {status}");
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
fn an_inventory_that_cannot_name_workloads_is_loud() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inventory.yaml");
    let print = |file: &std::path::Path| {
        run(&["--pcap-file", CAPTURE, "--inventory-file", file.to_str().unwrap(), "--print-metrics"])
    };
    // Deployments and Services but no Pod: no client can be named.
    std::fs::write(
        &file,
        "kind: List\nitems:\n- {kind: Deployment, metadata: {name: web, namespace: shop}}\n\
         - {kind: Service, metadata: {name: web, namespace: shop}, spec: {clusterIP: 10.96.0.9}}\n",
    )
    .unwrap();
    let out = print(&file);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("inventory.yaml") && err.contains("holds no Pod (only 1 Service(s), 1 other object(s))"),
        "{err}"
    );
    assert!(err.contains(network_mapper::sources::inventory::naming::KUBECTL_GET), "{err}");

    // Pods whose ReplicaSet is missing: counted, with a warning naming the kind.
    std::fs::write(
        &file,
        "kind: List\nitems:\n- kind: Pod\n  metadata: {name: web-7d9f-x, namespace: shop, ownerReferences: \
         [{kind: ReplicaSet, name: web-7d9f, controller: true, apiVersion: apps/v1, uid: u}]}\n  \
         status: {podIP: 10.0.1.10}\n",
    )
    .unwrap();
    let out = print(&file);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 pod(s) owned by a ReplicaSet that the inventory does not hold"),
        "{}",
        stderr(&out)
    );
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
    let mut w = testkit::capfile::Pcap::create(&path, 147).unwrap();
    w.write(0, &[0u8; 40]);
    w.finish().unwrap();
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

/// The first lines the exporter logs, until one contains `wanted` (or it closes stderr, or 200 lines pass).
fn log_lines_until(server: &mut Guarded, wanted: &str) -> Vec<String> {
    use std::io::BufRead;
    let stderr = std::io::BufReader::new(server.child.stderr.take().expect("stderr is piped"));
    let mut lines = Vec::new();
    for line in stderr.lines().take(200) {
        let line = line.expect("read the exporter's stderr");
        let done = line.contains(wanted);
        lines.push(line);
        if done {
            break;
        }
    }
    lines
}

#[test]
fn start_up_logs_whether_new_pods_get_a_tcp_hash_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    testkit::procfs::copy_tree(std::path::Path::new("tests/fixtures/proc"), &root).unwrap();
    let ipv4 = root.join("sys/net/ipv4");
    std::fs::create_dir_all(&ipv4).unwrap();
    std::fs::write(ipv4.join("tcp_ehash_entries"), "262144\n").unwrap();
    for (child, wanted) in
        [("0", "share the node's TCP established hash"), ("16384", "get a TCP established hash of their own")]
    {
        std::fs::write(ipv4.join("tcp_child_ehash_entries"), child).unwrap();
        let mut server = Guarded::spawn(
            exporter()
                .args(["--pcap-file", CAPTURE, "--inventory-file", INVENTORY, "--procfs-root"])
                .arg(&root)
                .env("NETMAP_LISTEN_ADDRESS", format!("127.0.0.1:{}", free_port()))
                .env("RUST_LOG", "info")
                .env("NO_COLOR", "1")
                .stderr(Stdio::piped()),
        )
        .unwrap();
        let lines = log_lines_until(&mut server, wanted);
        let line = lines.last().filter(|line| line.contains(wanted));
        assert!(line.is_some(), "tcp_child_ehash_entries = {child}: no line with {wanted:?} in {lines:#?}");
        let buckets = if child == "0" { "host_buckets=262144" } else { "buckets=16384" };
        assert!(line.unwrap().contains(buckets), "{lines:#?}");
        server.terminate(Duration::from_secs(10)).expect("exit on SIGTERM");
    }
}
