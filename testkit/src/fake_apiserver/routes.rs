//! What a request asks for: the served kinds and their paths (cluster-wide and namespaced collections, one
//! object), the query parameters kube-rs sends, and how the real API server would serve the request — from its
//! watch cache or through etcd (a quorum read) — which is what a client's API cost depends on.

use std::time::Duration;

/// A served kind: where it lives and what it is called there.
#[derive(Debug)]
pub(super) struct Resource {
    pub kind: &'static str,
    /// `/api/v1` or `/apis/GROUP/VERSION`.
    pub prefix: &'static str,
    pub plural: &'static str,
    pub api_version: &'static str,
    pub namespaced: bool,
}

const fn served(kind: &'static str, prefix: &'static str, plural: &'static str, api_version: &'static str) -> Resource {
    Resource { kind, prefix, plural, api_version, namespaced: true }
}

/// Every served kind. The controllers after Job are what `netmap-reduce --format networkpolicy --kubeconfig`
/// lists for selectors; Nodes are the one cluster-scoped kind.
pub(super) const RESOURCES: [Resource; 10] = [
    served("Pod", "/api/v1", "pods", "v1"),
    served("Service", "/api/v1", "services", "v1"),
    served("EndpointSlice", "/apis/discovery.k8s.io/v1", "endpointslices", "discovery.k8s.io/v1"),
    served("ReplicaSet", "/apis/apps/v1", "replicasets", "apps/v1"),
    served("Job", "/apis/batch/v1", "jobs", "batch/v1"),
    served("Deployment", "/apis/apps/v1", "deployments", "apps/v1"),
    served("StatefulSet", "/apis/apps/v1", "statefulsets", "apps/v1"),
    served("DaemonSet", "/apis/apps/v1", "daemonsets", "apps/v1"),
    served("CronJob", "/apis/batch/v1", "cronjobs", "batch/v1"),
    Resource { kind: "Node", prefix: "/api/v1", plural: "nodes", api_version: "v1", namespaced: false },
];

/// The index of `kind` in [`RESOURCES`].
pub(super) fn kind_index(kind: &str) -> Option<usize> {
    RESOURCES.iter().position(|r| r.kind == kind)
}

/// A request path resolved: a collection (all namespaces when `namespace` is `None`) or one object.
#[derive(Debug)]
pub(super) struct Route {
    pub index: usize,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Route {
    pub fn resource(&self) -> &'static Resource {
        &RESOURCES[self.index]
    }
}

/// Resolves `path`; `None` for anything not served (404).
pub(super) fn route(path: &str) -> Option<Route> {
    RESOURCES.iter().enumerate().find_map(|(index, resource)| {
        let rest = path.strip_prefix(resource.prefix)?.strip_prefix('/')?;
        let segments: Vec<&str> = rest.split('/').collect();
        let owned = |s: &str| Some(s.to_owned());
        let (namespace, name) = match (resource.namespaced, segments.as_slice()) {
            (_, [plural]) if *plural == resource.plural => (None, None),
            (false, [plural, name]) if *plural == resource.plural => (None, owned(name)),
            (true, ["namespaces", ns, plural]) if *plural == resource.plural => (owned(ns), None),
            (true, ["namespaces", ns, plural, name]) if *plural == resource.plural => (owned(ns), owned(name)),
            _ => return None,
        };
        Some(Route { index, namespace, name })
    })
}

/// The query parameters that matter, decoded.
#[derive(Debug, Default)]
pub(super) struct Params {
    pub watch: bool,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub field_selector: Option<String>,
    pub label_selector: Option<String>,
    pub send_initial_events: bool,
    pub allow_bookmarks: bool,
    pub timeout: Option<Duration>,
}

impl Params {
    /// Parses a form-encoded query string (kube-rs starts it with `&` and percent-encodes `=` and `,`).
    pub fn parse(query: &str) -> Params {
        let mut params = Params::default();
        for (key, value) in query.split('&').filter_map(|p| p.split_once('=')) {
            let value = decode(value);
            match key {
                "watch" => params.watch = value == "true" || value == "1",
                "resourceVersion" => params.resource_version = Some(value),
                "resourceVersionMatch" => params.resource_version_match = Some(value),
                "limit" => params.limit = value.parse().ok().filter(|&l| l > 0),
                "continue" => params.continue_token = Some(value).filter(|v| !v.is_empty()),
                "fieldSelector" => params.field_selector = Some(value).filter(|v| !v.is_empty()),
                "labelSelector" => params.label_selector = Some(value).filter(|v| !v.is_empty()),
                "sendInitialEvents" => params.send_initial_events = value == "true",
                "allowWatchBookmarks" => params.allow_bookmarks = value == "true",
                "timeoutSeconds" => params.timeout = value.parse().ok().map(Duration::from_secs),
                _ => {}
            }
        }
        params
    }

