//! `--web-config-file`: TLS and basic auth enforced by the real binary, and a real Prometheus (Debian's
//! `prometheus` package, installed by `make setup`) scraping through them. Certificates are made at test time
//! with the `openssl` command line (a CA, a server certificate for 127.0.0.1, a client certificate), bcrypt
//! hashes with the `bcrypt` crate the exporter itself uses.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::cmd::Guarded;
use testkit::http::{eventually, free_port, instant_query};

const CAPTURE: &str = "tests/fixtures/scrape/capture.pcap";
const INVENTORY: &str = "tests/fixtures/inventory/cluster.yaml";
const EDGE: &str =
    r#"network_mapper_edge_total{client="checkout",namespace="shop",server="cart",server_namespace="shop"}"#;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("the openssl command line runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, and server (SAN 127.0.0.1) and client certificates it signs: ca.crt, server.{crt,key}, client.{crt,key}.
fn make_certs(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509", "-days", "1", "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt"];
    ca.extend(ec);
    openssl(dir, &ca);
    for (name, ext) in [("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")] {
        let (key, csr, crt, subj) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("/CN={name}"));
        let mut req = vec!["req", "-new", "-subj", &subj, "-addext", ext, "-keyout", &key, "-out", &csr];
        req.extend(ec);
        openssl(dir, &req);
        let sign = ["x509", "-req", "-in", &csr, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"];
        openssl(dir, &[&sign[..], &["-days", "1", "-copy_extensions", "copy", "-out", &crt]].concat());
    }
}

fn web_config(password: &str, extra_tls: &str) -> String {
    // Cost 4 keeps the test fast; the cache makes the cost matter once per credential anyway.
    let hash = bcrypt::hash(password, 4).unwrap();
    format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra_tls}basic_auth_users:\n  \
         prometheus: '{hash}'\n"
    )
}

fn start_exporter(web_config: &Path, port: u16) -> Guarded {
    Guarded::spawn(
        Command::new(env!("CARGO_BIN_EXE_network-mapper"))
            .args(["--pcap-file", CAPTURE, "--inventory-file", INVENTORY, "--no-socket-scan"])
            .args(["--node-name", "node-a", "--cluster-domain", "cluster.local"])
            .arg(format!("--listen-address=127.0.0.1:{port}"))
            .env("NETMAP_WEB_CONFIG_FILE", web_config)
            .stderr(Stdio::null()),
    )
    .unwrap()
}

fn https_client(dir: &Path, identity: bool) -> reqwest::blocking::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.crt")).unwrap()).unwrap();
    let mut builder =
        reqwest::blocking::Client::builder().no_proxy().add_root_certificate(ca).timeout(Duration::from_secs(10));
    if identity {
        let pem = [std::fs::read(dir.join("client.crt")).unwrap(), std::fs::read(dir.join("client.key")).unwrap()];
        builder = builder.identity(reqwest::Identity::from_pem(&pem.concat()).unwrap());
    }
    builder.build().unwrap()
}

/// GET with optional basic auth; the status, or None when the connection or handshake failed.
fn status(client: &reqwest::blocking::Client, url: &str, auth: Option<(&str, &str)>) -> Option<u16> {
    let mut req = client.get(url);
    if let Some((user, password)) = auth {
        req = req.basic_auth(user, Some(password));
    }
    req.send().ok().map(|r| r.status().as_u16())
}

fn wait_for_healthz(client: &reqwest::blocking::Client, base: &str) {
    let url = format!("{base}/healthz");
    eventually("the exporter serving /healthz over TLS", Duration::from_secs(20), || {
        (status(client, &url, None) == Some(200)).then_some(())
    });
}

fn setup(extra_tls: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let path = dir.path().join("web.yml");
    std::fs::write(&path, web_config("right-password", extra_tls)).unwrap();
    (dir, path)
}

