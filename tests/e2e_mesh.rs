//! End to end on a simulated node with meshed pods (see `testkit/src/e2e/mesh.rs` and `meshed.rs`): Istio
//! sidecars with and without DNS capture, Istio ambient with and without a waypoint, Linkerd, and a pod without a
//! mesh calling and called by each. The exporter runs in the node namespace on device `any` with the real `/proc`,
//! and its counts must be the applications' calls exactly, at their servers' target ports, held across scans.
//!
//! A live test: needs root, network namespaces, dnsmasq, iptables (ignored by a plain `cargo test`, run by
//! `make test`).

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use network_mapper::sources::sockets::table::{self, Family, SocketRow};

use testkit::cmd::ok;
use testkit::e2e::mesh::{ISTIO_PROXY_UID, LINKERD_PROXY_UID};
use testkit::e2e::monitor::Binaries;
use testkit::e2e::{Lab, meshed, shop};
use testkit::http::{sample, until};
use testkit::live;

fn bins() -> Binaries {
    Binaries {
        exporter: env!("CARGO_BIN_EXE_network-mapper").into(),
        reduce: env!("CARGO_BIN_EXE_netmap-reduce").into(),
    }
}

/// The lines of `family` in an exposition, sorted.
fn lines(text: &str, family: &str) -> Vec<String> {
    let mut lines: Vec<String> =
        text.lines().filter(|l| l.starts_with(&format!("{family}{{"))).map(String::from).collect();
    lines.sort();
    lines
}

fn edges_and_connections(text: &str) -> (Vec<String>, Vec<String>) {
    (lines(text, "network_mapper_edge_total"), lines(text, "network_mapper_edge_connections_total"))
}

#[test]
#[ignore = "live: needs root, network namespaces, dnsmasq, iptables (run by `make test`)"]
fn meshed_pods_are_mapped_as_if_there_were_no_mesh() {
    live::require(live::NODE_LAB);
    let started = Instant::now();
    let mut lab = ok(meshed::build(bins()));
    ok(lab.start_exporter(Duration::ZERO).map(drop));
    // Connections that closed before the exporter's first scan are not counted (docs/counting.md): the traffic
    // starts after it.
    let scans = r#"network_mapper_socket_scans_total{outcome="ok"}"#;
    ok(until("the first socket scan", Duration::from_secs(10), || lab.exporter().sample(scans).filter(|n| *n >= 1.0)));
    ok(meshed::traffic(&mut lab));
    let expected =
        (shop::edge_lines(&meshed::expected_edges()), shop::connection_lines(&meshed::expected_connection_series()));
    let text = exact_counts(&lab, &expected);
    the_lab_shows_what_a_mesh_shows(&lab);
    // Held connections stay open across the next scans (one per second) and must not count again.
    std::thread::sleep(Duration::from_secs(3));
    let later = lab.exporter().metrics().expect("/metrics");
    assert_eq!(edges_and_connections(&later), expected, "counts moved while connections were held");
    proxies_are_never_counted(&later);
    the_listing_leaves_the_control_plane_out(&lab, &later);
    let _ = writeln!(std::io::stderr(), "e2e mesh: whole test {:?}", started.elapsed());
    drop(text);
}

/// `netmap-reduce` on the scrape: the applications' calls, without the proxies' calls to istiod.
fn the_listing_leaves_the_control_plane_out(lab: &Lab, exposition: &str) {
    let file = lab.dir().join("mesh.prom");
    ok(std::fs::write(&file, exposition));
    let output = ok(std::process::Command::new(&lab.bins.reduce).arg(&file).output());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), meshed::EXPECTED_LISTING);
}

/// The established sockets of `workload`'s pod, from its namespace's `/proc/net/tcp`.
fn sockets(lab: &Lab, workload: &str) -> Vec<SocketRow> {
    let netns = &lab.agents[&lab.pod_of(workload)].netns;
    let table = ok(testkit::netns::command_in(netns, "cat").arg("/proc/net/tcp").output()).stdout;
    table::rows(&table, Family::V4).filter_map(Result::ok).filter(|r| r.state == table::state::ESTABLISHED).collect()
}

