//! A DaemonSet restarted at once (docs/design.md §7): 50 node agents, this tree's binary with its default
//! start-up jitter, started within a second against one fake API server that answers the first requests with 429
//! (`Retry-After: 1`). Every agent turns ready, no request is a quorum read or a cluster-wide Pod list, each
//! agent lists only its own node's pods, and the agents do not retry in step. `benches/api_load.sh` runs the same
//! against the previous release at 20,000 pods, side by side.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use testkit::agents::{self, Agent, AgentSpec};
use testkit::capfile::Pcap;
use testkit::fake_apiserver::{FakeApi, RequestRecord};
use testkit::packets::dlt;
use testkit::scale::{ScaleCluster, ScaleSpec};

const AGENTS: usize = 50;
const STORM: usize = 150;

/// When an agent asked again for a kind the server had refused with 429.
fn retries(requests: &[RequestRecord]) -> Vec<Duration> {
    let mut refused = Vec::new();
    let mut times = Vec::new();
    for request in requests {
        if let Some(at) = refused.iter().position(|k| *k == request.kind) {
            refused.swap_remove(at);
            times.push(request.at);
        }
        if request.status == 429 {
            refused.push(request.kind);
        }
    }
    times
}

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
    api.fail_next_requests_retry_after(STORM, 429, Some(1));
    let started = Instant::now();
    let running: Vec<Agent> = cluster.nodes()[..AGENTS]
        .iter()
        .enumerate()
        .map(|(i, node)| Agent::start(&spec, &api, dir.path(), &format!("agent-{i}"), &node.name).unwrap())
        .collect();
    assert!(started.elapsed() < Duration::from_secs(1), "started within a second: {:?}", started.elapsed());
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
        retried.insert(agent.name.clone(), retries(requests));
    }
    let refused: usize = stats.clients.values().flat_map(|c| &c.requests).filter(|r| r.status == 429).count();
    assert_eq!(refused, STORM, "the storm reached the agents");
    let in_step = agents::largest_share_in_step(&retried, Duration::from_millis(100));
    assert!(in_step <= 0.25, "{:.0}% of the agents retried within one 100 ms window", 100.0 * in_step);
    eprintln!(
        "api_stampede: {AGENTS} agents ready after {:.1} s; peak concurrent lists {}, {:.1} MiB sent, at most {:.0}% \
         retrying within one 100 ms window",
        started.elapsed().as_secs_f64(),
        stats.peak_concurrent_lists,
        stats.total.bytes as f64 / (1 << 20) as f64,
        100.0 * in_step
    );
}