#[test]
fn tls_and_basic_auth_are_enforced() {
    let (dir, config) = setup("");
    let port = free_port();
    let _exporter = start_exporter(&config, port);
    let base = format!("https://127.0.0.1:{port}");
    let client = https_client(dir.path(), false);
    wait_for_healthz(&client, &base);
    let metrics = format!("{base}/metrics");

    assert_eq!(status(&client, &metrics, None), Some(401), "no credentials");
    assert_eq!(status(&client, &metrics, Some(("prometheus", "wrong"))), Some(401), "wrong password");
    assert_eq!(status(&client, &metrics, Some(("someone", "right-password"))), Some(401), "unknown user");
    assert_eq!(status(&client, &format!("{base}/"), None), Some(401), "the landing page is protected too");
    assert_eq!(status(&client, &format!("{base}/readyz"), None), Some(200), "probes need no credentials");
    let unauthorized = client.get(&metrics).send().unwrap();
    assert_eq!(unauthorized.headers()["www-authenticate"], r#"Basic realm="network-mapper""#);
    assert!(!unauthorized.text().unwrap().contains("network_mapper"), "a refused scrape shows no metric");

    let ok = client.get(&metrics).basic_auth("prometheus", Some("right-password")).send().unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().unwrap().contains("# TYPE network_mapper_edge_total counter"));

    let plain = reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap();
    let plain_url = format!("http://127.0.0.1:{port}/metrics");
    assert_eq!(status(&plain, &plain_url, Some(("prometheus", "right-password"))), None, "plain HTTP is refused");

    // A changed file takes effect within a second (a rotated Secret), no restart.
    std::fs::write(&config, web_config("rotated", "")).unwrap();
    eventually("the rewritten web config to be picked up", Duration::from_secs(10), || {
        (status(&client, &metrics, Some(("prometheus", "rotated"))) == Some(200)).then_some(())
    });
    assert_eq!(status(&client, &metrics, Some(("prometheus", "right-password"))), Some(401));
}

#[test]
fn client_certificates_are_verified_when_required() {
    let (dir, config) = setup("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n");
    let port = free_port();
    let _exporter = start_exporter(&config, port);
    let base = format!("https://127.0.0.1:{port}");
    let with_cert = https_client(dir.path(), true);
    wait_for_healthz(&with_cert, &base);
    let auth = Some(("prometheus", "right-password"));
    assert_eq!(status(&with_cert, &format!("{base}/metrics"), auth), Some(200));
    let without_cert = https_client(dir.path(), false);
    assert_eq!(status(&without_cert, &format!("{base}/metrics"), auth), None, "no client certificate: no handshake");
}

#[test]
fn a_bad_web_config_exits_2_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("basic_auth_users:\n  prometheus: hunter2\n", "basic_auth_users: user \"prometheus\": not a bcrypt hash"),
        ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n", "tls_server_config.cert_file"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n", "min_version"),
        ("basic_auth_users: [a, b]\n", "not a web configuration file"),
    ];
    for (text, expected) in cases {
        let path = dir.path().join("web.yml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_network-mapper"))
            .args(["--pcap-file", CAPTURE, "--inventory-file", INVENTORY, "--no-socket-scan"])
            .arg(format!("--listen-address=127.0.0.1:{}", free_port()))
            .arg(format!("--web-config-file={}", path.display()))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(&format!("{}: ", path.display())) && stderr.contains(expected), "{text}: {stderr}");
    }
}

/// The value of a one-sample query, or None while Prometheus starts or has no data.
fn query(port: u16, expr: &str) -> Option<f64> {
    instant_query(&format!("http://127.0.0.1:{port}"), expr)
}

#[test]
fn a_real_prometheus_scrapes_through_tls_and_basic_auth() {
    let found = Command::new("prometheus").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "prometheus is not installed: run the project's setup (apt-get install -y prometheus)");
    let (dir, config) = setup("");
    let exporter_port = free_port();
    let _exporter = start_exporter(&config, exporter_port);
    wait_for_healthz(&https_client(dir.path(), false), &format!("https://127.0.0.1:{exporter_port}"));

    // What deploy/components/web-config's ServiceMonitor says, as a plain scrape config.
    std::fs::write(dir.path().join("password"), "right-password").unwrap();
    let d = dir.path().display();
    let scrape = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: network-mapper\n    honor_labels: true\n    \
         scheme: https\n    tls_config:\n      ca_file: {d}/ca.crt\n    basic_auth:\n      username: prometheus\n      \
         password_file: {d}/password\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n  \
         - job_name: wrong-password\n    scheme: https\n    tls_config:\n      ca_file: {d}/ca.crt\n    basic_auth:\n      \
         username: prometheus\n      password: wrong\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), scrape).unwrap();
    let prometheus_port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prometheus = Guarded::spawn(
        Command::new("prometheus")
            .arg(format!("--config.file={d}/prometheus.yml"))
            .arg(format!("--storage.tsdb.path={d}/data"))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    )
    .expect("prometheus starts");

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let edge = query(prometheus_port, EDGE);
        let up = query(prometheus_port, r#"up{job="network-mapper"}"#);
        let refused = query(prometheus_port, r#"up{job="wrong-password"}"#);
        if edge == Some(2.0) && up == Some(1.0) && refused == Some(0.0) {
            break;
        }
        let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "after 90 s: edge {edge:?}, up {up:?}, wrong-password up {refused:?}; Prometheus log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
