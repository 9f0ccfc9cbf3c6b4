//! Every flag that does not apply to the chosen format, mode or input is a usage error (exit 2) that names the
//! flag and what it goes with, whether it was given on the command line or through its `NETMAP_*` variable;
//! the same flags where they apply are accepted (docs/design.md §6).

mod policy_support;

use std::path::Path;

use policy_support::{assert_exit, reduce, reduce_with_env};

fn snapshot() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reduce/snapshots/exposition-nodes/input-node-a.prom")
        .display()
        .to_string()
}

#[test]
fn a_flag_that_does_not_apply_is_a_usage_error_naming_it() {
    let file = snapshot();
    let cases: &[(&[&str], &str)] = &[
        (&["--format", "networkpolicy", "--focus", "cartservice"], "--focus does not apply to --format networkpolicy"),
        (&["--format", "networkpolicy", "--depth", "2", "--focus", "x"], "--focus does not apply"),
        (
            &["--window", "1d"],
            "--window does not apply to --format list with snapshot files: it goes with --prometheus",
        ),
        (&["--timeout", "5s"], "--timeout does not apply"),
        (&["--header", "X-Scope-OrgID: a"], "--header does not apply"),
        (&["--insecure-skip-verify"], "--insecure-skip-verify does not apply"),
        (&["--intents-version", "v1alpha3"], "--intents-version does not apply to --format list"),
        (&["--format", "json", "--show-seen"], "--show-seen does not apply to --format json"),
        (&["--group-by", "namespace"], "--group-by does not apply to --format list"),
        (&["--format", "intents", "--policy-format", "cilium"], "--policy-format does not apply to --format intents"),
        (&["--policy-direction", "both"], "--policy-direction does not apply"),
        (&["--no-default-deny"], "--no-default-deny does not apply"),
        (&["--allow-from-cidr", "10.0.0.0/8"], "--allow-from-cidr does not apply"),
        (&["--node-local-dns", "169.254.20.10"], "--node-local-dns does not apply"),
        (
            &["--format", "networkpolicy", "--node-local-dns", "169.254.20.10"],
            "--node-local-dns does not apply to --format networkpolicy with snapshot files: it goes with --format \
             networkpolicy --policy-direction egress or both",
        ),
        (
            &["--format", "networkpolicy", "--policy-direction", "egress", "--allow-from-cidr", "10.0.0.0/8"],
            "--allow-from-cidr does not apply",
        ),
        (&["--inventory-file", "x.yaml"], "--inventory-file does not apply to --format list"),
        (&["--format", "dot", "--kubeconfig", "k"], "--kubeconfig does not apply to --format dot"),
        (&["--output-dir", "out"], "--output-dir does not apply to --format list"),
        (&["--format", "json", "--declared", "intents/"], "--declared does not apply to --format json"),
    ];
    for (args, needle) in cases {
        let all = [&[file.as_str()][..], args].concat();
        assert_exit(&reduce(&all), 2, &[needle, "remove it"]);
    }
}

#[test]
fn subcommands_and_declared_rules_refuse_flags_that_do_nothing_there() {
    let file = snapshot();
    assert_exit(
        &reduce(&["diff", &file, &file, "--offset", "1d"]),
        2,
        &["--offset does not apply to diff with snapshot files"],
    );
    assert_exit(&reduce(&["diff", &file, &file, "--window", "1d"]), 2, &["--window does not apply to diff"]);
    let impact = ["impact", "--policies", "p.yaml", &file, "--window", "2h"];
    assert_exit(&reduce(&impact), 2, &["--window does not apply to impact with snapshot files"]);
    let intents =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reduce/declared/intents").display().to_string();
    let rules = reduce(&["--declared-rules-from", &intents, "-n", "shop"]);
    assert_exit(&rules, 2, &["--namespace does not apply to --declared-rules-from"]);
    assert_exit(&reduce(&["--declared-rules-from", &intents, "--format", "json"]), 2, &["--format does not apply"]);
}

#[test]
fn an_environment_variable_counts_as_the_flag() {
    let file = snapshot();
    let output = reduce_with_env(&[&file], &[("NETMAP_WINDOW", "1d")]);
    assert_exit(&output, 2, &["--window does not apply", "NETMAP_* environment variables count too"]);
    assert_exit(&reduce_with_env(&[&file, "--format", "dot"], &[("NETMAP_GROUP_BY", "namespace")]), 0, &[]);
}

#[test]
fn flags_where_they_apply_are_accepted() {
    let file = snapshot();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("intents").display().to_string();
    for args in [
        &["--format", "html", "--group-by", "namespace"][..],
        &["--format", "dot", "--focus", "cartservice", "--depth", "2"],
        &["--show-seen", "--min-count", "1", "--exclude-namespace", "x", "--exclude-server", "y"],
        &["--format", "intents", "--intents-version", "v1alpha3", "--output-dir", &out, "--prune"],
    ] {
        let all = [&[file.as_str()][..], args].concat();
        assert_exit(&reduce(&all), 0, &[]);
    }
}
