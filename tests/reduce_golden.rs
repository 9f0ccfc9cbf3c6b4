//! Table-driven golden tests of `netmap-reduce`: every directory under `tests/fixtures/reduce/snapshots/` is a case with
//! its inputs (`input*`, passed in name order), optional extra arguments (`args`, one per line) and the expected
//! output of every format. `UPDATE_GOLDEN=1 cargo test --test reduce_golden` rewrites the expected files; review
//! the diff before committing it.

use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::golden;

/// Expected-output file → the arguments that produce it.
const FORMATS: &[(&str, &[&str])] = &[
    ("list.txt", &["--format", "list"]),
    ("intents-v2beta1.yaml", &["--format", "intents"]),
    ("intents-v1alpha3.yaml", &["--format", "intents", "--intents-version", "v1alpha3"]),
    ("json.json", &["--format", "json"]),
    ("dot.dot", &["--format", "dot"]),
    ("mermaid.mmd", &["--format", "mermaid"]),
    ("dot-grouped.dot", &["--format", "dot", "--group-by", "namespace"]),
    ("mermaid-grouped.mmd", &["--format", "mermaid", "--group-by", "namespace"]),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reduce/snapshots")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures/reduce/snapshots exists")
        .map(|entry| entry.expect("readable fixture dir").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    cases
}

/// The inputs and the case's `args`: one argument a line; a line `FORMAT: ARG` applies only to that format
/// (`list: --show-seen`: flags that do not apply to a format are usage errors).
fn case_args(case: &Path, format: &str) -> Vec<String> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(case)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("input"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{}: no input* files", case.display());
    let mut args: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    if let Ok(extra) = std::fs::read_to_string(case.join("args")) {
        for line in extra.lines().filter(|l| !l.is_empty()) {
            match line.split_once(": ") {
                Some((only, arg)) if only == format => args.push(arg.to_owned()),
                Some(_) => {}
                None => args.push(line.to_owned()),
            }
        }
    }
    args
}

fn run(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netmap-reduce")).args(args).output().expect("netmap-reduce runs")
}

#[test]
fn every_case_matches_its_golden_outputs() {
    let mut mismatches = Vec::new();
    for case in cases() {
        let expected_stderr = std::fs::read_to_string(case.join("stderr.txt")).unwrap_or_default();
        for (file, format_args) in FORMATS {
            let mut args = case_args(&case, format_args[1]);
            args.extend(format_args.iter().map(|a| a.to_string()));
            let output = run(&args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{} {file}: exit {:?}: {stderr}", case.display(), output.status);
            assert_eq!(stderr, expected_stderr, "{} {file}: stderr", case.display());
            let stdout = String::from_utf8(output.stdout).unwrap();
            mismatches.extend(golden::check(&case.join(file), stdout.as_bytes()));
        }
    }
    assert!(mismatches.is_empty(), "golden mismatches (UPDATE_GOLDEN=1 to accept):\n{}", mismatches.join("\n"));
}

#[test]
fn output_dir_writes_one_file_per_client_matching_the_stream() {
    for case in cases() {
        let stream = std::fs::read_to_string(case.join("intents-v2beta1.yaml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut args = case_args(&case, "intents");
        args.extend(["--format", "intents", "--output-dir"].map(String::from));
        args.push(dir.path().display().to_string());
        let output = run(&args);
        assert!(output.status.success(), "{}: {}", case.display(), String::from_utf8_lossy(&output.stderr));
        assert!(output.stdout.is_empty());
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort_by_key(|p| file_order_key(p));
        // Each file starts with the marker line that --prune looks for, then the document of the stream.
        let joined: Vec<String> = files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                let (marker, document) = text.split_once('\n').unwrap();
                assert_eq!(marker, network_mapper::reduce::outdir::MARKER);
                document.to_owned()
            })
            .collect();
        assert_eq!(joined.join("---\n"), stream, "{}", case.display());
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            let name = format!(
                "{}.{}.yaml",
                doc["spec"]["workload"]["name"].as_str().unwrap(),
                doc["metadata"]["namespace"].as_str().unwrap()
            );
            assert_eq!(file.file_name().unwrap().to_string_lossy(), name);
        }
    }
}

/// The stream is ordered by (client, namespace); file names are `<client>.<namespace>.yaml`.
fn file_order_key(path: &Path) -> (String, String) {
    let name = path.file_name().unwrap().to_string_lossy().trim_end_matches(".yaml").to_owned();
    let (client, namespace) = name.split_once('.').unwrap();
    (client.to_owned(), namespace.to_owned())
}
