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
    let stat = procfs::process::Process::myself().and_then(|me| me.stat()).ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    let boot = procfs::boot_time_secs().ok()? as f64;
    Some(Sample {
        rss_bytes: stat.rss as f64 * procfs::page_size() as f64,
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
        start_time_seconds: boot + stat.starttime as f64 / ticks,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn the_sample_is_this_process() {
        let sample = super::sample().expect("/proc/self/stat is readable");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let vm_rss_kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap()
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()
            .unwrap();
        assert!(
            (sample.rss_bytes / 1024.0 - vm_rss_kib).abs() < vm_rss_kib / 2.0,
            "{} vs {vm_rss_kib} KiB",
            sample.rss_bytes
        );
        assert!(sample.cpu_seconds >= 0.0);
        // The test process started within the last hour (the clock's ticks make it exact to 10 ms, boot time to 1 s).
        assert!(sample.start_time_seconds <= now + 1.0 && sample.start_time_seconds > now - 3600.0);
    }
}
