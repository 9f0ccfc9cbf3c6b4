//! End to end on a simulated Kubernetes node (see `testkit/src/e2e/`): the shop's real DNS lookups and connections,
//! the exporter in the node namespace on device `any` with the live (fake) API, Prometheus scraping it, and
//! `netmap-reduce --prometheus` reading the exact map back. The API server fails for a while in the middle:
//! `/metrics` keeps answering, and a pod added after the outage is resolved. SIGTERM ends the exporter cleanly.
//!
//! A live test: needs root, network namespaces, dnsmasq, Prometheus, iptables (ignored by a plain `cargo test`,
//! run by `make test`).
//! With `NETMAP_E2E_EXPORTER_ROOTFS=<mounted image>` the exporter is the container image's binary (`make test-image`).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use testkit::cmd::ok;
use testkit::e2e::monitor::{self, Binaries};
use testkit::e2e::procs::Usage;
use testkit::e2e::{Lab, shop};
use testkit::http::{get, sample, until};
use testkit::live;

/// The link subnet of the test's node: `169.254.252.0/24` (the demo uses .253).
const LINK_SUBNET: u8 = 252;
/// How long the API stays down while the exporter starts (cart's pooled connection must still be found).
const STARTUP_OUTAGE: Duration = Duration::from_secs(3);
/// How long the API stays down later, during the loadgenerator's burst.
const OUTAGE: Duration = Duration::from_secs(5);

fn bins() -> Binaries {
    Binaries {
        exporter: env!("CARGO_BIN_EXE_network-mapper").into(),
        reduce: env!("CARGO_BIN_EXE_netmap-reduce").into(),
    }
}

#[test]
#[ignore = "live: needs root, network namespaces, dnsmasq, Prometheus, iptables (run by `make test`)"]
fn a_shop_on_a_simulated_node_is_mapped_exactly_through_prometheus() {
    live::require(live::NODE_LAB);
    let started = Instant::now();
    let mut lab = ok(shop::bring_up(bins(), LINK_SUBNET, STARTUP_OUTAGE));
    let pid = lab.exporter().process.pid();
    exporter_is_the_image_binary(pid);
    let before = ok(Usage::of(pid));
    let traffic_done = Instant::now();

    let burst_answers = api_outage(&mut lab);
    assert_eq!(burst_answers, shop::BURST, "the loadgenerator got an answer to every lookup");
    lab.api.fail_next_requests(4, 500);
    ok(shop::add_reviews(&mut lab));

    let exposition = exporter_counts_exactly(&lab);
    let after = ok(Usage::of(pid));
    prometheus_and_reducer_agree(&lab);
    report_usage(before, after, traffic_done.elapsed(), &exposition);

    let (status, took) = ok(lab.exporter.as_mut().unwrap().process.terminate(Duration::from_secs(10)));
    assert!(status.success(), "the exporter exits 0 on SIGTERM, got {status}");
    let _ =
        writeln!(std::io::stderr(), "e2e: exporter stopped {took:?} after SIGTERM; whole test {:?}", started.elapsed());
}

/// With `NETMAP_E2E_EXPORTER_ROOTFS` (`make test-image`): the process under test really is the image's binary,
/// confined to the image's root, holding only the DaemonSet's capability (and `chroot`'s), under no_new_privs.
fn exporter_is_the_image_binary(pid: u32) {
    let Some(rootfs) = monitor::exporter_rootfs() else { return };
    let link = |name: &str| ok(std::fs::read_link(format!("/proc/{pid}/{name}")));
    let rootfs = ok(rootfs.canonicalize());
    assert_eq!(link("root"), rootfs, "the exporter's root directory");
    assert_eq!(link("exe"), rootfs.join("usr/local/bin/network-mapper"), "the exporter's executable");
    let status = ok(std::fs::read_to_string(format!("/proc/{pid}/status")));
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default();
    const NET_RAW: u64 = 1 << 13;
    const SYS_CHROOT: u64 = 1 << 18;
    let effective = u64::from_str_radix(field("CapEff:"), 16).unwrap();
    assert_eq!(effective, NET_RAW | SYS_CHROOT, "effective capabilities {effective:#x}");
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Uid:").split_whitespace().next(), Some("0"));
    let _ = writeln!(
        std::io::stderr(),
        "e2e: exporter pid {pid} is {} (capabilities {effective:#x}: NET_RAW, SYS_CHROOT)",
        link("exe").display()
    );
}

