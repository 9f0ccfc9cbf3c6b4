//! What goes over the wire: paths, selectors, status codes, streaming lists and the accounts they leave.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{cluster, get, names, pod, seen, watch, watch_as};
use crate::fake_apiserver::{ANONYMOUS, FakeApi, Verb};

#[test]
fn namespaced_collections_and_single_objects_are_served() {
    let api = cluster();
    assert_eq!(names(&get(&api, "/api/v1/namespaces/shop/pods", None, false).body), ["web-1", "web-2", "web-3"]);
    assert_eq!(names(&get(&api, "/api/v1/pods", None, false).body).len(), 4);
    let pod = get(&api, "/api/v1/namespaces/shop/pods/web-1", None, false);
    assert_eq!((pod.status, pod.body["kind"].as_str()), (200, Some("Pod")));
    assert_eq!(pod.body["status"]["podIP"], json!("10.244.1.10"));
    let meta = get(&api, "/apis/apps/v1/namespaces/shop/replicasets/web-7d", None, true);
    assert_eq!(meta.body["kind"], json!("PartialObjectMetadata"));
    assert_eq!(meta.body["metadata"]["ownerReferences"][0]["name"], json!("web"));
    assert_eq!(get(&api, "/apis/batch/v1/namespaces/shop/jobs/backup-1", None, false).status, 200);
    let node = get(&api, "/api/v1/nodes/node-1", None, false);
    assert_eq!(node.body["spec"]["podCIDR"], json!("10.244.1.0/24"));
    assert_eq!(names(&get(&api, "/api/v1/nodes", None, true).body), ["node-1", "node-2"]);
}

#[test]
fn a_missing_object_is_a_not_found_status() {
    let api = cluster();
    let missing = get(&api, "/apis/apps/v1/namespaces/shop/replicasets/gone", None, false);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["reason"], json!("NotFound"));
    assert_eq!(missing.body["code"], json!(404));
    assert_eq!(missing.body["message"], json!("replicasets.apps \"gone\" not found"));
    assert_eq!(get(&api, "/api/v1/namespaces/billing/pods/web-1", None, true).status, 404, "wrong namespace");
    assert_eq!(get(&api, "/api/v1/configmaps", None, false).body["reason"], json!("NotFound"));
}

