//! `--format html` in a real browser: Debian's `chromium`, driven by `scripts/html-browser/map.mjs`
//! (playwright-core, which downloads no browser; both installed by `scripts/setup.sh`) at a 1400×1000 viewport.
//! The page writes what it shows into `#netmap-state` (JSON), with the on-screen geometry of every label and
//! edge; the tests read it back:
//! - a small map: every expected node and edge with its count, search (through the search box's input event),
//!   focus (a tap on the node), grouping into namespace boxes, no request made, no script error;
//! - the generated 200-service map, without focusing: by default every workload's name is drawn at a legible
//!   size, inside the window, overlapping no other name, and no call passes behind a workload it does not join;
//!   hovering a workload shows its calls' counts; grouped, every workload is in a namespace whose label is
//!   legible and free, with the summed counts on the calls between namespaces, which pass behind no other
//!   namespace; focused, the workload, its neighbours and every count. The default, grouped and focused
//!   screenshots are reviewed goldens (`docs/reduce-html/*.png`; `UPDATE_GOLDEN=1` rewrites them), compared
//!   tolerantly by `scripts/html-browser/compare.mjs` (8×8-pixel blocks' mean luminance); each run leaves its
//!   screenshots in `target/reduce-html/` to look at.
//!
//! Live tests (`#[ignore]` in a plain `cargo test`; `make test` runs them and fails without the browser).

mod reduce_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use testkit::live::{self, Need};

const NEEDS: &[Need] = &[Need::File("/usr/bin/chromium", "chromium"), Need::Tool("node", "nodejs")];
/// The smallest on-screen font size, in CSS pixels, counted as legible.
const LEGIBLE_PX: f64 = 9.0;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Opens `page` once per view (`{"fragment", "hover"?, "screenshot"?, "golden"?}`) and returns each view's state,
/// after checking that the page loaded, ran without an error and requested nothing.
fn browse(page: &Path, views: Value) -> Vec<Value> {
    live::require(NEEDS);
    let driver = root().join("scripts/html-browser");
    assert!(
        driver.join("node_modules/playwright-core").is_dir(),
        "{} has no node_modules/playwright-core: run scripts/setup.sh (make test does)",
        driver.display()
    );
    let spec = json!({"page": page, "viewport": [1400, 1000], "views": views});
    let output = Command::new("node").arg(driver.join("map.mjs")).arg(spec.to_string()).output().unwrap();
    assert!(output.status.success(), "map.mjs failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let states: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    for state in &states {
        assert_eq!(state["ready"], true, "{state}");
        assert_eq!(state["errors"], json!([]), "script errors");
        assert_eq!(state["pageErrors"], json!([]), "page errors");
        assert_eq!(state["resources"], json!([]), "the page requested something");
    }
    states
}

