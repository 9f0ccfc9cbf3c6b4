//! The inventory watches' reports, shown as the `network_mapper_inventory_*` families and on `/readyz`.

use crate::exporter::server::Readiness;
use crate::sources::inventory::{KINDS, Kind, WatchObserver, WatchStatus};

use super::{KindLabels, Metrics};

/// Shows what the watches report: per-kind metrics, and readiness once every kind has synced.
pub struct InventoryReport {
    metrics: Metrics,
    readiness: Readiness,
}

impl InventoryReport {
    /// A [`WatchStatus`] that reports into `metrics` and sets `readiness` once every kind has synced.
    pub fn watch_status(metrics: &Metrics, readiness: Readiness) -> WatchStatus {
        metrics.zero_watch_series();
        WatchStatus::new(std::sync::Arc::new(InventoryReport { metrics: metrics.clone(), readiness }))
    }
}

fn labels(kind: Kind) -> KindLabels {
    KindLabels { kind: kind.metric_label() }
}

impl WatchObserver for InventoryReport {
    fn objects(&self, kind: Kind, count: usize) {
        self.metrics.inventory_objects.get_or_create(&labels(kind)).set(count as i64);
    }

    fn synced(&self, kind: Kind, synced: bool) {
        self.metrics.inventory_synced.get_or_create(&labels(kind)).set(i64::from(synced));
    }

    fn watch_error(&self, kind: Kind) {
        self.metrics.inventory_watch_errors.get_or_create(&labels(kind)).inc();
    }

    fn relisted(&self, kind: Kind) {
        self.metrics.inventory_relists.get_or_create(&labels(kind)).inc();
    }

    fn watch_restarted(&self, kind: Kind) {
        self.metrics.inventory_watch_restarts.get_or_create(&labels(kind)).inc();
    }

    fn all_synced(&self) {
        self.readiness.set(true);
    }
}

impl Metrics {
    /// Zero-valued series for every watched kind (the API inventory), so alerts can compare from the start.
    fn zero_watch_series(&self) {
        for kind in KINDS {
            self.inventory_synced.get_or_create(&labels(kind)).set(0);
            self.inventory_watch_errors.get_or_create(&labels(kind)).inc_by(0);
            self.inventory_relists.get_or_create(&labels(kind)).inc_by(0);
            self.inventory_watch_restarts.get_or_create(&labels(kind)).inc_by(0);
        }
    }
}
