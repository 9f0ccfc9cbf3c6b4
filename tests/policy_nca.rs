//! The evaluator of `netmap-reduce impact` (and of the generator's self-check) against an independent oracle:
//! np-guard's Network Config Analyzer. Generated cases (seeded, so a failure is reproducible) put random pods
//! and namespaces under random NetworkPolicies of many shapes: pod and namespace selectors with `matchLabels`
//! and every `matchExpressions` operator, policy types given or defaulted, ingress and egress, empty and absent
//! peer and port lists, ipBlocks with `except`, numbered, named (resolved or not) and ranged (`endPort`) ports,
//! UDP and SCTP beside TCP. For every ordered pair of pods, and from every pod to a few addresses, the TCP
//! ports our evaluator allows must equal those the analyzer allows, exactly.
//!
//! One analyzer run checks every case (a scheme file with one network configuration and one connectivity
//! query per case). `NCA_CASES` (default 80) and `NCA_SEED` choose the cases; a failure prints the seed, the
//! case and the differing pairs; `NCA_KEEP=DIR` keeps the analyzer's input and output there.

mod policy_support;

use std::path::Path;
use std::process::Command;

use network_mapper::reduce::impact::evaluate::{Endpoint, Evaluator, Pod, Reach};
use network_mapper::reduce::impact::load::policies_from_text;
use network_mapper::reduce::impact::ports::PortSet;
use policy_support::nca::{Allowed, analyzer, parse_connectivity};
use policy_support::random::{ADDRESSES, Case, PodSpec, generate, shapes};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Writes every case and one scheme, runs the analyzer once, returns each case's connectivity.
fn run_analyzer(cases: &[Case], dir: &Path) -> Vec<Allowed> {
    let mut configs = Vec::new();
    let mut queries = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let case_dir = dir.join(format!("case{index}"));
        std::fs::create_dir_all(&case_dir).unwrap();
        std::fs::write(case_dir.join("namespaces.yaml"), case.namespaces_yaml()).unwrap();
        std::fs::write(case_dir.join("pods.yaml"), case.pods_yaml()).unwrap();
        std::fs::write(case_dir.join("policies.yaml"), case.policies_yaml()).unwrap();
        configs.push(format!(
            "  - name: case{index}\n    namespaceList: case{index}/namespaces.yaml\n    podList: case{index}/pods.yaml\n    \
             networkPolicyList: [case{index}/policies.yaml]\n"
        ));
        queries.push(format!(
            "  - name: query{index}\n    connectivityMap: [case{index}]\n    outputConfiguration:\n      \
             outputFormat: txt_no_fw_rules\n      outputPath: case{index}/connectivity.txt\n"
        ));
    }
    let scheme = format!("networkConfigList:\n{}queries:\n{}", configs.concat(), queries.concat());
    std::fs::write(dir.join("scheme.yaml"), scheme).unwrap();
    let output = Command::new(analyzer()).arg("--scheme").arg("scheme.yaml").current_dir(dir).output().unwrap();
    let log = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (0..cases.len())
        .map(|index| {
            let path = dir.join(format!("case{index}/connectivity.txt"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}\n{log}", path.display()));
            parse_connectivity(&text)
        })
        .collect()
}

fn pod(spec: &PodSpec) -> Pod<'_> {
    Pod { namespace: &spec.namespace, labels: Some(&spec.labels), named_ports: Some(&spec.named_ports) }
}