fn fixture(name: &str) -> String {
    root().join("tests/fixtures/reduce/snapshots/api-vector").join(name).display().to_string()
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
#[ignore = "live: needs Debian's chromium and node (run by `make test`)"]
fn the_html_map_shows_the_graph_searches_and_focuses_offline() {
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

    let views = json!([{"fragment": ""}, {"fragment": "search=cart"}, {"fragment": "focus=cartservice.shop"},
        {"fragment": "group"}]);
    let [all, search, focus, grouped] = <[Value; 4]>::try_from(browse(&page, views)).unwrap();
    assert_eq!(all["view"], "layered", "a small map is the layered graph");
    assert_eq!(strings(&all["graphNodes"]), want_nodes.iter().cloned().collect::<Vec<_>>());
    assert_eq!(strings(&all["graphEdges"]), want_edges);
    assert_eq!(strings(&all["visibleNodes"]).len(), want_nodes.len());

    assert_eq!(strings(&search["matches"]), ["cartservice.shop", "redis-cart.shop"]);

    assert_eq!(focus["focus"], "cartservice.shop");
    assert_eq!(
        strings(&focus["visibleNodes"]),
        ["cartservice.shop", "frontend.shop", "legacy-db.shop", "redis-cart.shop"]
    );
    assert_eq!(focus["visibleEdges"], 3);

    assert_eq!(grouped["namespaceGroups"], 4, "default, ml, shop and the outside world: {grouped}");
}

#[test]
#[ignore = "live: needs Debian's chromium and node (run by `make test`)"]
fn the_200_service_map_reads_without_focusing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("map.prom");
    std::fs::write(&input, reduce_support::generated_map()).unwrap();
    let page = write_html(dir.path(), "map.html", &[&input.display().to_string()]);
    let shots = root().join("target/reduce-html");
    std::fs::create_dir_all(&shots).unwrap();
    let view = |name: &str, fragment: &str| {
        json!({"fragment": fragment, "screenshot": shots.join(format!("{name}.png")),
            "golden": root().join(format!("docs/reduce-html/{name}.png"))})
    };
    let views = json!([view("default", ""), view("grouped", "group"), view("focused", "focus=shop-api.shop"),
        {"fragment": "", "hover": "shop-api.shop"}]);
    let [default, grouped, focused, hovered] = <[Value; 4]>::try_from(browse(&page, views)).unwrap();
    for (name, state) in [("default", &default), ("grouped", &grouped), ("focused", &focused)] {
        let golden = &state["golden"];
        assert_eq!(
            golden["matches"], true,
            "target/reduce-html/{name}.png differs from the reviewed docs/reduce-html/{name}.png: {}; look at both, \
             and if the new one is right, UPDATE_GOLDEN=1 cargo test --test reduce_html -- --include-ignored",
            golden["reason"]
        );
    }
    assert_eq!(default["edges"], reduce_support::EDGES);
    assert_eq!(default["nodes"], 200 + 1 + 6, "200 workloads, the API server, 6 outside names");

    // Default: every workload's own name, legible, on screen, alone; calls pass behind no other workload.
    assert_eq!(default["view"], "ring");
    let geometry = Geometry::of(&default);
    let names = strings(&default["graphNodes"]);
    let labelled: Vec<&Label> = names.iter().map(|name| geometry.label(name)).collect();
    geometry.assert_legible_and_apart(&labelled);
    geometry.assert_edges_avoid_unrelated_nodes(reduce_support::EDGES);

    // Hovering a workload writes the counts on its calls.
    let lit = Geometry::of(&hovered);
    let mine: Vec<&Curve> =
        lit.curves.iter().filter(|c| c.from == "shop-api.shop" || c.to == "shop-api.shop").collect();
    assert!(mine.len() >= 5, "shop-api has calls: {}", mine.len());
    for curve in &mine {
        assert!(curve.label.parse::<f64>().is_ok() && curve.px >= LEGIBLE_PX - 1.0, "no count on {curve:?}");
    }
    assert!(lit.curves.iter().filter(|c| !mine.contains(c)).all(|c| c.label.is_empty()));

    // Grouped: every workload in a namespace whose label is legible and free; summed counts between namespaces.
    assert_eq!(grouped["view"], "namespaces");
    let geometry = Geometry::of(&grouped);
    let mut members: Vec<String> = grouped["namespaceMembers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|ns| {
            let namespace = ns["namespace"].as_str().unwrap();
            assert!(geometry.label(&format!("ns:{namespace}")).text.starts_with(namespace));
            strings(&ns["workloads"])
        })
        .collect();
    members.sort();
    assert_eq!(members, names, "every workload is in exactly one namespace group");
    geometry.assert_legible_and_apart(&geometry.labels.iter().collect::<Vec<_>>());
    geometry.assert_edges_avoid_unrelated_nodes(geometry.curves.len());
    for curve in &geometry.curves {
        assert!(curve.label.parse::<f64>().is_ok() || curve.label.ends_with('k'), "no count on {curve:?}");
        assert!(curve.px >= LEGIBLE_PX - 1.0, "count too small on {curve:?}");
    }

    // Focused: the workload, its neighbours, every call's count.
    assert_eq!(focused["view"], "focus");
    assert_eq!(focused["focus"], "shop-api.shop");
    let geometry = Geometry::of(&focused);
    let shown = strings(&focused["visibleNodes"]);
    assert!(shown.contains(&"kubernetes.default".to_owned()) && shown.len() > 5, "{shown:?}");
    geometry.assert_legible_and_apart(&shown.iter().map(|n| geometry.label(n)).collect::<Vec<_>>());
    assert!(geometry.curves.iter().all(|c| c.label.parse::<f64>().is_ok() && c.px >= LEGIBLE_PX - 1.0));
    assert!(geometry.curves.iter().all(|c| c.from == "shop-api.shop" || c.to == "shop-api.shop"));
}

