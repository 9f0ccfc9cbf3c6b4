//! The three phases of the API-load benchmark and their report (see `main.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use testkit::agents::{self, Agent, AgentSpec};
use testkit::fake_apiserver::{FakeApi, Sent};
use testkit::scale::ScaleCluster;

use crate::traffic::{self, Expected};

const READY_WITHIN: Duration = Duration::from_secs(300);
/// 1% of 20,000 pods a minute: 10 every 3 s for a minute.
const CHURN_STEPS: usize = 20;
const CHURN_PER_STEP: usize = 10;
const CHURN_STEP: Duration = Duration::from_secs(3);
const STAMPEDE_AGENTS: usize = 50;
/// How long the server sheds load (429, `Retry-After: 1`) from the stampede's start: past the start-up jitter's
/// window, so every agent's first requests are refused.
const SHEDDING: Duration = Duration::from_secs(8);

/// One agent, from start to its mapped capture.
pub struct OneAgent {
    pub ready: Duration,
    pub startup: Sent,
    pub requests: BTreeMap<String, usize>,
    pub quorum_reads: usize,
    pub cluster_wide_pods: usize,
    pub fetches: Sent,
    pub peak_rss: u64,
    pub edges: Expected,
}

pub fn one_agent(api: &FakeApi, spec: &AgentSpec, dir: &Path, node: &str) -> OneAgent {
    api.reset_stats();
    let agent = Agent::start(spec, api, dir, "agent", node).expect("start the agent");
    let ready = agent.wait_ready(READY_WITHIN).expect("the agent turns ready");
    let startup = api.stats().client("agent");
    let edges = settled_edges(&agent);
    let after = api.stats().client("agent");
    let fetched = Sent {
        bytes: after.sent.bytes - startup.sent.bytes,
        objects: after.sent.objects - startup.sent.objects,
        ..Sent::default()
    };
    OneAgent {
        ready,
        startup: startup.sent,
        requests: agents::requests_by_kind(&after.requests),
        quorum_reads: after.quorum_reads(),
        cluster_wide_pods: agents::cluster_wide_pod_requests(&after.requests),
        fetches: fetched,
        peak_rss: agent.peak_rss().unwrap_or(0),
        edges,
    }
}

