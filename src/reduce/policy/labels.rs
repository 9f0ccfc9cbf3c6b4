//! Label selectors: which labels may select a workload's pods, and matching a selector against labels.
//!
//! Controllers stamp labels on pods that change with every rollout, scale-up or run (`pod-template-hash`,
//! `controller-revision-hash`, a StatefulSet pod's own name, a Job's uid). A policy that selects on them stops
//! matching the next pod the controller makes, so they are never part of a generated selector.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// Labels that controllers set per revision, per pod or per run.
const VOLATILE: &[&str] = &[
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "job-name",
    "controller-uid",
    "pod-template-generation",
    "rollouts-pod-template-hash",
];

/// Label prefixes whose keys are all volatile (`batch.kubernetes.io/job-name`, `…/controller-uid`, …).
const VOLATILE_PREFIXES: &[&str] = &["batch.kubernetes.io/"];

/// Whether a label key changes with revisions, pods or runs and so must never select a workload.
pub fn is_volatile(key: &str) -> bool {
    VOLATILE.contains(&key) || VOLATILE_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The stable part of a label map.
pub fn stable_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels.iter().filter(|(k, _)| !is_volatile(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The stable part of a selector; `None` when nothing stable is left (it would select every pod).
pub fn stable_selector(selector: &LabelSelector) -> Option<LabelSelector> {
    let match_labels = selector.match_labels.as_ref().map(stable_labels).filter(|m| !m.is_empty());
    let match_expressions: Option<Vec<LabelSelectorRequirement>> = selector
        .match_expressions
        .as_ref()
        .map(|exprs| exprs.iter().filter(|e| !is_volatile(&e.key)).cloned().collect::<Vec<_>>())
        .filter(|exprs| !exprs.is_empty());
    (match_labels.is_some() || match_expressions.is_some()).then_some(LabelSelector { match_labels, match_expressions })
}

/// A selector of exactly these labels; `None` when there are none.
pub fn selector_of(labels: BTreeMap<String, String>) -> Option<LabelSelector> {
    (!labels.is_empty()).then_some(LabelSelector { match_labels: Some(labels), match_expressions: None })
}

/// The labels every one of `sets` carries with the same value.
pub fn common_labels<'a>(mut sets: impl Iterator<Item = &'a BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let Some(first) = sets.next() else { return BTreeMap::new() };
    let mut common = stable_labels(first);
    for labels in sets {
        common.retain(|k, v| labels.get(k) == Some(v));
    }
    common
}

/// Whether `labels` satisfy `selector` (Kubernetes semantics; an empty selector matches everything).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    labels_ok && selector.match_expressions.iter().flatten().all(|e| requirement_holds(e, labels))
}

fn requirement_holds(requirement: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&requirement.key);
    let listed = || value.is_some_and(|v| requirement.values.iter().flatten().any(|x| x == v));
    match requirement.operator.as_str() {
        "In" => listed(),
        "NotIn" => !listed(),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// `k=v,k2 in (a,b)` for messages.
pub fn describe(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default().join(",");
        parts.push(format!("{} {} ({values})", e.key, e.operator));
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn volatile_labels_never_survive() {
        let labels = map(&[
            ("app", "web"),
            ("pod-template-hash", "5d8f"),
            ("controller-revision-hash", "redis-7c"),
            ("statefulset.kubernetes.io/pod-name", "redis-0"),
            ("apps.kubernetes.io/pod-index", "0"),
            ("batch.kubernetes.io/job-name", "x"),
            ("job-name", "x"),
            ("controller-uid", "u"),
        ]);
        assert_eq!(stable_labels(&labels), map(&[("app", "web")]));
    }

    #[test]
    fn a_selector_of_only_volatile_keys_is_nothing() {
        let selector = selector_of(map(&[("controller-uid", "u")])).unwrap();
        assert_eq!(stable_selector(&selector), None);
    }

    #[test]
    fn expressions_follow_kubernetes_semantics() {
        let selector = LabelSelector {
            match_labels: Some(map(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        };
        assert!(matches(&selector, &map(&[("app", "web"), ("tier", "b")])));
        assert!(!matches(&selector, &map(&[("app", "web"), ("tier", "c")])));
        assert!(!matches(&selector, &map(&[("tier", "a")])));
        assert!(matches(&LabelSelector::default(), &map(&[])));
    }

    #[test]
    fn common_labels_keep_equal_values_only() {
        let a = map(&[("app", "web"), ("version", "1"), ("pod-template-hash", "x")]);
        let b = map(&[("app", "web"), ("version", "2"), ("pod-template-hash", "x")]);
        assert_eq!(common_labels([&a, &b].into_iter()), map(&[("app", "web")]));
    }
}