/// A label as drawn: centre, size and rotation in CSS pixels (`h` is the line height).
#[derive(Debug)]
struct Label {
    node: String,
    text: String,
    px: f64,
    centre: (f64, f64),
    size: (f64, f64),
    rot: f64,
}

#[derive(Debug, PartialEq)]
struct Curve {
    from: String,
    to: String,
    label: String,
    px: f64,
    points: Vec<(f64, f64)>,
}

/// A node's shape as drawn, as a box.
#[derive(Debug)]
struct Dot {
    node: String,
    centre: (f64, f64),
    size: (f64, f64),
}

struct Geometry {
    viewport: [f64; 4],
    labels: Vec<Label>,
    dots: Vec<Dot>,
    curves: Vec<Curve>,
}

fn f(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"))
}

fn point(value: &Value) -> (f64, f64) {
    (f(&value[0]), f(&value[1]))
}

impl Geometry {
    fn of(state: &Value) -> Geometry {
        let g = &state["geometry"];
        let all = |key: &str| g[key].as_array().unwrap_or_else(|| panic!("no geometry.{key}: {state}")).clone();
        let viewport = g["viewport"].as_array().unwrap();
        Geometry {
            viewport: [f(&viewport[0]), f(&viewport[1]), f(&viewport[2]), f(&viewport[3])],
            labels: all("labels")
                .iter()
                .map(|l| Label {
                    node: l["node"].as_str().unwrap().into(),
                    text: l["text"].as_str().unwrap().into(),
                    px: f(&l["px"]),
                    centre: (f(&l["x"]), f(&l["y"])),
                    // The glyphs' box: the text's width and one font size per line (line spacing aside).
                    size: (f(&l["w"]), f(&l["h"]) / 1.2),
                    rot: f(&l["rot"]),
                })
                .collect(),
            dots: all("dots")
                .iter()
                .map(|d| Dot {
                    node: d["node"].as_str().unwrap().into(),
                    centre: (f(&d["x"]), f(&d["y"])),
                    size: (f(&d["w"]), f(&d["h"])),
                })
                .collect(),
            curves: all("curves")
                .iter()
                .map(|c| Curve {
                    from: c["from"].as_str().unwrap().into(),
                    to: c["to"].as_str().unwrap().into(),
                    label: c["label"].as_str().unwrap_or_default().into(),
                    px: f(&c["px"]),
                    points: c["points"].as_array().unwrap().iter().map(point).collect(),
                })
                .collect(),
        }
    }

    fn label(&self, node: &str) -> &Label {
        self.labels.iter().find(|l| l.node == node).unwrap_or_else(|| panic!("{node} has no label on screen"))
    }

    /// Each of `labels` is at least LEGIBLE_PX and wholly inside the map's part of the window, and no label of
    /// the view overlaps another label or a node other than its own.
    fn assert_legible_and_apart(&self, labels: &[&Label]) {
        let [x1, y1, x2, y2] = self.viewport;
        for label in labels {
            assert!(label.px >= LEGIBLE_PX, "{} is drawn at {:.1}px, under {LEGIBLE_PX}px", label.node, label.px);
            for (x, y) in corners(label) {
                assert!(
                    x >= x1 - 0.5 && x <= x2 + 0.5 && y >= y1 - 0.5 && y <= y2 + 0.5,
                    "{} is cut by the window's edge",
                    label.node
                );
            }
        }
        for (i, a) in self.labels.iter().enumerate() {
            for b in &self.labels[i + 1..] {
                assert!(!overlap(a, b), "the labels of {} and {} overlap", a.node, b.node);
            }
            for dot in self.dots.iter().filter(|d| d.node != a.node) {
                assert!(!overlap(a, &dot.as_box()), "the label of {} covers {}", a.node, dot.node);
            }
        }
    }

