//! `make demo`: the end-to-end lab of the test kit (`testkit/src/e2e/`) as a live demo. Builds a simulated node running the shop, runs
//! the exporter (live API, device `any`, real `/proc`) and Prometheus in it, prints the "X calls Y" listing from
//! Prometheus, writes ClientIntents, NetworkPolicies (`networkpolicies/`), a Graphviz graph and the raw scrape to `./demo-out/`, and keeps everything
//! running (with a trickle of traffic) until Ctrl-C when stdin is a terminal, or for `DEMO_SECONDS`. Tears
//! everything down on exit, Ctrl-C or SIGTERM. Needs root. Run by `scripts/demo.sh`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use testkit::e2e::monitor::{self, Binaries};
use testkit::e2e::procs::Usage;
use testkit::e2e::{self, Lab, shop};

/// The demo node's link subnet, `169.254.253.0/24` (the test uses .252, so both can run).
const LINK_SUBNET: u8 = 253;
const OUT_DIR: &str = "demo-out";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    if let Some(reason) = e2e::missing_prerequisite() {
        bail!("{reason}. Run `sudo make demo`.");
    }
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, request_stop as *const () as libc::sighandler_t) };
    }
    let bins = binaries()?;
    println!("== building a simulated node (node-a) with the shop: 12 workloads, kube-dns, kube-proxy NAT...");
    let mut lab = shop::bring_up(bins, LINK_SUBNET, Duration::ZERO).context("bringing up the demo node")?;
    println!("== the shop's traffic ran; the loadgenerator now sends {} lookups...", shop::BURST);
    let pid = lab.exporter().process.pid();
    let (before, started) = (Usage::of(pid)?, Instant::now());
    shop::burst(&mut lab)?;
    let (after, took) = (Usage::of(pid)?, started.elapsed());
    println!(
        "== exporter during the burst ({:.0} answers/s): {:.0}% of one core; RSS {} MiB (peak {} MiB)",
        shop::BURST as f64 / took.as_secs_f64(),
        100.0 * (after.cpu_seconds - before.cpu_seconds) / took.as_secs_f64(),
        after.rss_kib / 1024,
        after.peak_rss_kib / 1024
    );
    shop::add_reviews(&mut lab).context("adding the reviews pod")?;
    wait_for_prometheus(&lab)?;
    report(&lab)?;
    stay_up(&mut lab)?;
    let usage = Usage::of(pid)?;
    println!(
        "== exporter over the whole demo: {:.2} s of CPU, RSS {} MiB (peak {} MiB)",
        usage.cpu_seconds,
        usage.rss_kib / 1024,
        usage.peak_rss_kib / 1024
    );
    println!("== tearing down the demo node");
    drop(lab);
    println!("== done");
    Ok(())
}

/// The binaries next to this example (`target/<profile>/examples/demo_node` → `target/<profile>/`).
fn binaries() -> Result<Binaries> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(Path::parent).context("locating target/<profile>/")?;
    let bins = Binaries { exporter: dir.join("network-mapper"), reduce: dir.join("netmap-reduce") };
    for bin in [&bins.exporter, &bins.reduce] {
        if !bin.exists() {
            bail!("{} is missing: build it first (cargo build --release --bins)", bin.display());
        }
    }
    Ok(bins)
}

fn wait_for_prometheus(lab: &Lab) -> Result<()> {
    let total: usize = shop::expected_edges().iter().map(|e| e.4).sum();
    let prometheus = lab.prometheus();
    testkit::http::until("Prometheus to scrape the map", Duration::from_secs(30), || {
        prometheus.scalar("sum(network_mapper_edge_total)").filter(|n| *n >= total as f64)
    })?;
    Ok(())
}

