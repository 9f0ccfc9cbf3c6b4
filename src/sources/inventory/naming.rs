//! The workload-naming rule (docs/design.md §4.1), written once: the exporter names the workloads it counts with
//! it, and the reducer names the workloads it writes policies for with it, so a policy always selects the name
//! an edge carries (`tests/naming.rs` checks both paths on one table of pods).
//!
//! A pod's workload is the name its Otterize annotation gives (`intents.otterize.com/workload-name`, else the
//! deprecated `intents.otterize.com/service-name`; an empty value gives none), else the root of its controller
//! owner chain, else the pod itself; `.` becomes `_`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The one command that writes an inventory file both binaries read in full (`--inventory-file`): the pods and
/// their owners to name workloads, Services and EndpointSlices to name servers, the controllers and Namespaces
/// the reducer's policies select, and Nodes for the exporter's node filter.
pub const KUBECTL_GET: &str = "kubectl get pods,services,endpointslices,replicasets,jobs,deployments,statefulsets,\
                               daemonsets,cronjobs,namespaces,nodes -A -o yaml > inventory.yaml";

/// Owner kinds that are themselves owned (by a Deployment, a CronJob): a pod whose owner of this kind is missing
/// from an inventory file is named after that owner instead of the workload above it.
pub const OWNED_OWNER_KINDS: [&str; 2] = ["ReplicaSet", "Job"];

/// What an inventory file lacks to name its pods, or `None`: `missing` counts pods by the kind of an owner in
/// [`OWNED_OWNER_KINDS`] that the file does not hold.
pub fn missing_owners_warning(missing: &BTreeMap<String, usize>) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    let mut counts = String::new();
    for (kind, pods) in missing {
        let sep = if counts.is_empty() { "" } else { ", " };
        let _ = write!(counts, "{sep}{pods} pod(s) owned by a {kind}");
    }
    Some(format!(
        "{counts} that the inventory does not hold: they are named after it (e.g. `checkout-7d9f`), not after \
         their Deployment or CronJob. Write the file with: {KUBECTL_GET}"
    ))
}

/// Why an inventory file that holds no Pod can name no client.
pub fn no_pods_message(kinds: &[String]) -> String {
    let held = if kinds.is_empty() { "nothing the inventory reads".to_owned() } else { kinds.join(", ") };
    format!(
        "it holds no Pod (only {held}): no client can be named, so no edge could be counted. Write the file with: {KUBECTL_GET}"
    )
}

/// The Otterize annotation that overrides a pod's workload name.
pub const WORKLOAD_NAME_ANNOTATION: &str = "intents.otterize.com/workload-name";
/// The deprecated Otterize annotation, used when the current one gives no name.
pub const SERVICE_NAME_ANNOTATION: &str = "intents.otterize.com/service-name";
/// The most owners a chain is followed through: real chains have two or three, the bound only stops reference
/// cycles.
pub const MAX_OWNER_HOPS: usize = 10;

/// The name a pod's annotations give its workload, looked up with `annotation`.
pub fn annotated_name<'a>(annotation: impl Fn(&str) -> Option<&'a str>) -> Option<&'a str> {
    [WORKLOAD_NAME_ANNOTATION, SERVICE_NAME_ANNOTATION]
        .into_iter()
        .find_map(|a| annotation(a).filter(|v| !v.is_empty()))
}

/// The root of the owner chain that starts at `first`, where `parent` gives a known owner's own owner: the last
/// owner reached, after at most [`MAX_OWNER_HOPS`] owners.
pub fn chain_root<T>(first: T, mut parent: impl FnMut(&T) -> Option<T>) -> T {
    let mut current = first;
    for _ in 1..MAX_OWNER_HOPS {
        match parent(&current) {
            Some(next) => current = next,
            None => break,
        }
    }
    current
}

/// `.` separates name and namespace in intents, so it cannot appear in a workload's name.
pub fn identity_name(name: &str) -> Cow<'_, str> {
    if name.contains('.') { Cow::Owned(name.replace('.', "_")) } else { Cow::Borrowed(name) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_annotation_wins_and_an_empty_one_names_nothing() {
        let given = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
        };
        assert_eq!(
            annotated_name(given(&[(WORKLOAD_NAME_ANNOTATION, "a"), (SERVICE_NAME_ANNOTATION, "b")])),
            Some("a")
        );
        assert_eq!(annotated_name(given(&[(SERVICE_NAME_ANNOTATION, "b")])), Some("b"));
        assert_eq!(annotated_name(given(&[(WORKLOAD_NAME_ANNOTATION, ""), (SERVICE_NAME_ANNOTATION, "b")])), Some("b"));
        assert_eq!(annotated_name(given(&[(WORKLOAD_NAME_ANNOTATION, "")])), None);
    }

    #[test]
    fn the_warnings_name_the_missing_kinds_and_the_command() {
        assert_eq!(missing_owners_warning(&BTreeMap::new()), None);
        let missing = BTreeMap::from([("Job".to_owned(), 1), ("ReplicaSet".to_owned(), 12)]);
        let warning = missing_owners_warning(&missing).unwrap();
        assert!(warning.starts_with("1 pod(s) owned by a Job, 12 pod(s) owned by a ReplicaSet that the inventory"));
        assert!(warning.ends_with(KUBECTL_GET) && KUBECTL_GET.contains("replicasets,jobs,"), "{warning}");
        assert!(no_pods_message(&["Deployment".into()]).contains("no Pod (only Deployment)"));
    }

    #[test]
    fn a_chain_is_followed_through_at_most_ten_owners() {
        assert_eq!(chain_root(0, |n| (*n < 3).then_some(n + 1)), 3);
        assert_eq!(chain_root(0, |n| Some(n + 1)), MAX_OWNER_HOPS - 1, "a cycle stops after ten owners");
        assert_eq!(identity_name("api.v2"), "api_v2");
    }
}
