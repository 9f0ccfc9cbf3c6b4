//! What a node's agent asks of the API server (docs/design.md §7), measured on the fake API server the way the
//! API server would count it, side by side with the previous release (`benches/api_load.sh` builds it and runs
//! this with `BASELINE_BIN`). The cluster is `testkit::scale`'s: 200 nodes, 20,000 pods of 5–8 KB.
//!
//! 1. One agent: bytes and objects received until ready, requests by kind, quorum reads, cluster-wide full-Pod
//!    requests, time to ready, peak RSS; then a capture of DNS answers to its node's pods for servers of every
//!    shape, which both agents must map to exactly the edges the cluster's own account gives.
//! 2. Steady state: 1% of the cluster's pods replaced per minute for a minute, as the control plane does; the
//!    watch events each agent receives, against a reference client that watches Services, EndpointSlices and
//!    the node's own pods.
//! 3. A stampede: 50 agents started within a second while the server sheds load for 8 s (every request answered
//!    429, `Retry-After: 1`): time until all are ready, peak concurrent lists, bytes, and how many agents retry in
//!    step (the largest share of their first retries within one 100 ms window).
//!
//! Exits non-zero when over budget (the issue's): this tree's start-up bytes over 25% of the previous
//! release's, any cluster-wide full-Pod request or quorum read, peak RSS over 40 MiB, churn events over the
//! reference's, an edge not exact, an agent not ready, or a quarter of the agents retrying in step.

mod phases;
mod traffic;

use std::path::PathBuf;
use std::time::Duration;

use testkit::agents::AgentSpec;
use testkit::fake_apiserver::FakeApi;
use testkit::scale::{ScaleCluster, ScaleSpec};

const RSS_BUDGET: u64 = 40 << 20;
const BYTES_BUDGET: f64 = 0.25;
const IN_STEP_BUDGET: f64 = 0.25;

fn main() {
    let Ok(baseline) = std::env::var("BASELINE_BIN") else {
        eprintln!("api_load: run it through benches/api_load.sh, which builds the previous release (BASELINE_BIN)");
        std::process::exit(2);
    };
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let mut cluster = ScaleCluster::new(ScaleSpec::default());
    let api = FakeApi::start();
    cluster.apply_to(&api);
    let node = cluster.nodes()[7].name.clone();
    let capture = dir.path().join("traffic.pcap");
    let expected = traffic::write(&cluster, &node, &capture);
    eprintln!("api_load: cluster and capture ready in {:.0} s", started.elapsed().as_secs_f64());
    let binaries = [("previous release", PathBuf::from(baseline)), ("this tree", env_bin())];
    let spec = |binary: &PathBuf| AgentSpec {
        binary: binary.clone(),
        capture: capture.clone(),
        start_jitter: Some(Duration::ZERO),
        extra_args: Vec::new(),
    };
    let agents: Vec<_> =
        binaries.iter().map(|(label, b)| (*label, phases::one_agent(&api, &spec(b), dir.path(), &node))).collect();
    let churn: Vec<_> = binaries
        .iter()
        .map(|(label, b)| (*label, phases::churn(&api, &mut cluster, &spec(b), dir.path(), &node)))
        .collect();
    let stampede: Vec<_> = binaries
        .iter()
        .map(|(label, b)| {
            let spec = AgentSpec { start_jitter: None, ..spec(b) };
            (*label, phases::stampede(&api, &cluster, &spec, dir.path()))
        })
        .collect();
    phases::report(&agents, &churn, &stampede);
    let missed = budgets(&agents, &churn, &stampede, &expected);
    if !missed.is_empty() {
        println!("\nbudget MISSED: {}", missed.join("; "));
        std::process::exit(1);
    }
    println!(
        "\nbudget met: start-up bytes <= 25% of the previous release's, no cluster-wide full-Pod request, no quorum read, peak RSS <= 40 MiB, churn events <= Services + EndpointSlices + own pods, edges exact, every stampeding agent ready, fewer than a quarter in step"
    );
}

fn env_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_network-mapper"))
}

/// What missed its budget, in words.
fn budgets(
    agents: &[(&str, phases::OneAgent)],
    churn: &[(&str, phases::Churned)],
    stampede: &[(&str, phases::Stampede)],
    expected: &traffic::Expected,
) -> Vec<String> {
    let (previous, current) = (&agents[0].1, &agents[1].1);
    let mut missed = Vec::new();
    let ratio = current.startup.bytes as f64 / previous.startup.bytes.max(1) as f64;
    if ratio > BYTES_BUDGET {
        missed.push(format!("start-up bytes {:.1}% of the previous release's", 100.0 * ratio));
    }
    if current.cluster_wide_pods > 0 || current.quorum_reads > 0 {
        missed.push(format!(
            "{} cluster-wide Pod requests, {} quorum reads",
            current.cluster_wide_pods, current.quorum_reads
        ));
    }
    if current.peak_rss > RSS_BUDGET {
        missed.push(format!("peak RSS {:.1} MiB", current.peak_rss as f64 / (1 << 20) as f64));
    }
    for (label, agent) in agents {
        if &agent.edges != expected {
            missed.push(format!(
                "{label}: {} edges differ from the cluster's account",
                phases::differences(&agent.edges, expected)
            ));
        }
    }
    let churned = &churn[1].1;
    if churned.agent_events > churned.reference_events {
        missed.push(format!("churn: {} watch events > reference {}", churned.agent_events, churned.reference_events));
    }
    let run = &stampede[1].1;
    if run.ready < run.agents || run.in_step > IN_STEP_BUDGET {
        missed.push(format!("stampede: {}/{} ready, {:.0}% in step", run.ready, run.agents, 100.0 * run.in_step));
    }
    missed
}
