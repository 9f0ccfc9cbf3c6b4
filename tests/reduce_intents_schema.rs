//! The ClientIntents `netmap-reduce` writes are what the Otterize CRD expects: field names, types and required
//! fields as in Otterize's CRDs (docs/design.md §6) (v2beta1: `spec.workload` + `spec.targets[]` with exactly one of
//! `kubernetes{name,kind?}`, `service{name}`, `internet{domains}`; v1alpha3: `spec.service` + `spec.calls[]`), and
//! every document survives a round trip through the serde types unchanged.

use network_mapper::reduce::intents::{
    ClientIntentsV1, ClientIntentsV2, IntentsVersion, client_intents_v1, client_intents_v2, render_intents,
};
use network_mapper::reduce::model::{Call, Client, ServiceMap};
use network_mapper::reduce::yaml::to_yaml;
use proptest::prelude::*;
use serde_yaml::{Mapping, Value};
use std::path::Path;

fn keys(map: &Mapping) -> Vec<&str> {
    map.keys().map(|k| k.as_str().expect("string keys")).collect()
}

fn assert_keys(value: &Value, required: &[&str], optional: &[&str], at: &str) -> Mapping {
    let map = value.as_mapping().unwrap_or_else(|| panic!("{at} is not a mapping: {value:?}")).clone();
    for key in keys(&map) {
        assert!(required.contains(&key) || optional.contains(&key), "{at}: unexpected field {key:?}");
    }
    for key in required {
        assert!(map.contains_key(*key), "{at}: missing required field {key:?}");
    }
    map
}

fn assert_string(value: &Value, at: &str) -> String {
    let text = value.as_str().unwrap_or_else(|| panic!("{at} is not a string: {value:?}"));
    assert!(!text.is_empty(), "{at} is empty");
    text.to_owned()
}

/// RFC 1123 subdomain, as Kubernetes requires of `metadata.name`.
fn assert_dns_subdomain(name: &str, at: &str) {
    let ok = name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    assert!(ok, "{at}: {name:?} is not a valid object name");
}

fn check_common(doc: &Value, version: &str) {
    assert_keys(doc, &["apiVersion", "kind", "metadata", "spec"], &[], "document");
    assert_eq!(doc["apiVersion"], Value::from(format!("k8s.otterize.com/{version}")));
    assert_eq!(doc["kind"], Value::from("ClientIntents"));
    assert_keys(&doc["metadata"], &["name", "namespace"], &[], "metadata");
    assert_dns_subdomain(&assert_string(&doc["metadata"]["name"], "metadata.name"), "metadata.name");
    assert_string(&doc["metadata"]["namespace"], "metadata.namespace");
}

fn check_v2beta1(doc: &Value) {
    check_common(doc, "v2beta1");
    assert_keys(&doc["spec"], &["workload", "targets"], &[], "spec");
    assert_keys(&doc["spec"]["workload"], &["name"], &["kind"], "spec.workload");
    assert_string(&doc["spec"]["workload"]["name"], "spec.workload.name");
    let targets = doc["spec"]["targets"].as_sequence().expect("spec.targets is a list");
    assert!(!targets.is_empty());
    for target in targets {
        let map = assert_keys(target, &[], &["kubernetes", "service", "internet"], "target");
        assert_eq!(map.len(), 1, "a target has exactly one type: {target:?}");
        if let Some(k) = target.get("kubernetes") {
            assert_keys(k, &["name"], &["kind"], "kubernetes");
            assert_string(&k["name"], "kubernetes.name");
            if let Some(kind) = k.get("kind") {
                assert_string(kind, "kubernetes.kind");
            }
        } else if let Some(s) = target.get("service") {
            assert_keys(s, &["name"], &[], "service");
            assert_string(&s["name"], "service.name");
        } else {
            assert_keys(&target["internet"], &["domains"], &[], "internet");
            let domains = target["internet"]["domains"].as_sequence().expect("domains is a list");
            domains.iter().for_each(|d| assert!(assert_string(d, "domain").contains('.')));
        }
    }
}

