//! Standard process metrics (`process_resident_memory_bytes`, `process_cpu_seconds_total`,
//! `process_start_time_seconds`), read from `/proc/self` at scrape time. prometheus-client has no process
//! collector of its own; these names are the ones every Prometheus dashboard already knows.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::families::{FamilySpec, PROCESS_CPU, PROCESS_RESIDENT_MEMORY, PROCESS_START_TIME};

/// The rows of the families this collector writes.
pub static FAMILIES: &[&FamilySpec] = &[&PROCESS_RESIDENT_MEMORY, &PROCESS_CPU, &PROCESS_START_TIME];

/// Reads `/proc/self/stat` on every scrape. On a read failure the series are left out, never the scrape.
#[derive(Debug)]
pub struct ProcessCollector;

struct Sample {
    rss_bytes: f64,
    cpu_seconds: f64,
    start_time_seconds: f64,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let Some(sample) = sample() else { return Ok(()) };
        let describe = |spec: &FamilySpec| (spec.name, format!("{}.", spec.help));
        let (name, help) = describe(&PROCESS_RESIDENT_MEMORY);
        let rss = ConstGauge::new(sample.rss_bytes);
        rss.encode(encoder.encode_descriptor(name, &help, None, rss.metric_type())?)?;
        let (name, help) = describe(&PROCESS_CPU);
        let cpu = ConstCounter::new(sample.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(name, &help, None, cpu.metric_type())?)?;
        let (name, help) = describe(&PROCESS_START_TIME);
        let start = ConstGauge::new(sample.start_time_seconds);
        start.encode(encoder.encode_descriptor(name, &help, None, start.metric_type())?)?;
        Ok(())
    }
}

fn sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields are counted after its last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let ticks = clock_ticks_per_second();
    let page = page_size();
    let boot = boot_time_seconds()?;
    Some(Sample {
        rss_bytes: field(24)? * page,
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        start_time_seconds: boot + field(22)? / ticks,
    })
}

fn boot_time_seconds() -> Option<f64> {
    procfs::boot_time_secs().ok().map(|s| s as f64)
}

fn clock_ticks_per_second() -> f64 {
    procfs::ticks_per_second() as f64
}

fn page_size() -> f64 {
    procfs::page_size() as f64
}
