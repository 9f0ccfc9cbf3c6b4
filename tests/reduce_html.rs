//! `--format html` in a real browser: headless Chromium (Debian's `chromium`, installed by `scripts/setup.sh`)
//! loads the page from a file and dumps its DOM after the page's script has run. The page writes what it shows
//! into `#netmap-state` (JSON): the test checks that every expected node and edge is in the graph, that search
//! (typed through the search box's input event) and focus (a tap on the node, as a click) show what they should,
//! that grouping makes namespace boxes, and that the page requested nothing (the Resource Timing list is empty;
//! its Content-Security-Policy forbids any request anyway).
//!
//! A live test (`#[ignore]` in a plain `cargo test`; `make test` runs it and fails without Chromium). `UPDATE_GOLDEN=1` also
//! rewrites the screenshot `docs/reduce-html.png` (the 200-service map focused on one workload).

mod reduce_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use testkit::live::{self, Need};

/// A live test: it needs Debian's `chromium` (ignored by a plain `cargo test`, run by `make test`, where a
/// missing browser fails it with the reason).
const NEEDS: &[Need] = &[Need::File("/usr/bin/chromium", "chromium")];

fn chromium() -> &'static str {
    live::require(NEEDS);
    "chromium"
}

/// The flags every run uses: no sandbox (tests run as root), nothing that phones home, a fresh profile.
fn chromium_command(browser: &str, profile: &Path) -> Command {
    let mut command = Command::new(browser);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=15000",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Loads `page#fragment` and returns the page's published state.
fn page_state(browser: &str, page: &Path, fragment: &str) -> Value {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}#{fragment}", page.display());
    let output = chromium_command(browser, profile.path()).arg("--dump-dom").arg(&url).output().unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    let start = dom.find("<pre id=\"netmap-state\">").unwrap_or_else(|| {
        panic!(
            "no #netmap-state in the dumped DOM of {url}; chromium stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let body = &dom[start + "<pre id=\"netmap-state\">".len()..];
    let text = &body[..body.find("</pre>").unwrap()];
    let text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    let state: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("state of {url} is not JSON ({e}): {text}"));
    assert_eq!(state["ready"], true, "{url}: {state}");
    assert_eq!(state["errors"], serde_json::json!([]), "{url}: script errors");
    assert_eq!(state["resources"], serde_json::json!([]), "{url}: the page requested something");
    state
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reduce/snapshots/api-vector")
        .join(name)
        .display()
        .to_string()
}

fn write_html(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let output =
        Command::new(env!("CARGO_BIN_EXE_netmap-reduce")).args(args).arg("--format").arg("html").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let path = dir.join(name);
    std::fs::write(&path, output.stdout).unwrap();
    path
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

/// `name.namespace`, or the bare name outside the cluster — as the page names nodes.
fn node_name(name: &Value, namespace: &Value) -> String {
    match namespace.as_str() {
        Some(ns) => format!("{}.{ns}", name.as_str().unwrap()),
        None => name.as_str().unwrap().to_owned(),
    }
}

#[test]
#[ignore = "live: needs Debian's chromium (run by `make test`)"]
fn the_html_map_shows_the_graph_searches_and_focuses_offline() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let page = write_html(dir.path(), "map.html", &[&fixture("input-edges.json"), &fixture("input-kinds.json")]);

    // The expected graph, from the reviewed golden JSON of the same inputs.
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(fixture("json.json")).unwrap()).unwrap();
    let mut want_edges = Vec::new();
    let mut want_nodes = std::collections::BTreeSet::new();
    for edge in golden.as_array().unwrap() {
        let from = node_name(&edge["client"], &edge["namespace"]);
        let to = node_name(&edge["server"], &edge["server_namespace"]);
        want_edges.push(format!("{from} -> {to} {}", edge["count"]));
        want_nodes.extend([from, to]);
    }
    want_edges.sort();

    let all = page_state(browser, &page, "");
    assert_eq!(strings(&all["graphNodes"]), want_nodes.iter().cloned().collect::<Vec<_>>());
    assert_eq!(strings(&all["graphEdges"]), want_edges);
    assert_eq!(strings(&all["visibleNodes"]).len(), want_nodes.len());

    let search = page_state(browser, &page, "search=cart");
    assert_eq!(strings(&search["matches"]), ["cartservice.shop", "redis-cart.shop"]);

    let focus = page_state(browser, &page, "focus=cartservice.shop");
    assert_eq!(focus["focus"], "cartservice.shop");
    assert_eq!(
        strings(&focus["visibleNodes"]),
        ["cartservice.shop", "frontend.shop", "legacy-db.shop", "redis-cart.shop"]
    );
    assert_eq!(focus["visibleEdges"], 3);

    let grouped = page_state(browser, &page, "group");
    assert_eq!(grouped["namespaceGroups"], 4, "default, ml, shop and the outside world: {grouped}");
}

#[test]
#[ignore = "live: needs Debian's chromium (run by `make test`)"]
fn the_200_service_map_loads_and_focuses() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("map.prom");
    std::fs::write(&input, reduce_support::generated_map()).unwrap();
    let input = input.display().to_string();
    let page = write_html(dir.path(), "map.html", &[&input]);
    let state = page_state(browser, &page, "focus=shop-api.shop");
    assert_eq!(state["edges"], reduce_support::EDGES);
    assert_eq!(state["nodes"], 200 + 1 + 6, "200 workloads, the API server, 6 outside names");
    assert!(strings(&state["visibleNodes"]).contains(&"kubernetes.default".to_owned()));

    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let shown = write_html(dir.path(), "shown.html", &[&input, "--exclude-server", "kubernetes.default"]);
        let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reduce-html.png");
        let profile = tempfile::tempdir().unwrap();
        let status = chromium_command(browser, profile.path())
            .arg(format!("--screenshot={}", png.display()))
            .arg("--window-size=1400,900")
            .arg(format!("file://{}#focus=shop-api.shop&group", shown.display()))
            .status()
            .unwrap();
        assert!(status.success());
    }
}
