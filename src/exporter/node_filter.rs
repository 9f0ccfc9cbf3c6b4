//! Keeps a live capture's kernel filter to this node's pods as they come and go (docs/design.md §7): the
//! capture thread asks [`NodeFilter::refresh`] whenever it reads the clock, which costs a read lock and a number
//! compare until the node's pods or pod CIDRs change; then the filter is rebuilt and replaced in the kernel.
//!
//! An address stays in the filter until its pod is gone from the inventory, and the node's CIDRs, where they
//! describe its pods, cover a new pod before its address is known.

use std::net::IpAddr;
use std::sync::PoisonError;

use crate::exporter::metrics::{FilterOutcome, Metrics, Outcome};
use crate::exporter::pipeline::SharedInventory;
use crate::sources::capture::node_filter::{self, NodeAddresses};
use crate::sources::capture::source::PacketSource;
use crate::sources::inventory::Inventory;

/// What the node filter is built from.
#[derive(Clone, Debug)]
pub struct NodeFilterSpec {
    /// The node whose pods count.
    pub node: String,
    /// The answers expression (e.g. `udp src port 53 or tcp src port 53`).
    pub answers: String,
    /// The SYN expression, unless `--no-syn-capture`.
    pub syns: Option<String>,
}

/// The filter controller of one capture thread.
pub struct NodeFilter {
    spec: NodeFilterSpec,
    inventory: SharedInventory,
    metrics: Metrics,
    /// The inventory's node changes at the last refresh.
    seen: Option<u64>,
    /// The filter the kernel runs, when it is a node filter.
    current: Option<String>,
}

impl NodeFilter {
    /// A controller of the filter for `spec.node`'s pods, reading `inventory`.
    pub fn new(spec: NodeFilterSpec, inventory: SharedInventory, metrics: Metrics) -> NodeFilter {
        NodeFilter { spec, inventory, metrics, seen: None, current: None }
    }

    /// Replaces `source`'s kernel filter if the node's pods changed since the last call.
    pub fn refresh(&mut self, source: &mut dyn PacketSource) {
        let Some(addresses) = self.changed_addresses() else { return };
        let syns = self.spec.syns.as_deref();
        let Some(filter) = node_filter::for_node(&self.spec.answers, syns, &addresses) else { return };
        if self.current.as_ref() == Some(&filter) {
            return;
        }
        match source.replace_filter(&filter) {
            Ok(()) => {
                tracing::info!(networks = ?addresses.networks, hosts = addresses.hosts.len(), "capture filtered to this node's pods");
                self.metrics.capture_filter_updates.get_or_create(&Outcome(FilterOutcome::Ok)).inc();
                self.metrics.capture_filter_addresses.set(addresses.len() as i64);
                self.current = Some(filter);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot filter the capture to this node's pods; capturing every answer");
                self.metrics.capture_filter_updates.get_or_create(&Outcome(FilterOutcome::Error)).inc();
            }
        }
    }

    /// Forgets the filter the kernel runs (the capture was reopened with its unrestricted filter).
    pub fn reset(&mut self) {
        self.seen = None;
        self.current = None;
        self.metrics.capture_filter_addresses.set(0);
    }

    /// The node's addresses, when they may have changed since the last call.
    fn changed_addresses(&mut self) -> Option<NodeAddresses> {
        let inventory = self.inventory.read().unwrap_or_else(PoisonError::into_inner);
        let changes = inventory.node_changes();
        if self.seen == Some(changes) {
            return None;
        }
        self.seen = Some(changes);
        Some(node_addresses(&inventory, &self.spec.node))
    }
}

/// What `node`'s pods send from and receive at, by the inventory's account: the node's CIDRs where they describe
/// its pods, else the pods' addresses; answers to its DNS servers left out.
pub fn node_addresses(inventory: &Inventory, node: &str) -> NodeAddresses {
    let pods: Vec<IpAddr> = inventory.node_pod_addresses(node);
    NodeAddresses::of(inventory.node_pod_cidrs(node), &pods).except_dns_servers(inventory.dns_server_addresses())
}

impl NodeFilterSpec {
    /// The node filter for what `inventory` knows now; `None` while it knows no address of the node.
    pub fn filter(&self, inventory: &Inventory) -> Option<String> {
        node_filter::for_node(&self.answers, self.syns.as_deref(), &node_addresses(inventory, &self.node))
    }
}