#[test]
fn field_selectors_select_as_the_api_server_does() {
    let api = cluster();
    let list = |query: &str| names(&get(&api, &format!("/api/v1/pods?{query}"), None, false).body).join(",");
    assert_eq!(list("fieldSelector=spec.nodeName%3Dnode-1"), "web-1,web-2");
    assert_eq!(list("fieldSelector=spec.nodeName%3D"), "web-3", "unscheduled pods");
    assert_eq!(list("fieldSelector=status.podIP%3D10.244.2.10"), "invoices-1");
    assert_eq!(list("fieldSelector=spec.nodeName%21%3Dnode-1%2Cmetadata.namespace%3Dshop"), "web-3");
    assert_eq!(list("labelSelector=app%3Dnone"), "", "label selectors apply too");
    let nodes = get(&api, "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse", None, false);
    assert_eq!(names(&nodes.body), ["node-1"]);
    let refused = get(&api, "/api/v1/pods?fieldSelector=spec.containers%3Dx", None, false);
    assert_eq!((refused.status, refused.body["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(refused.body["message"], json!("field label not supported: spec.containers"));
    let ignored = get(&api, "/api/v1/namespaces/shop/pods/web-1?fieldSelector=spec.nodeName%3Dnode-9", None, false);
    assert_eq!(ignored.status, 200, "a get has no selectors");
}

#[test]
fn pages_continue_without_repeating_and_count_as_one_list() {
    let api = cluster();
    let first = get(&api, "/api/v1/pods?limit=2", Some("pager"), false);
    assert_eq!(names(&first.body), ["invoices-1", "web-1"]);
    let token = first.body["metadata"]["continue"].as_str().unwrap().to_owned();
    let second = get(&api, &format!("/api/v1/pods?limit=2&continue={token}"), Some("pager"), false);
    assert_eq!(names(&second.body), ["web-2", "web-3"]);
    assert!(second.body["metadata"].get("continue").is_none());
    assert_eq!(second.body["metadata"]["resourceVersion"], first.body["metadata"]["resourceVersion"]);
    let cached =
        get(&api, "/api/v1/pods?limit=1&resourceVersion=0&resourceVersionMatch=NotOlderThan", Some("pager"), false);
    let token = cached.body["metadata"]["continue"].as_str().unwrap().to_owned();
    get(&api, &format!("/api/v1/pods?limit=1&continue={token}"), Some("pager"), false);
    let pager = api.stats().client("pager");
    let quorum: Vec<bool> = pager.requests.iter().map(|r| r.quorum).collect();
    assert_eq!(quorum, [true, true, false, false], "a continuation is served as its first page was");
    assert_eq!((pager.lists(), pager.quorum_reads()), (2, 1));
    assert_eq!(pager.sent.objects, 6);
}

#[test]
fn every_request_is_recorded_and_its_bytes_counted_per_client() {
    let api = cluster();
    let a = get(&api, "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1", Some("agent-a"), false);
    let b = get(&api, "/api/v1/namespaces/shop/pods/web-1?resourceVersion=0", Some("agent-b"), true);
    let anonymous = get(&api, "/api/v1/nodes/missing", None, false);
    let stats = api.stats();
    let agent_a = stats.client("agent-a");
    assert_eq!((agent_a.sent.bytes, agent_a.sent.objects), (a.len as u64, 2));
    let record = &agent_a.requests[0];
    assert_eq!((record.verb, record.kind, record.quorum, record.status), (Verb::List, "Pod", true, 200));
    assert_eq!(record.field_selector.as_deref(), Some("spec.nodeName=node-1"));
    let agent_b = stats.client("agent-b");
    let record = &agent_b.requests[0];
    assert_eq!(
        (record.verb, record.name.as_deref(), record.namespace.as_deref()),
        (Verb::Get, Some("web-1"), Some("shop"))
    );
    assert!(record.metadata_only && !record.quorum, "a get from version 0 is served from the cache");
    assert_eq!(agent_b.of_kind("Pod").bytes, b.len as u64);
    assert_eq!(stats.client(ANONYMOUS).requests[0].status, 404);
    assert_eq!(stats.total.bytes, (a.len + b.len + anonymous.len) as u64);
    api.reset_stats();
    assert_eq!(api.stats().requests(), 0);
    assert_eq!(api.list_count("/api/v1/pods"), 1, "the plain request log survives a reset");
}

#[test]
fn a_streaming_list_sends_the_state_then_the_end_bookmark_then_changes() {
    let api = cluster();
    let query = "/api/v1/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0\
                 &allowWatchBookmarks=true&fieldSelector=spec.nodeName%3Dnode-1";
    let mut events = watch(&api, query, "streamer");
    let initial: Vec<_> = events.by_ref().take(3).collect();
    assert_eq!(seen(&initial[0]), ("ADDED".into(), "web-1".into()));
    assert_eq!(seen(&initial[1]), ("ADDED".into(), "web-2".into()));
    let end = &initial[2];
    assert_eq!(end["type"], json!("BOOKMARK"));
    assert_eq!(end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], json!("true"));
    assert_eq!(end["object"]["metadata"]["resourceVersion"], json!(api.resource_version().to_string()));
    api.apply(pod("web-1", Some("node-1"), "10.244.1.99"));
    assert_eq!(seen(&events.next().unwrap()), ("MODIFIED".into(), "web-1".into()));
    let stats = api.stats();
    let streamer = stats.client("streamer");
    assert!(streamer.requests[0].streaming && !streamer.requests[0].quorum);
    assert_eq!((streamer.sent.initial_events, streamer.sent.watch_events, streamer.sent.bookmarks), (2, 3, 1));
    assert_eq!((streamer.lists_in_flight, stats.peak_concurrent_lists), (0, 1), "done at its end bookmark");
}

#[test]
fn a_field_selected_watch_sees_objects_enter_and_leave_the_selector() {
    let api = cluster();
    let from = api.resource_version();
    let query = format!("/api/v1/pods?watch=true&resourceVersion={from}&fieldSelector=spec.nodeName%3Dnode-1");
    let mut events = watch(&api, &query, "mover");
    api.apply(pod("web-3", Some("node-1"), "10.244.1.12"));
    api.apply(pod("web-9", Some("node-2"), "10.244.2.19"));
    api.apply(pod("web-2", Some("node-2"), "10.244.2.11"));
    api.delete("Pod", "shop", "web-1");
    let events: Vec<_> = events.by_ref().take(3).collect();
    let expected = [("ADDED", "web-3"), ("DELETED", "web-2"), ("DELETED", "web-1")];
    assert_eq!(
        events.iter().map(seen).collect::<Vec<_>>(),
        expected.map(|(ty, name)| (ty.to_owned(), name.to_owned()))
    );
    assert_eq!(api.stats().client("mover").sent.watch_events, 3, "web-9 never matched");
    let left = &events[1]["object"];
    assert_eq!(left["spec"]["nodeName"], json!("node-1"), "what left is its last matching state");
    assert_eq!(left["metadata"]["resourceVersion"], json!((from + 3).to_string()), "at the event's version");
}

#[test]
fn refusals_are_answered_as_a_server_without_the_feature() {
    let api = cluster();
    api.refuse_streaming_lists(true);
    let streaming =
        "/api/v1/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0";
    let refused = get(&api, streaming, Some("old"), false);
    assert_eq!((refused.status, refused.body["reason"].as_str()), (422, Some("Invalid")));
    let message = refused.body["message"].as_str().unwrap();
    assert!(message.starts_with("ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden"), "{message}");
    assert_eq!(refused.body["details"]["causes"][0]["field"], json!("sendInitialEvents"));
    api.refuse_field_selectors(true);
    let refused = get(&api, "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1", Some("old"), false);
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["message"], json!("field label not supported: spec.nodeName"));
    assert_eq!(get(&api, "/api/v1/pods?limit=10", Some("old"), false).status, 200);
    assert_eq!(api.stats().client("old").lists_in_flight, 0);
}

#[test]
fn a_429_says_when_to_retry() {
    let api = cluster();
    api.fail_next_requests(1, 429);
    api.fail_next_requests_retry_after(1, 429, Some(7));
    let first = get(&api, "/api/v1/pods", None, false);
    assert_eq!((first.status, first.body["reason"].as_str()), (429, Some("TooManyRequests")));
    assert_eq!(first.headers["retry-after"], "1");
    assert_eq!(get(&api, "/api/v1/pods", None, false).headers["retry-after"], "7");
    assert_eq!(get(&api, "/api/v1/pods", None, false).status, 200);
    let records = api.stats().client(ANONYMOUS).requests;
    assert_eq!(records.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 429, 200]);
}