/// Takes the API down (open watches dropped, every connection refused) for [`OUTAGE`] while the loadgenerator's
/// burst runs, polling `/metrics` throughout; returns the burst's answers.
fn api_outage(lab: &mut Lab) -> usize {
    // The traffic so far reaches /metrics within a capture block's timeout; the polls below ask for its edges.
    let base = lab.exporter().base_url.clone();
    let edges = || get(&format!("{base}/metrics")).filter(|(_, body)| body.contains("network_mapper_edge_total{"));
    ok(until("the first edges on /metrics", Duration::from_secs(10), edges));
    let errors = r#"network_mapper_inventory_watch_errors_total{kind="Pod"}"#;
    let errors_before = lab.exporter().sample(errors).unwrap_or(0.0);
    lab.api.set_down(true);
    let outage = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = poll_metrics(base, stop.clone());
    let answers = ok(shop::burst(lab));
    std::thread::sleep(OUTAGE.saturating_sub(outage.elapsed()));
    let exporter = lab.exporter();
    ok(until("watch errors during the outage", Duration::from_secs(20), || {
        exporter.sample(errors).filter(|n| *n > errors_before)
    }));
    stop.store(true, Ordering::Relaxed);
    let (polls, failures) = poller.join().unwrap();
    assert!(failures.is_empty(), "/metrics failed during the API outage: {failures:?}");
    assert!(polls >= 10, "/metrics was polled {polls} times during the outage");
    lab.api.set_down(false);
    answers
}

/// Polls `/metrics` every 200 ms until `stop`; returns the number of polls and the failures.
fn poll_metrics(base: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let (mut polls, mut failures) = (0, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            polls += 1;
            match get(&format!("{base}/metrics")) {
                Some((200, body)) if body.contains("network_mapper_edge_total{") => {}
                other => failures.push(format!("{:?}", other.map(|(code, _)| code))),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        (polls, failures)
    })
}

