//! Wrong inputs never pass as an empty map: every input that holds no network-mapper series, an empty input, a
//! URL without a scheme and renamed labels (live or not) exit 2 with a message naming the input and what it
//! holds; a valid map that the filters empty exits 0 and says what was read and kept. One table, one row per
//! input a new user tried.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn reduce_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netmap-reduce"))
        .args(args)
        .env("NO_PROXY", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netmap-reduce runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn fixture(case: &str, name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reduce/snapshots")
        .join(case)
        .join(name)
        .display()
        .to_string()
}

/// Serves `body` as a Prometheus API answer to every request; returns the base URL.
fn serve_api(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    format!("http://127.0.0.1:{port}")
}

const UP_VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"a:9090","job":"prometheus"},"value":[1700000000,"1"]},{"metric":{"__name__":"up","instance":"b:9100","job":"node"},"value":[1700000000,"0"]}]}}"#;
const RENAMED: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"client":"a","namespace":"monitoring","exported_namespace":"shop","server":"b","server_namespace":"shop"},"value":[1700000000,"2"]}]}}"#;
const LOGIN_PAGE: &str =
    "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form>user</form></body></html>\n";
const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n";
const SELF_METRICS_ONLY: &str = "# TYPE network_mapper_packets counter\nnetwork_mapper_packets_total 12\n# EOF\n";

/// (what, args with `FILE` standing for the written input, input text, exit code, stderr must contain).
type Row = (&'static str, Vec<String>, Option<String>, i32, Vec<String>);

fn rows(dir: &Path) -> Vec<Row> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let own_json = reduce_with_stdin(&[&fixture("api-vector", "input-edges.json"), "--format", "json"], b"").stdout;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let renamed_url = serve_api(RENAMED);
    vec![
        (
            "a JSON array of numbers",
            s(&["FILE"]),
            Some("[1,2]".into()),
            2,
            s(&["FILE", "item 1 is not an edge of netmap-reduce --format json output"]),
        ),
        (
            "README.md",
            s(&["FILE"]),
            Some(readme),
            2,
            s(&["FILE", "is not a Prometheus text exposition", "is not a sample"]),
        ),
        ("/etc/passwd", s(&["FILE"]), Some(PASSWD.into()), 2, s(&["FILE", "line 1 is not a sample: \"root:x:0:0"])),
        ("an HTML login page", s(&["FILE"]), Some(LOGIN_PAGE.into()), 2, s(&["FILE", "HTML or XML document"])),
        ("a vector of `up`", s(&["FILE"]), Some(UP_VECTOR.into()), 2, s(&["FILE", "2 series of other metrics (up)"])),
        ("an empty file", s(&["FILE"]), Some(String::new()), 2, s(&["FILE", "the input is empty"])),
        ("empty stdin", s(&["-"]), None, 2, s(&["<stdin>: the input is empty"])),
        ("a directory", s(&[&dir.display().to_string()]), None, 2, s(&["is a directory"])),
        (
            "a URL without a scheme",
            s(&["--prometheus", "127.0.0.1:9090"]),
            None,
            2,
            s(&["no scheme", "--prometheus http://127.0.0.1:9090"]),
        ),
        (
            "renamed labels in a file",
            s(&["FILE"]),
            Some(RENAMED.into()),
            2,
            s(&["FILE", "honor_labels: true", "--skip-renamed", "--window"]),
        ),
        (
            "renamed labels live",
            s(&["--prometheus", &renamed_url]),
            None,
            2,
            s(&[&renamed_url, "honor_labels: true", "--skip-renamed"]),
        ),
        (
            "renamed labels skipped",
            s(&["FILE", "--skip-renamed"]),
            Some(RENAMED.into()),
            0,
            s(&["No connections found", "--skip-renamed left out 1 series"]),
        ),
        (
            "renamed labels skipped live",
            s(&["--prometheus", &renamed_url, "--skip-renamed"]),
            None,
            0,
            s(&["No connections found", "--skip-renamed left out"]),
        ),
        (
            "self-metrics only: an empty map",
            s(&["FILE"]),
            Some(SELF_METRICS_ONLY.into()),
            0,
            s(&["No connections found (read 0 edge(s))"]),
        ),
        ("own json output reads back", s(&["FILE"]), Some(String::from_utf8(own_json).unwrap()), 0, vec![]),
        ("own json of an empty map", s(&["FILE"]), Some("[]\n".into()), 0, s(&["No connections found"])),
        (
            "-n nonexistent",
            s(&[&fixture("exposition-nodes", "input-node-a.prom"), "-n", "nonexistent"]),
            None,
            0,
            s(&["No connections found (read ", " from client namespaces ", "--namespace nonexistent kept 0"]),
        ),
    ]
}

#[test]
fn every_bad_input_exits_2_and_every_empty_map_says_what_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (what, args, text, code, needles) in rows(dir.path()) {
        let file = dir.path().join("input").display().to_string();
        if let Some(text) = &text {
            std::fs::write(&file, text).unwrap();
        }
        let args: Vec<String> = args.iter().map(|a| if a == "FILE" { file.clone() } else { a.clone() }).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = reduce_with_stdin(&args, b"");
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() != Some(code) {
            failures.push(format!("{what}: exit {:?}, want {code}: {stderr}", output.status.code()));
        }
        for needle in needles.iter().map(|n| if n == "FILE" { &file } else { n }) {
            if !stderr.contains(needle.as_str()) {
                failures.push(format!("{what}: {needle:?} not in stderr: {stderr}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn json_of_an_empty_map_is_valid_json_and_graphs_stay_valid() {
    let input = fixture("exposition-nodes", "input-node-a.prom");
    for (format, want) in [("json", "[]\n"), ("list", ""), ("intents", "")] {
        let output = reduce_with_stdin(&[&input, "-n", "nonexistent", "--format", format], b"");
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(String::from_utf8(output.stdout).unwrap(), want, "{format}");
    }
    let dot = reduce_with_stdin(&[&input, "-n", "nonexistent", "--format", "dot"], b"").stdout;
    assert!(String::from_utf8(dot).unwrap().starts_with("digraph network_map {"));
}

#[test]
fn own_json_round_trips_with_kinds_and_times() {
    let matrix = fixture("matrix", "input.json");
    let first = reduce_with_stdin(&[&matrix, "--format", "json"], b"").stdout;
    let text = String::from_utf8(first.clone()).unwrap();
    assert!(text.contains("\"first_seen\": \"") && text.contains("\"last_seen\": \""), "{text}");
    let again = reduce_with_stdin(&["-", "--format", "json"], &first);
    assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(again.stdout, first);
    let vector = reduce_with_stdin(
        &[&fixture("api-vector", "input-edges.json"), &fixture("api-vector", "input-kinds.json"), "--format", "json"],
        b"",
    )
    .stdout;
    let back = reduce_with_stdin(&["-", "--format", "intents"], &vector).stdout;
    let direct = reduce_with_stdin(
        &[
            &fixture("api-vector", "input-edges.json"),
            &fixture("api-vector", "input-kinds.json"),
            "--format",
            "intents",
        ],
        b"",
    )
    .stdout;
    assert_eq!(String::from_utf8(back).unwrap(), String::from_utf8(direct).unwrap());
}