    /// `resourceVersion` unset or `""`: the most recent state, which the API server reads from etcd.
    fn most_recent(&self) -> bool {
        self.resource_version.as_deref().is_none_or(str::is_empty)
    }

    /// The version a plain watch starts after (`None`: it starts with the current state).
    pub fn watch_from(&self) -> Option<u64> {
        match self.resource_version.as_deref() {
            None | Some("" | "0") => None,
            Some(rv) => Some(rv.parse().unwrap_or(0)),
        }
    }
}

/// Percent-decoding of one form value (`+` is a space).
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex()) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How the real API server (watch cache enabled, the default) would serve a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Served {
    /// Reaches etcd: a consistent (quorum) read, or an exact-version list.
    pub quorum: bool,
    /// A watch with `sendInitialEvents=true`: a list delivered as watch events.
    pub streaming: bool,
}

/// Classifies a list (`continued`: the class of its first page, carried in the continue token), a get or a
/// watch, after kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions.
pub(super) fn classify(params: &Params, is_get: bool, continued: Option<bool>) -> Served {
    let streaming = params.watch && params.send_initial_events;
    let quorum = match continued {
        Some(first_page) if !params.watch && !is_get => first_page,
        _ if params.most_recent() => true,
        // A plain watch from a version, a streaming list from "0" or a version, a get or a list from "0" or
        // NotOlderThan a version: all served by the watch cache. An exact-version list reads etcd.
        _ => !params.watch && !is_get && params.resource_version_match.as_deref() == Some("Exact"),
    };
    Served { quorum, streaming }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_to_collections_and_objects() {
        let pods = route("/api/v1/pods").unwrap();
        assert_eq!((pods.resource().kind, pods.namespace, pods.name), ("Pod", None, None));
        let rs = route("/apis/apps/v1/namespaces/shop/replicasets/web-1").unwrap();
        assert_eq!(
            (rs.resource().kind, rs.namespace.as_deref(), rs.name.as_deref()),
            ("ReplicaSet", Some("shop"), Some("web-1"))
        );
        let node = route("/api/v1/nodes/node-1").unwrap();
        assert_eq!((node.resource().kind, node.name.as_deref()), ("Node", Some("node-1")));
        assert!(route("/api/v1/pods/web").is_none(), "a namespaced object needs its namespace");
        assert!(route("/api/v1/namespaces/shop/nodes").is_none(), "nodes are cluster-scoped");
        assert!(route("/api/v1/configmaps").is_none());
    }

    #[test]
    fn kube_rs_queries_decode() {
        let params = Params::parse(
            "&watch=true&timeoutSeconds=290&fieldSelector=spec.nodeName%3Dnode-1%2Cstatus.phase%21%3DFailed&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0",
        );
        assert!(params.watch && params.send_initial_events && params.allow_bookmarks);
        assert_eq!(params.field_selector.as_deref(), Some("spec.nodeName=node-1,status.phase!=Failed"));
        assert_eq!(params.timeout, Some(Duration::from_secs(290)));
        assert_eq!(params.watch_from(), None);
    }

    #[test]
    fn reads_are_classified_as_the_api_server_serves_them() {
        let class = |query: &str| classify(&Params::parse(query), false, None);
        assert!(class("&limit=500").quorum, "kube-rs's default list, and any_semantic() with a page size");
        assert!(!class("&resourceVersion=0&resourceVersionMatch=NotOlderThan").quorum);
        assert!(!class("&resourceVersion=7&resourceVersionMatch=NotOlderThan").quorum);
        assert!(class("&resourceVersion=7&resourceVersionMatch=Exact").quorum);
        assert!(!class("&watch=true&resourceVersion=7").quorum);
        let streaming = class("&watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0");
        assert_eq!(streaming, Served { quorum: false, streaming: true });
        assert!(class("&watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan").quorum);
        assert!(classify(&Params::parse(""), true, None).quorum, "a get without a version reads etcd");
        assert!(!classify(&Params::parse("&resourceVersion=0"), true, None).quorum);
        let next_page = Params::parse("&limit=500&continue=abc");
        assert!(!classify(&next_page, false, Some(false)).quorum, "a continuation is what its first page was");
        assert!(classify(&next_page, false, Some(true)).quorum);
    }
}
