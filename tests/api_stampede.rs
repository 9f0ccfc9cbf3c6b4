//! A DaemonSet restarted at once (docs/design.md §7): 50 node agents, this tree's binary with its default
//! start-up jitter, started within a second against one fake API server that sheds load for the first seconds
//! (every request answered 429 with `Retry-After: 1`). Every agent turns ready, no request is a quorum read or a cluster-wide Pod list, each
//! agent lists only its own node's pods, and the agents do not retry in step. `benches/api_load.sh` runs the same
//! against the previous release at 20,000 pods, side by side.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use testkit::agents::{self, Agent, AgentSpec};
use testkit::capfile::Pcap;
use testkit::fake_apiserver::FakeApi;
use testkit::packets::dlt;
use testkit::scale::{ScaleCluster, ScaleSpec};

const AGENTS: usize = 50;
/// Longer than the start-up jitter's window (5 s) plus the agents' start on a loaded machine (up to 3 s, checked
/// below) and some, so every agent's first requests are refused.
const SHEDDING: Duration = Duration::from_secs(12);

#[test]
fn fifty_agents_restarted_at_once_all_get_ready_without_stampeding() {
    let cluster = ScaleCluster::new(ScaleSpec { nodes: AGENTS, pods: 2_000, namespaces: 5, seed: 3 });
    let api = FakeApi::start();
    cluster.apply_to(&api);
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("empty.pcap");
    Pcap::create(&capture, dlt::EN10MB).unwrap().finish().unwrap();
    let spec = AgentSpec {
        binary: env!("CARGO_BIN_EXE_network-mapper").into(),
        capture,
        start_jitter: None,
        extra_args: Vec::new(),
    };
    let prepared: Vec<_> = cluster.nodes()[..AGENTS]
        .iter()
        .enumerate()
        .map(|(i, node)| Agent::prepare(&spec, &api, dir.path(), &format!("agent-{i}"), &node.name))
        .collect();
    api.fail_requests_for(SHEDDING, 429, Some(1));
    let started = Instant::now();
    let running: Vec<Agent> = prepared.into_iter().map(|agent| agent.start().unwrap()).collect();
    let spread = started.elapsed();
    // Within a second on an idle machine (about 0.3 s here); a loaded CI machine gets some slack.
    assert!(spread < Duration::from_secs(3), "started within {spread:?}");
    for agent in &running {
        agent.wait_ready(Duration::from_secs(90)).unwrap();
    }
    let stats = api.stats();
    assert_eq!(stats.quorum_reads(), 0, "every list from the watch cache");
    let mut retried: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for agent in &running {
        let requests = &stats.client(&agent.name).requests;
        assert_eq!(agents::cluster_wide_pod_requests(requests), 0, "{}: {requests:#?}", agent.name);
        let own = format!("spec.nodeName={}", agent.node);
        let pods = requests.iter().filter(|r| r.kind == "Pod");
        assert!(pods.clone().all(|r| r.field_selector.as_deref() == Some(&own)), "{}: {requests:#?}", agent.name);
        let retry = agents::first_retry_of_refused(requests).expect("the agent retried its refused request");
        retried.insert(agent.name.clone(), vec![retry]);
    }
    for agent in &running {
        let refused = stats.client(&agent.name).requests.iter().any(|r| r.status == 429);
        assert!(refused, "{}: the shedding reached every agent", agent.name);
    }
    let in_step = agents::largest_share_in_step(&retried, Duration::from_millis(100));

    assert!(in_step <= 0.2, "{:.0}% of the agents retried within one 100 ms window", 100.0 * in_step);
    eprintln!(
        "api_stampede: {AGENTS} agents started within {spread:?}, ready after {:.1} s; peak concurrent lists {}, \
         {:.1} MiB sent, at most {:.0}% of the agents' first retries within one 100 ms window",
        started.elapsed().as_secs_f64(),
        stats.peak_concurrent_lists,
        stats.total.bytes as f64 / (1 << 20) as f64,
        100.0 * in_step
    );
}
