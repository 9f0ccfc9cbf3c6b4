//! The one test kit of network-mapper: everything the tests (`tests/`), the benchmarks (`benches/`) and the demo
//! (`examples/demo_node.rs`) share. A dev-dependency only; it never depends on the product, so the product's
//! types stay out of it (link types are LINKTYPE numbers, times are microseconds). See `docs/testing.md`.
//!
//! - [`live`]: the live-test policy: what a live test needs, and failing with the reason when it is missing.
//! - [`cmd`]: running programs; children ended by their own pid on drop; line-driven children.
//! - [`netns`]: network namespace guards, veths between namespaces, the cross-process live-test lock.
//! - [`lab`]: the DNS lab (namespace, veth to the root namespace, dnsmasq) and DNS exchanges over UDP and TCP.
//! - [`http`]: GET, polling `until`, free ports, a recording loopback server, exposition samples.
//! - [`k8s`]: Pods, owners, Services, EndpointSlices and Lists as the API serves them.
//! - [`fake_apiserver`]: a fake Kubernetes API server with fault injection and per-client cost accounting.
//! - [`scale`]: a realistic cluster at scale (nodes, 5–8 KB pods, owners, Services, slices) and its churn.
//! - [`packets`]: DNS messages, UDP/TCP/IP packets and link-layer frames.
//! - [`capfile`]: classic pcap (through libpcap) and pcapng files.
//! - [`procfs`]: `net/tcp` tables and fake `/proc` trees.
//! - [`golden`]: golden files and their update switch (`UPDATE_GOLDEN=1`).
//! - [`e2e`]: a Kubernetes node simulated with namespaces, running the shop, the exporter and Prometheus.
//! - [`args`]: the command line of the generators under `examples/`.

pub mod agents;
pub mod args;
pub mod capfile;
pub mod cmd;
pub mod e2e;
pub mod fake_apiserver;
pub mod golden;
pub mod http;
pub mod k8s;
pub mod lab;
pub mod live;
pub mod netns;
pub mod packets;
pub mod procfs;
pub mod scale;
pub mod threads;
