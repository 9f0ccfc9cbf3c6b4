//! Node agents (`network-mapper` processes) against one fake API server, for the API-load benchmark and the
//! stampede test (docs/design.md §7): each agent is a client of its own name on the server, so the server's
//! accounts say what each one asked and was sent. Any `network-mapper` binary runs here (this tree's or the
//! previous release's), so both are measured the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::Guarded;
use crate::fake_apiserver::{FakeApi, RequestRecord, Verb};
use crate::http;

/// A running agent.
pub struct Agent {
    /// Its name on the fake API (its bearer token), and its node.
    pub name: String,
    pub node: String,
    pub process: Guarded,
    pub port: u16,
    pub started: Instant,
}

/// How agents are started.
#[derive(Clone, Debug)]
pub struct AgentSpec {
    pub binary: PathBuf,
    /// The capture file the agent reads (a live capture needs a device; the API cost does not depend on it).
    pub capture: PathBuf,
    /// `--start-jitter` (through `NETMAP_START_JITTER`, which a release without the flag ignores).
    pub start_jitter: Option<Duration>,
    pub extra_args: Vec<String>,
}

/// An agent ready to start: its command line built, its kubeconfig written, so that many start within moments.
pub struct Prepared {
    name: String,
    node: String,
    port: u16,
    command: Command,
}

impl Prepared {
    pub fn start(mut self) -> std::io::Result<Agent> {
        let process = Guarded::spawn(&mut self.command)?;
        Ok(Agent { name: self.name, node: self.node, process, port: self.port, started: Instant::now() })
    }
}

impl Agent {
    /// Starts `node`'s agent as client `name` of `api`, its kubeconfig written into `dir`.
    pub fn start(spec: &AgentSpec, api: &FakeApi, dir: &Path, name: &str, node: &str) -> std::io::Result<Agent> {
        Agent::prepare(spec, api, dir, name, node).start()
    }

    /// [`Agent::start`] in two steps.
    pub fn prepare(spec: &AgentSpec, api: &FakeApi, dir: &Path, name: &str, node: &str) -> Prepared {
        let kubeconfig = api.write_kubeconfig_as(dir, name);
        let port = http::free_port();
        let mut command = Command::new(&spec.binary);
        command
            .args(["--node-name", node, "--no-socket-scan", "--listen-address", &format!("127.0.0.1:{port}")])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--pcap-file")
            .arg(&spec.capture)
            .args(&spec.extra_args)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(jitter) = spec.start_jitter {
            command.env("NETMAP_START_JITTER", format!("{}ms", jitter.as_millis()));
        }
        Prepared { name: name.to_owned(), node: node.to_owned(), port, command }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn is_ready(&self) -> bool {
        http::get(&self.url("/readyz")).is_some_and(|(code, _)| code == 200)
    }

    /// Waits until `/readyz` says ready; returns how long since the start.
    pub fn wait_ready(&self, limit: Duration) -> std::io::Result<Duration> {
        http::until(&format!("{} ready", self.name), limit, || self.is_ready().then_some(()))?;
        Ok(self.started.elapsed())
    }

    pub fn metrics(&self) -> Option<String> {
        http::get(&self.url("/metrics")).filter(|(code, _)| *code == 200).map(|(_, text)| text)
    }

    /// The process's peak resident set (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    }

    /// Its `network_mapper_edge_total` series, sorted, values included.
    pub fn edges(&self) -> Vec<String> {
        let text = self.metrics().unwrap_or_default();
        let mut edges: Vec<String> =
            text.lines().filter(|l| l.starts_with("network_mapper_edge_total{")).map(str::to_owned).collect();
        edges.sort();
        edges
    }
}

/// Requests that list or watch every pod in full (no field selector, not metadata only): what an agent
/// of one node must never send.
pub fn cluster_wide_pod_requests(requests: &[RequestRecord]) -> usize {
    let whole = |r: &&RequestRecord| r.kind == "Pod" && r.verb != Verb::Get && !r.metadata_only;
    requests.iter().filter(whole).filter(|r| r.field_selector.is_none()).count()
}

/// Requests by kind and verb, e.g. `Pod get` → 12.
pub fn requests_by_kind(requests: &[RequestRecord]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in requests {
        let verb = match request.verb {
            Verb::Get => "get",
            _ if request.streaming => "streaming list",
            Verb::List if request.continuation => "list page",
            Verb::List => "list",
            Verb::Watch => "watch",
        };
        *counts.entry(format!("{} {verb}", request.kind)).or_insert(0) += 1;
    }
    counts
}

/// When the agent first asked again for `kind` after the server had refused it (429 or another error).
pub fn first_retry(requests: &[RequestRecord], kind: &str) -> Option<Duration> {
    let mut of_kind = requests.iter().filter(|r| r.kind == kind);
    of_kind.find(|r| r.status >= 400)?;
    of_kind.next().map(|r| r.at)
}

/// When the agent retried the first request the server refused, whatever its kind: the next request of that kind.
pub fn first_retry_of_refused(requests: &[RequestRecord]) -> Option<Duration> {
    let refused = requests.iter().position(|r| r.status >= 400)?;
    let kind = &requests[refused].kind;
    requests[refused + 1..].iter().find(|r| &r.kind == kind).map(|r| r.at)
}

/// Lock-step: the largest share of `agents` that sent a request in one window of `window`, counting each
/// agent once per window, among the request times given per agent. Given each agent's first retry, agents that
/// retry on their own clocks spread out, and agents in step share a window.
pub fn largest_share_in_step(times: &BTreeMap<String, Vec<Duration>>, window: Duration) -> f64 {
    let agents = times.len().max(1);
    let mut all: Vec<(Duration, &str)> =
        times.iter().flat_map(|(agent, ts)| ts.iter().map(move |t| (*t, agent.as_str()))).collect();
    all.sort();
    let mut largest = 0;
    for (start, (at, _)) in all.iter().enumerate() {
        let mut in_window: Vec<&str> =
            all[start..].iter().take_while(|(t, _)| *t < *at + window).map(|(_, agent)| *agent).collect();
        in_window.sort_unstable();
        in_window.dedup();
        largest = largest.max(in_window.len());
    }
    largest as f64 / agents as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_in_step_share_windows_and_agents_apart_do_not() {
        let ms = Duration::from_millis;
        let together: BTreeMap<String, Vec<Duration>> =
            (0..10).map(|i| (format!("a{i}"), vec![ms(1000 + i), ms(2000 + i)])).collect();
        assert_eq!(largest_share_in_step(&together, ms(100)), 1.0);
        let apart: BTreeMap<String, Vec<Duration>> =
            (0..10).map(|i| (format!("a{i}"), vec![ms(1000 + 250 * i)])).collect();
        assert_eq!(largest_share_in_step(&apart, ms(100)), 0.1);
    }
}