/// The facts the counting rules rest on (docs/counting.md, "Service meshes"), as the pods' tables show them with
/// every held call open.
fn the_lab_shows_what_a_mesh_shows(lab: &Lab) {
    let count = |rows: &[SocketRow], test: &dyn Fn(&SocketRow) -> bool| rows.iter().filter(|r| test(r)).count();
    let at = |addr: &str| addr.parse::<SocketAddr>().unwrap();
    let web = sockets(lab, "web");
    assert_eq!(count(&web, &|r| r.remote == at("10.96.6.21:80") && r.uid == 0), 2, "held calls keep the ClusterIP");
    assert!(count(&web, &|r| r.local == at("127.0.0.1:15001") && r.uid == ISTIO_PROXY_UID) >= 3, "{web:?}");
    let upstreams = count(&web, &|r| r.remote == at("10.244.0.21:8081") && r.uid == ISTIO_PROXY_UID);
    assert!((2..5).contains(&upstreams), "Envoy pooled web's five calls to orders on {upstreams} upstreams");
    let orders = sockets(lab, "orders");
    assert!(count(&orders, &|r| r.local.ip().to_string() == "127.0.0.6") >= 3, "Envoy reaches the app from 127.0.0.6");
    let checkout = sockets(lab, "checkout");
    assert_eq!(count(&checkout, &|r| r.remote == at("10.244.0.31:15008")), 1, "one HBONE connection to payments");
    assert_eq!(count(&checkout, &|r| r.remote == at("10.244.0.33:15008")), 1, "one HBONE connection to the waypoint");
    let payments = sockets(lab, "payments");
    for client in ["10.244.0.30", "10.244.0.50"] {
        let transparent = |r: &SocketRow| r.local.ip().to_string() == client && r.remote == at("10.244.0.31:9091");
        assert_eq!(count(&payments, &transparent), 1, "ztunnel re-originates {client}'s held call with its address");
    }
    let catalog = sockets(lab, "catalog");
    assert_eq!(count(&catalog, &|r| r.remote == at("10.244.0.41:4143") && r.uid == LINKERD_PROXY_UID), 1);
}

/// Waits until the exporter shows exactly the expected edges and connection series; fails with both otherwise.
fn exact_counts(lab: &Lab, expected: &(Vec<String>, Vec<String>)) -> String {
    let exporter = lab.exporter();
    let settled = until("the expected edges and connections on /metrics", Duration::from_secs(20), || {
        exporter.metrics().filter(|text| edges_and_connections(text) == *expected)
    });
    settled.unwrap_or_else(|e| {
        let now = exporter.metrics().unwrap_or_default();
        let (edges, connections) = edges_and_connections(&now);
        let outcomes: Vec<&str> = now
            .lines()
            .filter(|l| l.starts_with("network_mapper_syns_total") || l.starts_with("network_mapper_socket_conn"))
            .collect();
        panic!(
            "{}\nexpected:\n{}\n{}\nfound:\n{}\n{}\n{}",
            exporter.with_log(e),
            expected.0.join("\n"),
            expected.1.join("\n"),
            edges.join("\n"),
            connections.join("\n"),
            outcomes.join("\n")
        )
    })
}

/// The proxies' relays, tunnels and re-originated sockets were seen (on the wire and in the tables) and decided
/// as the proxies'; the in-pod DNS answers never reached the wire.
fn proxies_are_never_counted(text: &str) {
    let outcome = |family: &str, outcome: &str| {
        sample(text, &format!("network_mapper_{family}_total{{outcome=\"{outcome}\"}}")).unwrap_or(0.0)
    };
    // Each proxy connection is decided once, by whichever source sees it first: at least the 12 on the wire (web's
    // second pooled upstream and its 2 to legacy, orders' 1, checkout's 2 HBONE and 1 plain, the waypoint's HBONE,
    // catalog's 4) and the 4 only the tables show (web's upstream from before the start, ztunnel's 3 held
    // re-originated sockets). More when the sidecar's pool opened another upstream for a racing connection.
    let decided = outcome("syns", "mesh_proxy") + outcome("socket_connections", "mesh_proxy");
    assert!(decided >= 16.0, "{decided} proxy connections\n{text}");
    assert_eq!(outcome("dns_responses", "counted"), 2.0, "web's forwarded miss and orders' lookup only\n{text}");
    for port in [15001, 15006, 15008, 15053, 15090, 4140, 4143, 4191] {
        assert!(!text.contains(&format!("port=\"{port}\"")), "mesh port {port} as a port label\n{text}");
    }
    for proxy in ["waypoint", "ztunnel"] {
        assert!(!text.contains(&format!("server=\"{proxy}\"")), "{proxy} as a server\n{text}");
    }
    assert_eq!(sample(text, "network_mapper_capture_kernel_drops_total"), Some(0.0));
}