fn check_v1alpha3(doc: &Value) {
    check_common(doc, "v1alpha3");
    assert_keys(&doc["spec"], &["service", "calls"], &[], "spec");
    assert_keys(&doc["spec"]["service"], &["name"], &[], "spec.service");
    for call in doc["spec"]["calls"].as_sequence().expect("spec.calls is a list") {
        assert_keys(call, &[], &["name", "type", "internet"], "call");
        match call.get("type").map(|t| assert_string(t, "type")).as_deref() {
            None => {
                assert_string(&call["name"], "call.name");
            }
            Some("internet") => {
                assert_keys(&call["internet"], &["domains"], &[], "internet");
            }
            Some(other) => panic!("unexpected call type {other}"),
        }
    }
}

fn golden_documents(file: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reduce/snapshots");
    let mut docs = Vec::new();
    for case in std::fs::read_dir(root).unwrap() {
        let path = case.unwrap().path().join(file);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let name = path.display().to_string();
            docs.extend(text.split("---\n").filter(|d| !d.is_empty()).map(|d| (name.clone(), d.to_owned())));
        }
    }
    assert!(docs.len() >= 5, "golden intents found: {}", docs.len());
    docs
}

#[test]
fn golden_v2beta1_documents_have_the_crd_shape_and_round_trip() {
    for (file, text) in golden_documents("intents-v2beta1.yaml") {
        check_v2beta1(&serde_yaml::from_str(&text).unwrap());
        let typed: ClientIntentsV2 = serde_yaml::from_str(&text).unwrap();
        assert_eq!(to_yaml(&typed), text, "{file}");
    }
}

#[test]
fn golden_v1alpha3_documents_have_the_crd_shape_and_round_trip() {
    for (file, text) in golden_documents("intents-v1alpha3.yaml") {
        check_v1alpha3(&serde_yaml::from_str(&text).unwrap());
        let typed: ClientIntentsV1 = serde_yaml::from_str(&text).unwrap();
        assert_eq!(to_yaml(&typed), text, "{file}");
    }
}

fn arb_name() -> impl Strategy<Value = String> {
    // Kubernetes names start and end alphanumeric; `_` stands for the dots of docs/design.md §4.1.
    "[a-z]([a-z0-9_-]{0,10}[a-z0-9])?"
}

fn arb_call() -> impl Strategy<Value = Call> {
    let kinds = prop::option::of(prop::sample::select(vec!["Deployment", "StatefulSet", "Service", "CronJob"]));
    let namespace = prop::option::of(prop::sample::select(
        vec!["shop", "default", "yes", "1.0"].into_iter().map(String::from).collect::<Vec<_>>(),
    ));
    (arb_name(), namespace, kinds, "[a-z]{1,8}\\.(com|io|example)").prop_map(|(name, namespace, kind, domain)| {
        match namespace.as_deref() {
            Some("1.0") | None => {
                Call { server: domain, namespace: None, kind: None, count: 1.0, seen: None, ports: Default::default() }
            }
            Some(_) => Call {
                server: name,
                namespace,
                kind: kind.map(String::from),
                count: 1.0,
                seen: None,
                ports: Default::default(),
            },
        }
    })
}

fn arb_client() -> impl Strategy<Value = Client> {
    (arb_name(), prop::sample::select(vec!["shop", "default", "true"]), prop::collection::vec(arb_call(), 1..6))
        .prop_map(|(name, namespace, calls)| Client {
            name,
            namespace: namespace.into(),
            kind: Some("Deployment".into()),
            calls,
        })
}

proptest! {
    #[test]
    fn any_client_round_trips_through_the_serde_types(client in arb_client()) {
        let v2 = client_intents_v2(&client);
        let text = to_yaml(&v2);
        check_v2beta1(&serde_yaml::from_str(&text).unwrap());
        prop_assert_eq!(serde_yaml::from_str::<ClientIntentsV2>(&text).unwrap(), v2);
        let v1 = client_intents_v1(&client);
        let text = to_yaml(&v1);
        check_v1alpha3(&serde_yaml::from_str(&text).unwrap());
        prop_assert_eq!(serde_yaml::from_str::<ClientIntentsV1>(&text).unwrap(), v1);
    }

    #[test]
    fn file_names_follow_otterize_dir_output(client in arb_client()) {
        let expected = format!("{}.{}.yaml", client.name, client.namespace);
        let map = ServiceMap { clients: vec![client] };
        let docs = render_intents(&map, IntentsVersion::V2beta1);
        prop_assert_eq!(&docs[0].file_name, &expected);
    }
}