/// Prints the listing and writes the files.
fn report(lab: &Lab) -> Result<()> {
    let (bins, prometheus) = (&lab.bins, lab.prometheus());
    let out = PathBuf::from(OUT_DIR);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("intents"))?;
    println!("\n== netmap-reduce --prometheus {}: who calls whom\n", prometheus.url);
    print!("{}", monitor::reduce(bins, prometheus, &[])?);
    let intents_dir = out.join("intents").display().to_string();
    monitor::reduce(bins, prometheus, &["--format", "intents", "--output-dir", &intents_dir])?;
    std::fs::write(out.join("map.dot"), monitor::reduce(bins, prometheus, &["--format", "dot"])?)?;
    std::fs::write(out.join("map.json"), monitor::reduce(bins, prometheus, &["--format", "json"])?)?;
    std::fs::write(out.join("metrics.prom"), lab.exporter().metrics().context("scraping /metrics")?)?;
    let policies = write_policies(lab, &out)?;
    let dot = Command::new("dot").args(["-Tsvg", "-o"]).arg(out.join("map.svg")).arg(out.join("map.dot")).status();
    let svg = if dot.is_ok_and(|s| s.success()) { ", map.svg" } else { " (install graphviz for map.svg)" };
    let files = std::fs::read_dir(out.join("intents"))?.count();
    println!("\n== one ClientIntents file ({OUT_DIR}/intents/checkout.shop.yaml):\n");
    print!("{}", std::fs::read_to_string(out.join("intents/checkout.shop.yaml")).unwrap_or_default());
    println!(
        "\n== written to ./{OUT_DIR}/: intents/ ({files} ClientIntents), networkpolicies/ ({policies} NetworkPolicies), \
         map.dot{svg}, map.json, metrics.prom"
    );
    Ok(())
}

/// NetworkPolicies (both directions) with the workloads' selectors read from the demo's API server.
fn write_policies(lab: &Lab, out: &Path) -> Result<usize> {
    let scratch = tempfile::tempdir()?;
    let kubeconfig = lab.api.write_kubeconfig(scratch.path()).display().to_string();
    let dir = out.join("networkpolicies");
    let args = ["--format", "networkpolicy", "--kubeconfig", &kubeconfig, "--policy-direction", "both"];
    let dir_arg = dir.display().to_string();
    // The fake API listens on 127.0.0.1 inside the node, so this reducer runs there too.
    monitor::reduce_in(
        &lab.node.netns,
        &lab.bins,
        lab.prometheus(),
        &[&args[..], &["--output-dir", &dir_arg]].concat(),
    )?;
    let yaml = std::fs::read_dir(&dir)?
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml")));
    Ok(yaml.count())
}

/// Keeps the node up while the user looks, with a few lookups every 5 s so the graphs move.
fn stay_up(lab: &mut Lab) -> Result<()> {
    let seconds: Option<u64> = match std::env::var("DEMO_SECONDS") {
        Ok(v) => Some(v.parse().with_context(|| format!("DEMO_SECONDS={v:?} is not a number of seconds"))?),
        Err(_) => None,
    };
    let interactive = std::io::stdin().is_terminal();
    if seconds.is_none() && !interactive {
        println!("== stdin is not a terminal: stopping now (set DEMO_SECONDS=N to keep the demo up N seconds)");
        return Ok(());
    }
    println!("\n== the demo node is up (from this machine):");
    println!("   exporter    {}/metrics", lab.exporter().base_url);
    println!("   Prometheus  {}/graph?g0.expr=network_mapper_edge_total", lab.prometheus().url);
    println!("   (from another machine: ssh -L 9090:{}:9090 this-host)", lab.node.node_ip);
    match seconds {
        Some(s) => println!("== running for {s} s (DEMO_SECONDS); Ctrl-C stops earlier"),
        None => println!("== press Ctrl-C to stop and tear down"),
    }
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let mut next_trickle = Instant::now();
    while !STOP.load(Ordering::SeqCst) && deadline.is_none_or(|d| Instant::now() < d) {
        if Instant::now() >= next_trickle {
            lab.ask("loadgenerator", "dns-burst 10.96.0.10 frontend.shop.svc.cluster.local 10 0.01")?;
            next_trickle = Instant::now() + Duration::from_secs(5);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
