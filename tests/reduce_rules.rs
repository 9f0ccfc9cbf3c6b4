//! Declared-edges mode end to end: ClientIntents of both versions (a multi-document file, a `List`, other kinds,
//! nested directories) → recording rules that match the golden file, pass `promtool check rules`, and make the
//! "undeclared edge" alert fire in `promtool test rules` for an edge missing from the intents and not for a
//! declared one. Needs `promtool` (Debian package `prometheus`; `make test` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn declared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reduce/declared")
}

fn promtool() -> &'static str {
    let found = Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "promtool is not installed: this test needs it. Run the project's setup (`make test` installs Debian's \
         `prometheus` package: apt-get install -y prometheus)"
    );
    "promtool"
}

fn generate_rules() -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_netmap-reduce"))
        .arg("--declared-rules-from")
        .arg(declared_dir().join("intents"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn declared_rules_match_the_golden_file() {
    let rules = generate_rules();
    let golden = declared_dir().join("declared.rules.yaml");
    testkit::golden::assert_matches(&golden, rules.as_bytes());
}

/// The alert another part of the project ships; repeated here so this test pins the labels it relies on.
const ALERT_RULES: &str = r#"groups:
  - name: undeclared-edges
    rules:
      - alert: NetworkMapperUndeclaredEdge
        expr: network_mapper:edge:present unless on(client, namespace, server, server_namespace) network_mapper:edge:declared
        labels:
          severity: warning
"#;

/// Present edges: three declared (in-cluster, the API server, an internet domain that the intents wrote in
/// upper case with a trailing dot), two not (a workload the intents do not name, a domain).
const RULE_TESTS: &str = r#"rule_files:
  - declared.rules.yaml
  - alert.rules.yaml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'network_mapper:edge:present{client="frontend",namespace="shop",server="cartservice",server_namespace="shop"}'
        values: '1x10'
      - series: 'network_mapper:edge:present{client="worker",namespace="jobs",server="kubernetes",server_namespace="default"}'
        values: '1x10'
      - series: 'network_mapper:edge:present{client="frontend",namespace="shop",server="hooks.slack.com"}'
        values: '1x10'
      - series: 'network_mapper:edge:present{client="frontend",namespace="shop",server="adservice",server_namespace="shop"}'
        values: '1x10'
      - series: 'network_mapper:edge:present{client="worker",namespace="jobs",server="pastebin.com"}'
        values: '1x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: NetworkMapperUndeclaredEdge
        exp_alerts:
          - exp_labels:
              severity: warning
              client: frontend
              namespace: shop
              server: adservice
              server_namespace: shop
          - exp_labels:
              severity: warning
              client: worker
              namespace: jobs
              server: pastebin.com
    promql_expr_test:
      - expr: network_mapper:edge:declared{client="frontend", server=~"kubernetes|hooks.slack.com"}
        eval_time: 1m
        exp_samples:
          - labels: 'network_mapper:edge:declared{client="frontend",namespace="shop",server="hooks.slack.com"}'
            value: 1
          - labels: 'network_mapper:edge:declared{client="frontend",namespace="shop",server="kubernetes",server_namespace="default"}'
            value: 1
"#;

#[test]
fn promtool_accepts_the_rules_and_the_alert_fires_only_for_undeclared_edges() {
    let promtool = promtool();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("declared.rules.yaml"), generate_rules()).unwrap();
    std::fs::write(dir.path().join("alert.rules.yaml"), ALERT_RULES).unwrap();
    std::fs::write(dir.path().join("tests.yaml"), RULE_TESTS).unwrap();

    let check =
        Command::new(promtool).args(["check", "rules", "declared.rules.yaml"]).current_dir(&dir).output().unwrap();
    let check_out = String::from_utf8_lossy(&check.stdout).into_owned() + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "promtool check rules: {check_out}");
    assert!(check_out.contains("SUCCESS: 11 rules found"), "{check_out}");

    let test = Command::new(promtool).args(["test", "rules", "tests.yaml"]).current_dir(&dir).output().unwrap();
    let test_out = String::from_utf8_lossy(&test.stdout).into_owned() + &String::from_utf8_lossy(&test.stderr);
    assert!(test.status.success(), "promtool test rules: {test_out}");
}
