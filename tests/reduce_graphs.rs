//! Graphs that read at 200 services. A generated map (200 workloads in 10 namespaces, 861 edges, every workload
//! calling the API server) is rendered by `netmap-reduce --format dot` with `--group-by namespace` and
//! with `--focus`; Graphviz (`dot`, installed by `scripts/setup.sh`) lays each out and the test checks the
//! picture sizes. The grouped and focused dot files are golden files (`UPDATE_GOLDEN=1` rewrites them);
//! docs/reduce.md quotes the sizes this test prints.

use std::path::{Path, PathBuf};
use std::process::Command;

mod reduce_support;

use reduce_support::{EDGES, generated_map};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reduce/graphs")
}

fn reduce(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_netmap-reduce")).args(args).output().expect("netmap-reduce runs");
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_GOLDEN=1 to create it", path.display()));
    assert!(expected == actual, "{} differs (UPDATE_GOLDEN=1 to accept):\n{actual}", path.display());
}

/// Width and height in pixels of Graphviz's PNG rendering of `dot_text` (the IHDR chunk).
fn png_size(dir: &Path, name: &str, dot_text: &str) -> (u32, u32) {
    let source = dir.join(format!("{name}.dot"));
    let png = dir.join(format!("{name}.png"));
    std::fs::write(&source, dot_text).unwrap();
    let status = Command::new("dot").arg("-Tpng").arg("-o").arg(&png).arg(&source).status();
    let status =
        status.unwrap_or_else(|e| panic!("Graphviz `dot` is needed (scripts/setup.sh installs graphviz): {e}"));
    assert!(status.success(), "dot failed on {name}");
    let bytes = std::fs::read(&png).unwrap();
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn a_200_service_map_reads_grouped_and_focused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("map.prom");
    std::fs::write(&input, generated_map()).unwrap();
    // `NETMAP_KEEP_GENERATED=DIR` keeps the generated map, to render it by hand (docs/reduce.md).
    if let Some(keep) = std::env::var_os("NETMAP_KEEP_GENERATED") {
        std::fs::copy(&input, Path::new(&keep).join("generated-200.prom")).unwrap();
    }
    let input = input.display().to_string();
    let json: serde_json::Value = serde_json::from_str(&reduce(&[&input, "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), EDGES);

    let grouped = reduce(&[&input, "--format", "dot", "--group-by", "namespace"]);
    let focused = reduce(&[&input, "--format", "dot", "--focus", "shop-api", "--exclude-server", "kubernetes.default"]);
    check_golden("generated-grouped.dot", &grouped);
    check_golden("generated-focus-shop-api.dot", &focused);

    // The whole map is not laid out here: Graphviz needs minutes for its 861 edges (docs/reduce.md has the
    // figure and the command).
    let sizes = [
        ("grouped", png_size(dir.path(), "grouped", &grouped)),
        ("focused", png_size(dir.path(), "focused", &focused)),
    ];
    for (name, (w, h)) in sizes {
        println!("{name}: {w}x{h} px");
    }
    for (name, (w, h)) in &sizes {
        assert!(*w <= 2500 && *h <= 2500, "{name} is {w}x{h} px: too large to read");
    }
    // Grouped: 10 namespaces + `default` (the API server) + the outside world, edges summed.
    assert_eq!(grouped.matches("shape=box3d").count(), 12, "{grouped}");
    assert!(grouped.contains(" edges, "), "edge labels say how many edges a line stands for");
    assert!(!focused.contains("\"kubernetes\\nService\""), "--exclude-server removed the API server");
}