/// Every difference between our evaluator and the analyzer on one case.
fn differences(case: &Case, analyzer: &Allowed) -> Vec<String> {
    let policies = policies_from_text("generated", &case.policies_yaml()).expect("the generated policies read");
    let namespaces = case.namespace_labels();
    let evaluator = Evaluator { policies: &policies, namespaces: &namespaces };
    let mut found = Vec::new();
    let mut compare = |from: String, to: String, reach: Reach| {
        let ours = reach.sure();
        assert_eq!(ours, reach.possible(), "{from} => {to}: everything is known, so nothing may be uncertain");
        let theirs = analyzer.tcp_ports(&from, &to);
        if ours != theirs {
            found.push(format!("{from} => {to}: ours TCP {ours}, the analyzer's TCP {theirs}"));
        }
    };
    for client in &case.pods {
        for server in case.pods.iter().filter(|s| s.name != client.name) {
            compare(client.nca_name(), server.nca_name(), evaluator.reach(pod(client), Endpoint::Pod(pod(server))));
        }
        for address in ADDRESSES {
            let endpoint = Endpoint::Address { address: Some(address.parse().unwrap()), api_server: false };
            compare(client.nca_name(), address.to_owned(), evaluator.reach(pod(client), endpoint));
        }
    }
    found
}

#[test]
#[ignore = "live: installs np-guard's analyzer from PyPI into target/nca-venv (run by `make test`)"]
fn the_evaluator_agrees_with_the_analyzer_on_generated_policies() {
    let seed = env_number("NCA_SEED", 0x6e63_615f_7365_6564);
    let count = env_number("NCA_CASES", 80) as usize;
    let cases: Vec<Case> = (0..count).map(|i| generate(seed.wrapping_add(i as u64), i)).collect();
    let scratch = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("NCA_KEEP").map_or_else(|| scratch.path().to_owned(), std::path::PathBuf::from);
    let analyzer = run_analyzer(&cases, &dir);
    let mut failures = Vec::new();
    let mut pairs = 0;
    for (index, (case, connectivity)) in cases.iter().zip(&analyzer).enumerate() {
        pairs += case.pods.len() * (case.pods.len() - 1 + ADDRESSES.len());
        let found = differences(case, connectivity);
        if !found.is_empty() {
            failures.push(format!(
                "case {index} (NCA_SEED={} NCA_CASES=1):\n{}\n--- policies\n{}--- pods\n{}--- namespaces\n{}",
                seed.wrapping_add(index as u64),
                found.join("\n"),
                case.policies_yaml(),
                case.pods_yaml(),
                case.namespaces_yaml()
            ));
        }
    }
    let shapes = shapes(&cases);
    eprintln!("{count} cases, {pairs} pairs compared; shapes covered: {shapes:?}");
    assert!(failures.is_empty(), "the evaluator and the analyzer disagree:\n{}", failures.join("\n\n"));
    assert!(shapes.values().all(|n| *n > 0), "some policy shapes were never generated: {shapes:?}");
}

#[test]
fn the_analyzers_output_is_parsed_as_it_prints_it() {
    let text = "ns/a[Pod] => ns/b[Pod] : All connections\n\
                ns/a[Pod] => ns/c[Pod] : {protocols:TCP, UDP,dst_ports:53,80-82}\n\
                ns/b[Pod] => ns/c[Pod] : All but {protocols:TCP,dst_ports:1-79,81-65535}\n\
                ns/c[Pod] => 10.0.0.0-10.255.255.255 : {protocols:UDP}\n\
                ns/c[Pod] => 0.0.0.0-9.255.255.255 : {protocols:TCP}\n";
    let parsed = parse_connectivity(text);
    assert!(parsed.tcp_ports("ns/a[Pod]", "ns/b[Pod]").is_all());
    let expected = PortSet::range(53, 53).union(&PortSet::range(80, 82));
    assert_eq!(parsed.tcp_ports("ns/a[Pod]", "ns/c[Pod]"), expected);
    assert_eq!(parsed.tcp_ports("ns/b[Pod]", "ns/c[Pod]"), PortSet::range(80, 80));
    assert!(parsed.tcp_ports("ns/c[Pod]", "10.1.2.3").is_empty());
    assert!(parsed.tcp_ports("ns/c[Pod]", "9.0.0.1").is_all());
    assert!(parsed.tcp_ports("ns/c[Pod]", "ns/a[Pod]").is_empty());
}
