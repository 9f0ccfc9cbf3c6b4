//! The fake API server under the load of issue 20's stampede benchmark: 50 clients listing the 20,000-pod,
//! 200-node cluster of `testkit::scale` at once, as paged lists (kube-rs's default), as streaming lists, and as
//! streaming lists of their own node's pods. Clients only drain bytes (no JSON parsing), so the figures are the
//! server's. Also prints the cluster's pod sizes. A measurement, not a test:
//! `cargo run -p testkit --release --example fake_api_load`.

use std::io::Read;
use std::time::{Duration, Instant};

use testkit::fake_apiserver::FakeApi;
use testkit::scale::{ScaleCluster, ScaleSpec};

const CLIENTS: usize = 50;

#[derive(Clone, Copy, Debug)]
enum Mode {
    Paged,
    Streaming,
    OwnNode,
}

fn main() {
    let started = Instant::now();
    let cluster = ScaleCluster::new(ScaleSpec::default());
    let objects = cluster.objects();
    println!("{} objects generated in {:.1} s", objects.len(), started.elapsed().as_secs_f64());
    let sizes: Vec<usize> = objects.iter().filter(|o| o["kind"] == "Pod").map(|pod| pod.to_string().len()).collect();
    let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    println!(
        "{} pods on {} nodes: JSON mean {mean:.0} bytes, min {min}, max {max}",
        sizes.len(),
        cluster.nodes().len()
    );
    let (started, api) = (Instant::now(), FakeApi::start());
    api.apply_all(objects);
    println!("loaded into the server in {:.1} s", started.elapsed().as_secs_f64());
    for mode in [Mode::Paged, Mode::Streaming, Mode::OwnNode] {
        api.reset_stats();
        let started = Instant::now();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (url, node) = (api.url(), cluster.nodes()[i].name.clone());
                std::thread::spawn(move || match mode {
                    Mode::Paged => page(&url, i),
                    Mode::Streaming => stream(&url, i, ""),
                    Mode::OwnNode => stream(&url, i, &format!("&fieldSelector=spec.nodeName%3D{node}")),
                })
            })
            .collect();
        let received: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
        let seconds = started.elapsed().as_secs_f64();
        let stats = api.stats();
        assert_eq!(stats.total.bytes, received, "the server counted what the clients received");
        println!(
            "{mode:?}: {CLIENTS} clients, {} objects, {:.0} MB in {seconds:.2} s ({:.0} MB/s), peak concurrent lists {}, quorum reads {}",
            stats.total.objects,
            received as f64 / 1e6,
            received as f64 / 1e6 / seconds,
            stats.peak_concurrent_lists,
            stats.quorum_reads(),
        );
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(600)).build().unwrap()
}

/// Lists every pod as kube-rs's default watcher does (pages of 500); returns the bytes received.
fn page(url: &str, client_index: usize) -> u64 {
    let (http, mut token, mut received) = (client(), None::<String>, 0);
    loop {
        let more = token.as_ref().map(|t| format!("&continue={t}")).unwrap_or_default();
        let request = http.get(format!("{url}/api/v1/pods?limit=500{more}")).bearer_auth(format!("c{client_index}"));
        let body = request.send().unwrap().bytes().unwrap();
        received += body.len() as u64;
        // The list's metadata, continue token included, comes first.
        let head = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        token = head.split("\"continue\":\"").nth(1).and_then(|rest| rest.split('"').next()).map(str::to_owned);
        if token.is_none() {
            return received;
        }
    }
}

/// A streaming list from the watch cache (with `selector`), read until its initial-events-end bookmark.
fn stream(url: &str, client_index: usize, selector: &str) -> u64 {
    let query = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0&allowWatchBookmarks=true";
    let request = client().get(format!("{url}/api/v1/pods?{query}{selector}")).bearer_auth(format!("s{client_index}"));
    let mut response = request.send().unwrap();
    let (mut buf, mut received, mut tail) = (vec![0u8; 256 * 1024], 0u64, Vec::new());
    loop {
        let n = response.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended before its end bookmark");
        received += n as u64;
        tail.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&tail).contains("k8s.io/initial-events-end") {
            return received;
        }
        tail.drain(..tail.len().saturating_sub(64));
    }
}
