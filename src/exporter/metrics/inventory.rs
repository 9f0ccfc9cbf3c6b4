//! The inventory watches' reports, shown as the `network_mapper_inventory_*` families, the inventory's
//! `source_up`, and on `/readyz`.

use std::sync::Arc;

use crate::exporter::server::Readiness;
use crate::sources::inventory::{FetchKind, FetchResult, Kind, WatchObserver, WatchStatus};

use super::{InventoryKind, KindLabel, Metrics, SourceName};

/// Shows what the watches report: per-kind metrics, and readiness once every kind has synced.
pub struct InventoryReport {
    metrics: Metrics,
    readiness: Readiness,
}

impl InventoryReport {
    /// A [`WatchStatus`] that reports into `metrics` and sets `readiness` once every kind has synced.
    pub fn watch_status(metrics: &Metrics, readiness: Readiness) -> WatchStatus {
        WatchStatus::new(Arc::new(InventoryReport { metrics: metrics.clone(), readiness }))
    }
}

fn label(kind: Kind) -> KindLabel<InventoryKind> {
    KindLabel(InventoryKind::from(kind))
}

impl WatchObserver for InventoryReport {
    fn objects(&self, kind: Kind, count: usize) {
        self.metrics.inventory_objects.get_or_create(&label(kind)).set(count as i64);
        // A batch of events applied: the watch is alive.
        self.metrics.source_succeeded(SourceName::Inventory);
    }

    fn synced(&self, kind: Kind, synced: bool) {
        self.metrics.inventory_synced.get_or_create(&label(kind)).set(i64::from(synced));
    }

    fn watch_error(&self, kind: Kind) {
        self.metrics.inventory_watch_errors.get_or_create(&label(kind)).inc();
        self.metrics.source_failed(SourceName::Inventory);
    }

    fn relisted(&self, kind: Kind) {
        self.metrics.inventory_relists.get_or_create(&label(kind)).inc();
    }

    fn watch_restarted(&self, kind: Kind) {
        self.metrics.inventory_watch_restarts.get_or_create(&label(kind)).inc();
    }

    fn all_synced(&self) {
        self.readiness.set(true);
    }

    fn watching(&self, kinds: &[Kind], fetching: bool) {
        self.metrics.inventory_zero_series(kinds, fetching);
    }

    fn fetched(&self, kind: FetchKind, result: FetchResult) {
        self.metrics.fetched(kind, result);
    }
}