/// The agent's edges once they stop changing (the capture read, every fetch answered).
fn settled_edges(agent: &Agent) -> Expected {
    let (mut last, mut since) = (Expected::new(), Instant::now());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let now = traffic::counted(&agent.edges());
        let pending = agent.metrics().unwrap_or_default().lines().any(|l| l.ends_with(" 0") && l.contains("pending"));
        if now != last {
            (last, since) = (now, Instant::now());
        } else if !last.is_empty() && pending && since.elapsed() > Duration::from_secs(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    last
}

/// How many label sets differ between two edge maps.
pub fn differences(got: &Expected, expected: &Expected) -> usize {
    let keys: BTreeSet<&String> = got.keys().chain(expected.keys()).collect();
    keys.into_iter().filter(|k| got.get(*k) != expected.get(*k)).count()
}

/// A minute of churn as one agent saw it.
pub struct Churned {
    pub replaced: usize,
    pub agent_events: u64,
    pub reference_events: u64,
}

pub fn churn(api: &FakeApi, cluster: &mut ScaleCluster, spec: &AgentSpec, dir: &Path, node: &str) -> Churned {
    let agent = Agent::start(spec, api, dir, "churned", node).expect("start the agent");
    agent.wait_ready(READY_WITHIN).expect("the agent turns ready");
    std::thread::sleep(Duration::from_secs(2));
    api.reset_stats();
    let reference = Reference::watch(api, node);
    let mut replaced = 0;
    for _ in 0..CHURN_STEPS {
        let step = Instant::now();
        replaced += cluster.replace_pods(api, CHURN_PER_STEP).replaced.len();
        std::thread::sleep(CHURN_STEP.saturating_sub(step.elapsed()));
    }
    std::thread::sleep(Duration::from_secs(2));
    let stats = api.stats();
    drop(reference);
    Churned {
        replaced,
        agent_events: stats.client("churned").sent.watch_events,
        reference_events: stats.client(Reference::NAME).sent.watch_events,
    }
}

/// What kube-proxy watches on every node (Services, EndpointSlices) plus the node's own pods: the watch load a
/// node's agent is allowed, measured by a client that holds exactly those watches.
struct Reference {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Reference {
    const NAME: &str = "reference";

    fn watch(api: &FakeApi, node: &str) -> Reference {
        let version = api.resource_version();
        let paths = [
            "/api/v1/services?".to_owned(),
            "/apis/discovery.k8s.io/v1/endpointslices?".to_owned(),
            format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{node}&"),
        ];
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers = paths
            .into_iter()
            .map(|path| {
                // The streams end by themselves just after the churn, so dropping the reference never waits long.
                let seconds = (CHURN_STEP * CHURN_STEPS as u32).as_secs() + 10;
                let url = format!("{}{path}watch=true&resourceVersion={version}&timeoutSeconds={seconds}", api.url());
                let stop = stop.clone();
                std::thread::spawn(move || drain(&url, &stop))
            })
            .collect();
        Reference { stop, readers }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.readers.drain(..).for_each(|r| drop(r.join()));
    }
}

/// Reads a watch stream until `stop`.
fn drain(url: &str, stop: &std::sync::atomic::AtomicBool) {
    let client = reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(600)).build().unwrap();
    let Ok(mut response) = client.get(url).bearer_auth(Reference::NAME).send() else { return };
    let mut buffer = [0u8; 65_536];
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        match response.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// 50 agents started at once.
pub struct Stampede {
    pub agents: usize,
    pub ready: usize,
    pub all_ready: Duration,
    pub peak_concurrent_lists: usize,
    pub bytes: u64,
    pub quorum_reads: usize,
    pub in_step: f64,
}

pub fn stampede(api: &FakeApi, cluster: &ScaleCluster, spec: &AgentSpec, dir: &Path) -> Stampede {
    api.reset_stats();
    let prepared: Vec<_> = cluster.nodes()[..STAMPEDE_AGENTS]
        .iter()
        .enumerate()
        .map(|(i, node)| Agent::prepare(spec, api, dir, &format!("s{i}"), &node.name))
        .collect();
    api.fail_requests_for(SHEDDING, 429, Some(1));
    let started = Instant::now();
    let agents: Vec<Agent> = prepared.into_iter().map(|a| a.start().expect("start an agent")).collect();
    let mut ready = vec![false; agents.len()];
    while started.elapsed() < READY_WITHIN && ready.iter().any(|r| !r) {
        for (agent, ready) in agents.iter().zip(ready.iter_mut()).filter(|(_, r)| !**r) {
            *ready = agent.is_ready();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let all_ready = started.elapsed();
    let stats = api.stats();
    let retries: BTreeMap<String, Vec<Duration>> = stats
        .clients
        .iter()
        .filter_map(|(name, client)| Some((name.clone(), vec![agents::first_retry(&client.requests, "Service")?])))
        .collect();
    Stampede {
        agents: agents.len(),
        ready: ready.iter().filter(|r| **r).count(),
        all_ready,
        peak_concurrent_lists: stats.peak_concurrent_lists,
        bytes: stats.total.bytes,
        quorum_reads: stats.quorum_reads(),
        in_step: agents::largest_share_in_step(&retries, Duration::from_millis(100)),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

pub fn report(agents: &[(&str, OneAgent)], churn: &[(&str, Churned)], stampede: &[(&str, Stampede)]) {
    println!("One agent, 20,000 pods on 200 nodes (testkit::scale)\n");
    println!(
        "| agent | ready after | bytes until ready | objects until ready | quorum reads | cluster-wide full-Pod requests | fetched after ready | peak RSS | edges |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (label, a) in agents {
        println!(
            "| {label} | {:.1} s | {:.1} MiB | {} | {} | {} | {:.2} MiB, {} objects | {:.1} MiB | {} |",
            a.ready.as_secs_f64(),
            mib(a.startup.bytes),
            a.startup.objects,
            a.quorum_reads,
            a.cluster_wide_pods,
            mib(a.fetches.bytes),
            a.fetches.objects,
            mib(a.peak_rss),
            a.edges.len()
        );
    }
    for (label, a) in agents {
        let requests: Vec<String> = a.requests.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("\n{label}: requests by kind: {}", requests.join(", "));
    }
    println!("\nSteady state, 1% of the pods replaced per minute\n");
    println!("| agent | pods replaced | watch events received | reference: Services + EndpointSlices + own pods |");
    println!("|---|---|---|---|");
    for (label, c) in churn {
        println!("| {label} | {} | {} | {} |", c.replaced, c.agent_events, c.reference_events);
    }
    println!(
        "\nStampede: {STAMPEDE_AGENTS} agents started within a second, the server shedding load (429) for the first {} s\n",
        SHEDDING.as_secs()
    );
    println!(
        "| agents | ready | all ready after | peak concurrent lists | bytes sent | quorum reads | largest share of first retries in one 100 ms window |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, s) in stampede {
        println!(
            "| {label} | {}/{} | {:.1} s | {} | {:.0} MiB | {} | {:.0}% |",
            s.ready,
            s.agents,
            s.all_ready.as_secs_f64(),
            s.peak_concurrent_lists,
            mib(s.bytes),
            s.quorum_reads,
            100.0 * s.in_step
        );
    }
}