/// Lists too big for the socket buffers stay in flight until their reader takes the last byte.
#[test]
fn lists_are_in_flight_until_their_last_byte() {
    let api = FakeApi::start();
    let padding = "x".repeat(8_000);
    api.apply_all((0..2_000).map(|i| {
        let mut pod = pod(&format!("p-{i}"), Some("node-1"), "10.244.1.1");
        pod["metadata"]["annotations"] = json!({"padding": padding});
        pod
    }));
    let readers: Vec<_> = (0..3)
        .map(|i| {
            let response = super::http().get(format!("{}/api/v1/pods", api.url())).bearer_auth(format!("r{i}")).send();
            response.unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(api.stats().lists_in_flight, 3, "16 MB each cannot all be in the socket buffers yet");
    for reader in readers {
        assert!(reader.text().unwrap().len() > 16_000_000);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while api.stats().lists_in_flight > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = api.stats();
    assert_eq!((stats.lists_in_flight, stats.peak_concurrent_lists), (0, 3));
    assert_eq!(stats.client("r1").peak_lists_in_flight, 1);
}

#[test]
fn watches_get_bookmarks_and_end_at_their_timeout() {
    let api = cluster();
    api.set_bookmark_interval(Duration::from_millis(300));
    let from = api.resource_version();
    let started = Instant::now();
    let query = format!("/api/v1/pods?watch=true&resourceVersion={from}&allowWatchBookmarks=true&timeoutSeconds=3");
    let types: Vec<String> = watch(&api, &query, "sleeper").map(|e| seen(&e).0).collect();
    assert!((2.9..5.0).contains(&started.elapsed().as_secs_f64()), "ended after {:?}", started.elapsed());
    assert!(types.len() >= 3 && types.iter().all(|t| t == "BOOKMARK"), "{types:?}");
    assert_eq!(api.stats().client("sleeper").sent.bookmarks, types.len() as u64);
}

#[test]
fn metadata_only_watches_send_partial_objects() {
    let api = cluster();
    let query = "/apis/apps/v1/replicasets?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan\
                 &allowWatchBookmarks=true";
    let events: Vec<_> = watch_as(&api, query, "meta", true).take(2).collect();
    assert_eq!(seen(&events[0]), ("ADDED".into(), "web-7d".into()));
    assert_eq!(events[0]["object"]["kind"], json!("PartialObjectMetadata"));
    assert_eq!(events[1]["object"]["kind"], json!("PartialObjectMetadata"), "the bookmark too");
    let record = &api.stats().client("meta").requests[0];
    assert!(record.streaming && record.metadata_only);
    assert!(record.quorum, "a streaming list without a version is a consistent read");
}