/// The exporter's edges, DNS outcomes, unresolved reasons and socket outcomes, all exact; no capture drops.
fn exporter_counts_exactly(lab: &Lab) -> String {
    let exporter = lab.exporter();
    let expected = shop::expected_edge_lines();
    let edges = |text: &str| -> Vec<String> {
        let mut lines: Vec<String> =
            text.lines().filter(|l| l.starts_with("network_mapper_edge_total{")).map(String::from).collect();
        lines.sort();
        lines
    };
    let settled = until("the expected edges on /metrics", Duration::from_secs(20), || {
        exporter.metrics().filter(|text| edges(text) == expected)
    });
    let text = settled.unwrap_or_else(|e| {
        let now = exporter.metrics().unwrap_or_default();
        let capture: Vec<&str> = now
            .lines()
            .filter(|l| l.starts_with("network_mapper_capture_") || l.starts_with("network_mapper_dns_"))
            .collect();
        let found = edges(&now).join("\n");
        panic!("{}\nexpected:\n{}\nfound:\n{found}\n{}", exporter.with_log(e), expected.join("\n"), capture.join("\n"))
    });
    for (outcome, n) in shop::expected_dns_outcomes() {
        let series = format!("network_mapper_dns_responses_total{{outcome=\"{outcome}\"}}");
        assert_eq!(sample(&text, &series), Some(n as f64), "{series}\n{text}");
    }
    let mut connections: Vec<&str> =
        text.lines().filter(|l| l.starts_with("network_mapper_edge_connections_total{")).collect();
    connections.sort();
    assert_eq!(connections, shop::expected_connection_lines(), "\n{text}");
    assert!(!text.contains(r#"client="coredns""#), "kube-dns forwards lookups, it does not call their names:\n{text}");
    let unresolved = |source: &str, reason: &str| {
        format!(r#"network_mapper_unresolved_total{{source="{source}",side="client",reason="{reason}"}}"#)
    };
    let exact = [
        ("network_mapper_capture_kernel_drops_total".to_owned(), Some(0.0)),
        // The node filter passes no answer to, and no SYN from, the node's address or node-b's pods.
        (unresolved("dns", "host_network"), None),
        (unresolved("syn", "host_network"), None),
        (r#"network_mapper_syns_total{outcome="other_node"}"#.to_owned(), Some(0.0)),
        // The node's connection to catalog, from the node's network namespace: not an identity.
        (unresolved("socket", "host_network"), Some(1.0)),
        // recommendations (node-b): no real node's scan sees another node's pod; the lab runs its namespace here,
        // and this node's agent, which knows node-a's pods and the pods Services select, knows nothing of it.
        (unresolved("socket", "unknown_ip"), Some(1.0)),
        (r#"network_mapper_edges_refused_total{reason="max_edges"}"#.to_owned(), Some(0.0)),
    ];
    for (series, n) in exact {
        assert_eq!(sample(&text, &series), n, "{series}\n{text}");
    }
    // Each connection is counted by whichever source saw it first (nearly always the SYN; the socket scan for
    // cart's pooled connection, opened before the exporter started): frontend 3, checkout 2, cart 2, reviews,
    // catalog's and the loadgenerator's short ones.
    let both = |outcome: &str| -> f64 {
        ["syns", "socket_connections"]
            .iter()
            .map(|family| {
                sample(&text, &format!("network_mapper_{family}_total{{outcome=\"{outcome}\"}}")).unwrap_or(0.0)
            })
            .sum()
    };
    assert_eq!(both("counted"), 10.0, "{text}");
    assert_eq!(both("other_node"), 0.0, "recommendations is never seen as node-b's\n{text}");
    assert_eq!(both("dns_lookup"), 2.0, "email-reminder's two DNS-over-TCP connections\n{text}");
    assert!(sample(&text, r#"network_mapper_socket_connections_total{outcome="counted"}"#) >= Some(1.0));
    text
}

/// Prometheus has scraped the final values; the listing is exact, and so are the counts and kinds in JSON.
fn prometheus_and_reducer_agree(lab: &Lab) {
    let total: usize = shop::expected_edges().iter().map(|e| e.4).sum();
    let prometheus = lab.prometheus();
    ok(until("Prometheus to scrape the final counts", Duration::from_secs(20), || {
        prometheus.scalar("sum(network_mapper_edge_total)").filter(|n| *n == total as f64)
    }));
    assert_eq!(ok(monitor::reduce(&lab.bins, prometheus, &[])), shop::EXPECTED_LISTING);
    let json: serde_json::Value =
        serde_json::from_str(&ok(monitor::reduce(&lab.bins, prometheus, &["--format", "json"]))).unwrap();
    let edges = json.as_array().expect("a JSON array");
    let mut found: Vec<String> = edges
        .iter()
        .map(|e| format!("{} {} {} {} {}", e["client"], e["namespace"], e["server"], e["server_namespace"], e["count"]))
        .collect();
    found.sort();
    let mut expected: Vec<String> = shop::expected_edges()
        .iter()
        .map(|(c, ns, s, sns, n)| {
            let sns = sns.map_or("null".to_owned(), |v| format!("{v:?}"));
            format!("{c:?} {ns:?} {s:?} {sns} {n}")
        })
        .collect();
    expected.sort();
    assert_eq!(found, expected);
    for (workload, kind) in shop::EXPECTED_KINDS {
        let seen = edges.iter().any(|e| {
            (e["client"] == workload && e["client_kind"] == kind)
                || (e["server"] == workload && e["server_kind"] == kind)
        });
        assert!(seen, "{workload} has kind {kind} in {json:#}");
    }
}

/// Prints the exporter's CPU and memory over the measured part of the run (for the DaemonSet's requests).
fn report_usage(before: Usage, after: Usage, wall: Duration, exposition: &str) {
    let cpu = after.cpu_seconds - before.cpu_seconds;
    let packets = sample(exposition, "network_mapper_capture_packets_total").unwrap_or(0.0);
    let _ = writeln!(
        std::io::stderr(),
        "e2e: exporter CPU {cpu:.2} s over {:.1} s ({:.1}% of one core; {packets} packets captured), RSS {} KiB, \
         peak RSS {} KiB",
        wall.as_secs_f64(),
        100.0 * cpu / wall.as_secs_f64(),
        after.rss_kib,
        after.peak_rss_kib
    );
}
