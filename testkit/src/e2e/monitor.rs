//! The product as it runs on a node: `network-mapper` in the node namespace (device `any`, the live API through a
//! kubeconfig, the real `/proc`), Prometheus beside it scraping with `honor_labels: true`, and `netmap-reduce
//! --prometheus` reading the map back. Both servers listen inside the node and are reached from the root
//! namespace over the node's link address.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::node::SimNode;
use super::procs::spawn_logged;
use crate::cmd::Guarded;
use crate::http::{get, sample, until};

/// Where the two binaries are (the test gets them from cargo, the demo finds them beside itself).
#[derive(Clone, Debug)]
pub struct Binaries {
    pub exporter: PathBuf,
    pub reduce: PathBuf,
}

/// The exporter's port inside the node (the DaemonSet's default).
pub const EXPORTER_PORT: u16 = 9953;
/// Prometheus' port inside the node.
pub const PROMETHEUS_PORT: u16 = 9090;

/// Names a container image's root filesystem (mounted by `podman image mount`, see `scripts/test-image.sh`):
/// the lab then runs that image's `/usr/local/bin/network-mapper` instead of the host build.
pub const ROOTFS_VAR: &str = "NETMAP_E2E_EXPORTER_ROOTFS";

/// The image root filesystem to run the exporter from, if [`ROOTFS_VAR`] names one.
pub fn exporter_rootfs() -> Option<PathBuf> {
    std::env::var_os(ROOTFS_VAR).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// What a container runtime does for the DaemonSet, with host tools (running a container is not possible on
/// every machine): `ip netns exec` has already given the command its own mount namespace, where the host's
/// `/proc`, `/sys`, `/dev`, `/tmp` (the kubeconfig) and the node's resolv.conf are mounted into the image, then
/// the image is entered with the DaemonSet's privileges (uid 0, bounding set NET_RAW, no_new_privs), plus
/// SYS_CHROOT for `chroot` itself. Every step execs, so the pid stays the exporter's.
const IMAGE_RUN: &str = r#"set -e
root=$1; shift
for dir in /proc /sys /dev /tmp; do mount --rbind "$dir" "$root$dir"; done
mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
exec setpriv --bounding-set=-all,+net_raw,+sys_chroot --inh-caps=-all --ambient-caps=-all --no-new-privs \
    chroot "$root" /usr/local/bin/network-mapper "$@""#;

fn in_image(rootfs: &Path, dir: &Path, args: Vec<String>) -> io::Result<(String, Vec<String>)> {
    if !dir.starts_with("/tmp") {
        return Err(io::Error::other(format!(
            "{ROOTFS_VAR}: the lab's files must be under /tmp, not {}",
            dir.display()
        )));
    }
    let mut full = vec!["-c".to_owned(), IMAGE_RUN.to_owned(), "sh".to_owned(), rootfs.display().to_string()];
    full.extend(args);
    Ok(("sh".to_owned(), full))
}

/// The running exporter.
pub struct Exporter {
    pub process: Guarded,
    pub base_url: String,
    pub log: PathBuf,
}

impl Exporter {
    /// Starts `network-mapper` in the node namespace against the API described by `kubeconfig`.
    pub fn start(node: &SimNode, bins: &Binaries, kubeconfig: &Path, dir: &Path) -> io::Result<Exporter> {
        let log = dir.join("network-mapper.log");
        let args: Vec<String> = [
            "--node-name",
            super::cluster::NODE,
            "--interface",
            "any",
            "--procfs-root",
            "/proc",
            "--scan-interval",
            "1s",
            "--listen-address",
            &format!("0.0.0.0:{EXPORTER_PORT}"),
            "--kubeconfig",
            &kubeconfig.display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        let env = [("RUST_LOG", "info,network_mapper::exporter::pipeline=debug")];
        let (program, args) = match exporter_rootfs() {
            None => (bins.exporter.display().to_string(), args),
            Some(rootfs) => in_image(&rootfs, dir, args)?,
        };
        let process = spawn_logged(&node.netns, &program, &args, &log, &env)?;
        Ok(Exporter { process, base_url: format!("http://{}:{EXPORTER_PORT}", node.node_ip), log })
    }

    /// `/metrics`, or `None` if it did not answer 200.
    pub fn metrics(&self) -> Option<String> {
        get(&format!("{}/metrics", self.base_url)).filter(|(code, _)| *code == 200).map(|(_, body)| body)
    }

    pub fn sample(&self, series: &str) -> Option<f64> {
        sample(&self.metrics()?, series)
    }

    pub fn wait_ready(&self, limit: Duration) -> io::Result<()> {
        let ready = || get(&format!("{}/readyz", self.base_url)).filter(|(code, _)| *code == 200);
        until("the exporter's /readyz", limit, ready).map(drop).map_err(|e| self.with_log(e))
    }

    /// Adds the tail of the exporter's log to an error.
    pub fn with_log(&self, error: io::Error) -> io::Error {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
        io::Error::other(format!("{error}\n--- network-mapper log (last lines) ---\n{}", tail.join("\n")))
    }
}

/// Debian's Prometheus in the node namespace, scraping the exporter every second.
pub struct Prometheus {
    pub process: Guarded,
    pub url: String,
}

impl Prometheus {
    pub fn start(node: &SimNode, dir: &Path) -> io::Result<Prometheus> {
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: network-mapper\n    \
             honor_labels: true  # `namespace` is the client's, not the target's (docs/design.md §2)\n    \
             static_configs:\n      - targets: ['127.0.0.1:{EXPORTER_PORT}']\n        labels: {{node: {}}}\n",
            super::cluster::NODE
        );
        std::fs::write(dir.join("prometheus.yml"), config)?;
        let args = vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("prometheus-data").display()),
            format!("--web.listen-address=0.0.0.0:{PROMETHEUS_PORT}"),
        ];
        let process = spawn_logged(&node.netns, "prometheus", &args, &dir.join("prometheus.log"), &[])?;
        Ok(Prometheus { process, url: format!("http://{}:{PROMETHEUS_PORT}", node.node_ip) })
    }

    /// The single value of an instant query, if there is one.
    pub fn scalar(&self, query: &str) -> Option<f64> {
        crate::http::instant_query(&self.url, query)
    }
}

/// Runs `netmap-reduce --prometheus <url> <args>` from the root namespace; returns stdout, or stderr as the error.
pub fn reduce(bins: &Binaries, prometheus: &Prometheus, args: &[&str]) -> io::Result<String> {
    reduce_with(Command::new(&bins.reduce), prometheus, args)
}

/// [`reduce`] inside network namespace `netns` (e.g. the node's, where the fake API listens on 127.0.0.1).
pub fn reduce_in(netns: &str, bins: &Binaries, prometheus: &Prometheus, args: &[&str]) -> io::Result<String> {
    reduce_with(crate::netns::command_in(netns, &bins.reduce.display().to_string()), prometheus, args)
}

fn reduce_with(mut command: Command, prometheus: &Prometheus, args: &[&str]) -> io::Result<String> {
    let out: Output = command
        .args(["--prometheus", &prometheus.url])
        .args(args)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env("NO_PROXY", prometheus.url.trim_start_matches("http://").split(':').next().unwrap_or_default())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("netmap-reduce {args:?}: {}", String::from_utf8_lossy(&out.stderr))));
    }
    String::from_utf8(out.stdout).map_err(io::Error::other)
}