    /// No call passes behind a node, or a node's label, that it does not join.
    fn assert_edges_avoid_unrelated_nodes(&self, expected: usize) {
        assert_eq!(self.curves.len(), expected, "every call is drawn");
        for curve in &self.curves {
            let ends = [curve.from.as_str(), curve.to.as_str()];
            for p in samples(&curve.points) {
                for dot in self.dots.iter().filter(|d| !ends.contains(&d.node.as_str())) {
                    assert!(
                        !inside(&dot.as_box(), p, 0.0),
                        "{} -> {} passes behind {}",
                        curve.from,
                        curve.to,
                        dot.node
                    );
                }
                for label in self.labels.iter().filter(|l| !ends.contains(&l.node.as_str())) {
                    assert!(
                        !inside(label, p, 0.0),
                        "{} -> {} crosses the label of {}",
                        curve.from,
                        curve.to,
                        label.node
                    );
                }
            }
        }
    }
}

impl Dot {
    fn as_box(&self) -> Label {
        Label { node: self.node.clone(), text: String::new(), px: 0.0, centre: self.centre, size: self.size, rot: 0.0 }
    }
}

/// The drawn path of an edge: a straight line, or a quadratic Bézier through its one control point, sampled.
fn samples(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    match points {
        [a, b] => (0..=32).map(|i| lerp(*a, *b, i as f64 / 32.0)).collect(),
        [a, c, b] => (0..=32)
            .map(|i| {
                let t = i as f64 / 32.0;
                lerp(lerp(*a, *c, t), lerp(*c, *b, t), t)
            })
            .collect(),
        other => panic!("an edge drawn with {} points", other.len()),
    }
}

fn lerp(a: (f64, f64), b: (f64, f64), t: f64) -> (f64, f64) {
    (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
}

fn axes(label: &Label) -> [(f64, f64); 2] {
    let (sin, cos) = label.rot.sin_cos();
    [(cos, sin), (-sin, cos)]
}

fn corners(label: &Label) -> [(f64, f64); 4] {
    let [u, v] = axes(label);
    let (w, h) = (label.size.0 / 2.0, label.size.1 / 2.0);
    let (cx, cy) = label.centre;
    [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)]
        .map(|(s, t)| (cx + s * w * u.0 + t * h * v.0, cy + s * w * u.1 + t * h * v.1))
}

/// Whether two rotated label boxes overlap (separating axis theorem; touching is not overlapping).
fn overlap(a: &Label, b: &Label) -> bool {
    let (ca, cb) = (corners(a), corners(b));
    axes(a).into_iter().chain(axes(b)).all(|axis| {
        let project = |cs: &[(f64, f64); 4]| {
            let values = cs.map(|(x, y)| x * axis.0 + y * axis.1);
            (values.iter().cloned().fold(f64::MAX, f64::min), values.iter().cloned().fold(f64::MIN, f64::max))
        };
        let ((a0, a1), (b0, b1)) = (project(&ca), project(&cb));
        a0 < b1 - 0.25 && b0 < a1 - 0.25
    })
}

/// Whether a circle of `radius` around `p` reaches into the label's box.
fn inside(label: &Label, p: (f64, f64), radius: f64) -> bool {
    let [u, v] = axes(label);
    let (dx, dy) = (p.0 - label.centre.0, p.1 - label.centre.1);
    (dx * u.0 + dy * u.1).abs() < label.size.0 / 2.0 + radius
        && (dx * v.0 + dy * v.1).abs() < label.size.1 / 2.0 + radius
}
