//! When an edge was seen. Only sources with sample timestamps have this: `/api/v1/query_range` matrices (saved
//! files, or the live range query of [`super::prometheus`]) and `netmap-reduce`'s own JSON. An instant vector's
//! timestamp is the evaluation time, not an observation time, so vectors and expositions carry none.
//!
//! - **first seen**: the earliest sample of the edge. The exporter creates a series at its first observation,
//!   so this is when the edge first appeared, to the resolution of the samples — or the start of the queried
//!   range when the edge is older than it.
//! - **last seen**: the latest sample at which the count grew (or the series appeared): the last observation,
//!   to the same resolution. A counter that drops (an exporter restart) and grows again counts as growth.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// First and last observation of an edge, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    pub first: f64,
    pub last: f64,
}

impl Seen {
    /// Combines two sources of the same edge (nodes, inputs): the earliest first, the latest last.
    pub fn merge(self, other: Seen) -> Seen {
        Seen { first: self.first.min(other.first), last: self.last.max(other.last) }
    }

    /// From one series' samples `(timestamp, value)` in time order; `None` when it has no samples.
    pub fn of_samples(samples: impl IntoIterator<Item = (f64, f64)>) -> Option<Seen> {
        let mut seen: Option<Seen> = None;
        let mut previous: Option<f64> = None;
        for (at, value) in samples {
            if value.is_nan() {
                continue;
            }
            match (&mut seen, previous) {
                (None, _) => seen = Some(Seen { first: at, last: at }),
                (Some(s), Some(p)) if value != p => s.last = at,
                _ => {}
            }
            previous = Some(value);
        }
        seen
    }
}

/// RFC 3339 in UTC to the second, as `json` writes it: `2026-11-29T14:53:51Z`.
pub fn format_time(unix_seconds: f64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(unix_seconds.max(0.0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Reads [`format_time`]'s output (any RFC 3339 time) back to Unix seconds.
pub fn parse_time(text: &str) -> Result<f64, String> {
    let at = humantime::parse_rfc3339_weak(text).map_err(|e| format!("invalid time {text:?}: {e}"))?;
    let since = at.duration_since(UNIX_EPOCH).map_err(|_| format!("time {text:?} is before 1970"))?;
    Ok(since.as_secs_f64())
}

/// Unix seconds of a `SystemTime` (for query parameters).
pub fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_seen_is_the_last_growth_not_the_last_sample() {
        let seen = Seen::of_samples([(10.0, 1.0), (20.0, 1.0), (30.0, 4.0), (40.0, 4.0), (50.0, 4.0)]).unwrap();
        assert_eq!(seen, Seen { first: 10.0, last: 30.0 });
    }

    #[test]
    fn a_reset_then_growth_counts_and_nan_is_no_sample() {
        let seen = Seen::of_samples([(10.0, f64::NAN), (20.0, 5.0), (30.0, 1.0)]).unwrap();
        assert_eq!(seen, Seen { first: 20.0, last: 30.0 });
        assert_eq!(Seen::of_samples([]), None);
    }

    #[test]
    fn times_round_trip_through_rfc3339() {
        assert_eq!(format_time(1_700_000_000.7), "2023-11-14T22:13:20Z");
        assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000.0);
        assert!(parse_time("yesterday").is_err());
    }
}
