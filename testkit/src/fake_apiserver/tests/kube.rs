//! kube-rs 5 against the fake server: its watchers reach InitDone, their requests are classified as a real API
//! server would serve them, and its typed getters see objects and `NotFound` as from a real one.

use std::path::Path;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, Config, ResourceExt};

use super::{cluster, pod};
use crate::fake_apiserver::{FakeApi, Verb};

/// A client that authenticates as `name`, through a kubeconfig file as the exporter reads one.
async fn client(api: &FakeApi, dir: &Path, name: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(api.write_kubeconfig_as(dir, name)).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    Client::try_from(config).unwrap()
}

type Events = std::pin::Pin<Box<dyn Stream<Item = Result<Event<Pod>, watcher::Error>> + Send>>;

fn pods(client: Client, config: watcher::Config) -> Events {
    watcher(Api::<Pod>::all(client), config).boxed()
}

async fn next(events: &mut Events) -> Event<Pod> {
    let event = tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("an event in time");
    event.expect("the stream goes on").expect("no watcher error")
}

/// The pods the initial list delivered, once the watcher says it is done.
async fn initial(events: &mut Events) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        match next(events).await {
            Event::InitApply(pod) => names.push(pod.name_any()),
            Event::InitDone => return names,
            Event::Init => {}
            other => panic!("unexpected before InitDone: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_streaming_watcher_reaches_init_done_from_the_watch_cache() {
    let (api, dir) = (cluster(), tempfile::tempdir().unwrap());
    let config = watcher::Config::default().streaming_lists().fields("spec.nodeName=node-1");
    let mut events = pods(client(&api, dir.path(), "streamer").await, config);
    assert_eq!(initial(&mut events).await, ["web-1", "web-2"]);
    let account = api.stats().client("streamer");
    let record = &account.requests[0];
    assert_eq!((record.verb, record.streaming, record.quorum), (Verb::Watch, true, false));
    assert_eq!((account.quorum_reads(), account.sent.initial_events, account.sent.bookmarks), (0, 2, 1));
}

#[tokio::test]
async fn the_default_watcher_lists_with_a_quorum_read() {
    let (api, dir) = (cluster(), tempfile::tempdir().unwrap());
    let mut events = pods(client(&api, dir.path(), "default").await, watcher::Config::default());
    assert_eq!(initial(&mut events).await.len(), 4);
    let account = api.stats().client("default");
    let list = &account.requests[0];
    assert_eq!((list.verb, list.quorum, list.query.as_str()), (Verb::List, true, "&limit=500"));
    assert_eq!(account.quorum_reads(), 1);
}

/// kube-rs drops `resourceVersion=0` from a list that has a limit (kube-core `ListParams::populate_qp`), so
/// `any_semantic()` with its default page size of 500 is still a quorum read; only without a page size is it
/// served from the watch cache.
#[tokio::test]
async fn any_semantic_is_served_from_the_cache_only_without_a_page_size() {
    let (api, dir) = (cluster(), tempfile::tempdir().unwrap());
    let paged = pods(client(&api, dir.path(), "paged").await, watcher::Config::default().any_semantic());
    let unpaged = watcher::Config { page_size: None, ..watcher::Config::default().any_semantic() };
    let whole = pods(client(&api, dir.path(), "whole").await, unpaged);
    for mut events in [paged, whole] {
        assert_eq!(initial(&mut events).await.len(), 4);
    }
    let stats = api.stats();
    let (paged, whole) = (&stats.client("paged").requests[0], &stats.client("whole").requests[0]);
    assert_eq!((paged.query.as_str(), paged.quorum), ("&limit=500", true));
    assert_eq!((whole.query.as_str(), whole.quorum), ("&resourceVersion=0&resourceVersionMatch=NotOlderThan", false));
    assert_eq!(stats.quorum_reads(), 1);
}

#[tokio::test]
async fn a_field_selected_watcher_sees_pods_enter_and_leave() {
    let (api, dir) = (cluster(), tempfile::tempdir().unwrap());
    let config = watcher::Config::default().streaming_lists().fields("spec.nodeName=node-1");
    let mut events = pods(client(&api, dir.path(), "node-1").await, config);
    initial(&mut events).await;
    api.apply(pod("web-3", Some("node-1"), "10.244.1.12"));
    assert!(matches!(next(&mut events).await, Event::Apply(p) if p.name_any() == "web-3"));
    api.apply(pod("web-2", Some("node-2"), "10.244.2.11"));
    assert!(matches!(next(&mut events).await, Event::Delete(p) if p.name_any() == "web-2"));
    api.apply(pod("web-8", Some("node-2"), "10.244.2.18"));
    api.delete("Pod", "shop", "web-1");
    assert!(matches!(next(&mut events).await, Event::Delete(p) if p.name_any() == "web-1"), "web-8 never matched");
}

#[tokio::test]
async fn a_refused_streaming_list_is_an_invalid_status_to_kube_rs() {
    let (api, dir) = (cluster(), tempfile::tempdir().unwrap());
    api.refuse_streaming_lists(true);
    let mut events = pods(client(&api, dir.path(), "old").await, watcher::Config::default().streaming_lists());
    let error = tokio::time::timeout(Duration::from_secs(10), events.next()).await.unwrap().unwrap().unwrap_err();
    let watcher::Error::WatchStartFailed(kube::Error::Api(status)) = error else { panic!("{error:?}") };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(status.message.contains("sendInitialEvents"), "{}", status.message);
}

#[tokio::test]
async fn getters_see_objects_and_not_found() {
    let (api, dir) = (cluster(), tempfile::tempdir().unwrap());
    let client = client(&api, dir.path(), "getter").await;
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "shop");
    assert!(replica_sets.get_opt("gone").await.unwrap().is_none());
    let meta = replica_sets.get_metadata_opt("web-7d").await.unwrap().expect("present");
    assert_eq!(meta.owner_references()[0].name, "web");
    let node = Api::<Node>::all(client).get("node-1").await.unwrap();
    assert_eq!(node.spec.unwrap().pod_cidr.as_deref(), Some("10.244.1.0/24"));
    let account = api.stats().client("getter");
    let gets: Vec<(&str, bool, u16)> = account.requests.iter().map(|r| (r.kind, r.metadata_only, r.status)).collect();
    assert_eq!(gets, [("ReplicaSet", false, 404), ("ReplicaSet", true, 200), ("Node", false, 200)]);
    assert!(account.requests.iter().all(|r| r.verb == Verb::Get && r.quorum), "gets without a version read etcd");
}
