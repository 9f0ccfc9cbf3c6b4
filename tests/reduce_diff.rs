//! What changed: `diff OLD NEW` on files (golden output, exit 1 on new edges, 0 otherwise, 2 for trouble),
//! `--declared` (the declared edges that were not seen; golden output) and `--output-dir --prune` (files of
//! clients that are gone are removed, files without netmap-reduce's marker are never overwritten or removed, an
//! empty map prunes only with `--allow-empty`). The live `diff` of two windows is in
//! tests/reduce_prometheus.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reduce")
}

fn snapshot(case: &str, file: &str) -> String {
    fixtures().join("snapshots").join(case).join(file).display().to_string()
}

fn reduce(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netmap-reduce")).args(args).output().expect("netmap-reduce runs")
}

fn check_golden(name: &str, actual: &str) {
    let path = fixtures().join("diff").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_GOLDEN=1 to create it", path.display()));
    assert_eq!(expected, actual, "{} (UPDATE_GOLDEN=1 to accept)", path.display());
}

#[test]
fn diff_of_two_files_lists_new_and_gone_edges_and_exits_1_on_new_ones() {
    let (a, b) = (snapshot("exposition-nodes", "input-node-a.prom"), snapshot("exposition-nodes", "input-node-b.txt"));
    let output = reduce(&["diff", &a, &b]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    check_golden("node-a-to-node-b.txt", &String::from_utf8(output.stdout).unwrap());
    assert!(stderr.contains("2 new, 3 gone, 2 in both."), "{stderr}");

    // Only gone edges: exit 0. The same filters apply to both sides.
    let back = reduce(&["diff", &b, &a, "-n", "monitoring"]);
    assert_eq!(back.status.code(), Some(0), "{}", String::from_utf8_lossy(&back.stderr));
    assert_eq!(
        String::from_utf8(back.stdout).unwrap(),
        "- prometheus-operator in namespace monitoring calls kubernetes in namespace default\n"
    );
    let same = reduce(&["diff", &a, &a]);
    assert_eq!((same.status.code(), same.stdout.len()), (Some(0), 0));

    // A bad side is bad input, not a diff.
    let bad = reduce(&["diff", &a, "/etc/passwd"]);
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
    assert_eq!(reduce(&["diff", &a]).status.code(), Some(2));
}

#[test]
fn an_unreachable_source_is_trouble_exit_2_never_a_finding() {
    // Exit 1 means "new edges": a pipeline gate must not mistake an outage for them (diff(1) uses 2 the same way).
    let url = format!("http://127.0.0.1:{}", testkit::http::free_port());
    let output = reduce(&["diff", "--prometheus", &url, "--window", "1d", "--offset", "7d"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&url) && stderr.contains("cannot query Prometheus"), "{stderr}");
    let missing = reduce(&["diff", "/nonexistent/old.json", &snapshot("api-vector", "input-edges.json")]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn output_dir_never_overwrites_a_file_without_the_marker_and_an_empty_map_prunes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let input = snapshot("exposition-nodes", "input-node-a.prom");
    let write =
        |extra: &[&str]| reduce(&[&[input.as_str(), "--format", "intents", "--output-dir", &out][..], extra].concat());
    let mine = dir.path().join("cartservice.otterize-ecom-demo.yaml");
    std::fs::write(&mine, "kind: ClientIntents\n").unwrap();
    let refused = write(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&mine.display().to_string()) && stderr.contains("nothing was written"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing else was written");
    std::fs::remove_file(&mine).unwrap();
    assert!(write(&[]).status.success());
    let written = std::fs::read_dir(dir.path()).unwrap().count();

    let empty = write(&["-n", "nonexistent", "--prune"]);
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert_eq!(empty.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the map is empty") && stderr.contains("--allow-empty"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), written, "nothing was removed");
    let allowed = write(&["-n", "nonexistent", "--prune", "--allow-empty"]);
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "every marked file is removed");
}

#[test]
fn declared_lists_the_declared_edges_that_were_not_seen() {
    let intents = fixtures().join("declared/intents").display().to_string();
    let output = reduce(&[&snapshot("api-vector", "input-edges.json"), "--declared", &intents]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    check_golden("declared-unseen.txt", &String::from_utf8(output.stdout).unwrap());
    assert!(stderr.contains("declared edge(s) not seen."), "{stderr}");
}

#[test]
fn prune_removes_only_its_own_files_of_clients_that_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let inputs = [snapshot("exposition-nodes", "input-node-a.prom"), snapshot("exposition-nodes", "input-node-b.txt")];
    let first = reduce(&[&inputs[0], &inputs[1], "--format", "intents", "--output-dir", &out]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let hand_written = dir.path().join("hand-written.otterize-ecom-demo.yaml");
    std::fs::write(&hand_written, "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\n").unwrap();
    let notes = dir.path().join("README.md");
    std::fs::write(&notes, "notes\n").unwrap();
    let monitoring = dir.path().join("prometheus-operator.monitoring.yaml");
    assert!(monitoring.exists());

    // Without --prune, nothing is removed.
    let keep =
        reduce(&[&inputs[0], &inputs[1], "--format", "intents", "--output-dir", &out, "-n", "otterize-ecom-demo"]);
    assert!(keep.status.success());
    assert!(monitoring.exists());

    let pruned = reduce(&[
        &inputs[0],
        &inputs[1],
        "--format",
        "intents",
        "--output-dir",
        &out,
        "-n",
        "otterize-ecom-demo",
        "--prune",
    ]);
    let stderr = String::from_utf8_lossy(&pruned.stderr);
    assert!(pruned.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("removed {}", monitoring.display())), "{stderr}");
    assert!(!monitoring.exists());
    assert!(hand_written.exists() && notes.exists(), "files without the marker stay");
    assert!(dir.path().join("frontend.otterize-ecom-demo.yaml").exists());

    assert_eq!(reduce(&[&inputs[0], "--prune"]).status.code(), Some(2), "--prune needs --output-dir");
}
