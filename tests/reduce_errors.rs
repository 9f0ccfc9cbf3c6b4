//! `netmap-reduce` on bad input and failing servers: every failure names the input and the problem and exits
//! 2 (input, usage) or 1 (network, I/O). Also the live client's request: query, auth and extra headers, checked
//! against a tiny HTTP server on loopback.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use testkit::http::{Seen, free_port};

fn reduce(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netmap-reduce"))
        .args(args)
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .expect("netmap-reduce runs")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn assert_fails(output: &Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in stderr: {stderr}");
    }
}

#[test]
fn bad_inputs_exit_2_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let edge = r#"network_mapper_edge_total{client="a",namespace="s",server="b",server_namespace="s"}"#;
    let cases: &[(&str, String, &[&str])] = &[
        ("broken.json", "{\"status\":\"success\",\"data\":".into(), &["broken.json", "malformed Prometheus API response"]),
        (
            "error.json",
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#.into(),
            &["error.json", "is an error (bad_data): 1:5: parse error"],
        ),
        ("scalar.json", r#"{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}"#.into(), &["scalar.json", "\"scalar\""]),
        ("bad.prom", format!("# TYPE x counter\n{edge} 1\n{edge} one\n"), &["bad.prom", "line 3", "invalid sample value"]),
        (
            "renamed.json",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"client":"a","namespace":"monitoring","exported_namespace":"s","server":"b","server_namespace":"s"},"value":[1,"1"]}]}}"#.into(),
            &["renamed.json", "honor_labels: true"],
        ),
        (
            "other.json",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"x"},"value":[1,"1"]}]}}"#.into(),
            &["other.json", "neither the edge labels"],
        ),
    ];
    for (name, text, needles) in cases {
        let path = write(dir.path(), name, text);
        assert_fails(&reduce(&[&path]), 2, needles);
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json").display().to_string();
    assert_fails(&reduce(&[&missing]), 2, &["nope.json", "no such file"]);
    assert_fails(&reduce(&[]), 2, &["no input"]);
    let empty = write(dir.path(), "e.json", r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#);
    assert_fails(
        &reduce(&[&empty, "--output-dir", "x"]),
        2,
        &["--output-dir does not apply to --format list", "goes with --format intents"],
    );
    assert_fails(&reduce(&[&empty, "--format", "yaml"]), 2, &["yaml"]);
    assert_fails(&reduce(&["--declared-rules-from", &missing]), 2, &["nope.json"]);
    let bad_yaml = write(dir.path(), "bad.yaml", "apiVersion: [\n");
    assert_fails(&reduce(&["--declared-rules-from", &bad_yaml]), 2, &["bad.yaml", "document 1: malformed YAML"]);
}

#[test]
fn stdin_is_read_with_a_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netmap-reduce"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let text = "network_mapper_edge_total{client=\"a\",namespace=\"s\",server=\"b\",server_namespace=\"t\"} 1\n# EOF\n";
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "a in namespace s calls:\n  - b in namespace t\n");
}

/// Serves `respond(request head)` as JSON on a loopback port; returns the port and the request heads seen.
fn serve(respond: impl Fn(&str) -> (u16, String) + Send + 'static) -> (u16, Seen) {
    testkit::http::serve(move |head| {
        let (status, body) = respond(head);
        (status, "application/json", body)
    })
}

#[test]
fn an_unreachable_server_exits_1() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    assert_fails(&reduce(&["--prometheus", &url]), 1, &[&url, "cannot query Prometheus", "onnection refused"]);
}

#[test]
fn http_errors_exit_1_with_the_servers_reason() {
    let (port, _) = serve(|_| (401, r#"{"status":"error","errorType":"unauthorized","error":"no token"}"#.into()));
    let url = format!("http://127.0.0.1:{port}");
    assert_fails(&reduce(&["--prometheus", &url]), 1, &[&url, "HTTP 401", "--bearer-token-file", "no token"]);
    let (port, _) = serve(|_| (502, "<html>bad gateway</html>".into()));
    assert_fails(&reduce(&["--prometheus", &format!("http://127.0.0.1:{port}/")]), 1, &["HTTP 502", "bad gateway"]);
    let (port, _) = serve(|_| (200, r#"{"status":"error","errorType":"timeout","error":"query timed out"}"#.into()));
    assert_fails(&reduce(&["--prometheus", &format!("http://127.0.0.1:{port}")]), 1, &["timeout: query timed out"]);
}

const EDGES: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"client":"a","namespace":"s","server":"b","server_namespace":"s"},"value":[1,"3"]}]}}"#;
const KINDS: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"workload":"b","namespace":"s","kind":"StatefulSet"},"value":[1,"1"]}]}}"#;

const NO_CONNECTIONS: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;

fn answer_queries(head: &str) -> (u16, String) {
    if head.contains("network_mapper_edge_total") {
        (200, EDGES.into())
    } else if head.contains("network_mapper_edge_connections_total") {
        (200, NO_CONNECTIONS.into())
    } else {
        (200, KINDS.into())
    }
}

#[test]
fn the_live_client_sends_the_queries_auth_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", "s3cret\n");
    let (port, seen) = serve(answer_queries);
    let url = format!("http://127.0.0.1:{port}/prometheus");
    let output = reduce(&[
        "--prometheus",
        &url,
        "--window",
        "2h",
        "--bearer-token-file",
        &token,
        "--header",
        "X-Scope-OrgID: tenant-1",
        "--format",
        "intents",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8(output.stdout).unwrap().contains("name: b\n        kind: StatefulSet\n"));
    let seen = seen.lock().unwrap();
    // Edges, kinds, and the per-port connections that tell the mesh control plane's calls (left out of intents).
    assert_eq!(seen.len(), 3);
    for head in seen.iter() {
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("get /prometheus/api/v1/query?query="), "{head}");
        assert!(head.contains("%5b7200s%5d"), "window as seconds: {head}");
        assert!(head.contains("authorization: bearer s3cret\r\n"), "{head}");
        assert!(head.contains("x-scope-orgid: tenant-1\r\n"), "{head}");
    }
}

#[test]
fn the_live_client_does_basic_auth_from_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let password = write(dir.path(), "password", "pa55\n");
    let (port, seen) = serve(answer_queries);
    let output = Command::new(env!("CARGO_BIN_EXE_netmap-reduce"))
        .env("NO_PROXY", "127.0.0.1")
        .env("NETMAP_PROMETHEUS", format!("http://127.0.0.1:{port}"))
        .env("NETMAP_BASIC_AUTH_USER", "reader")
        .env("NETMAP_BASIC_AUTH_PASSWORD_FILE", &password)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "a in namespace s calls:\n  - b\n");
    // base64("reader:pa55")
    assert!(seen.lock().unwrap().iter().all(|h| h.contains("Basic cmVhZGVyOnBhNTU=")), "{seen:?}");
}

#[test]
fn https_goes_through_rustls_and_reports_tls_failures() {
    let dir = tempfile::tempdir().unwrap();
    // Answers plain HTTP to whatever arrives first (here a TLS ClientHello, which never ends in a blank line).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.read(&mut [0u8; 4096]);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let url = format!("https://127.0.0.1:{port}");
    // A plain-HTTP server behind an https URL: the TLS handshake fails, a network error.
    assert_fails(&reduce(&["--prometheus", &url]), 1, &[&url, "cannot query Prometheus", "corrupt message"]);
    let not_pem = write(dir.path(), "ca.pem", "not a certificate\n");
    assert_fails(&reduce(&["--prometheus", &url, "--ca-file", &not_pem]), 2, &["ca.pem", "no PEM certificate"]);
}
