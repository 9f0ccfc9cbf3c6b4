//! The workload-naming rule (docs/design.md §4.1), written once: the exporter names the workloads it counts with
//! it, and the reducer names the workloads it writes policies for with it, so a policy always selects the name
//! an edge carries (`tests/naming.rs` checks both paths on one table of pods).
//!
//! A pod's workload is the name its Otterize annotation gives (`intents.otterize.com/workload-name`, else the
//! deprecated `intents.otterize.com/service-name`; an empty value gives none), else the root of its controller
//! owner chain, else the pod itself; `.` becomes `_`.

use std::borrow::Cow;

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
    fn a_chain_is_followed_through_at_most_ten_owners() {
        assert_eq!(chain_root(0, |n| (*n < 3).then_some(n + 1)), 3);
        assert_eq!(chain_root(0, |n| Some(n + 1)), MAX_OWNER_HOPS - 1, "a cycle stops after ten owners");
        assert_eq!(identity_name("api.v2"), "api_v2");
    }
}
