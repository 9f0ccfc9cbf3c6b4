//! Telling a wrong input from an empty map. In a pipeline, `netmap-reduce README.md > intents.yaml` must fail,
//! not write an empty map: an input that holds no series of the exporter's (`network_mapper_*`) is bad input
//! (exit 2) and the message says what the input holds instead. A network-mapper snapshot that simply has no
//! edges yet (an exporter's scrape with only its self-metrics, an API result with no series, `[]` from
//! `--format json`) is a valid, empty map.

use super::error::{ReduceError, Result};
use super::model::{EDGE_METRIC, InputStats};

/// What an input was, as far as the parsers could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A Prometheus API response (JSON object).
    ApiJson,
    /// `netmap-reduce --format json` output (JSON array).
    EdgeJson,
    /// A text exposition (anything else).
    Exposition,
}

/// Checks one input after parsing. `before` are the stats before this input was parsed, so that several inputs
/// are judged one by one.
pub fn check_input(name: &str, bytes: &[u8], kind: InputKind, before: &InputStats, after: &InputStats) -> Result<()> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ReduceError::bad_input(
            name,
            format!(
                "the input is empty; expected a Prometheus API response or a scrape holding {EDGE_METRIC} \
                 (did the command that wrote it fail?)"
            ),
        ));
    }
    let own = after.network_mapper_series - before.network_mapper_series;
    let series = after.series - before.series;
    // A text with prose between samples (a README quoting a scrape, a log) is no exposition, even when some of
    // its lines are network-mapper samples: take nothing from it rather than a map of the quoted lines.
    if own > 0
        && kind == InputKind::Exposition
        && let Some((line, text)) = &after.not_a_sample
    {
        let quoted = format!(" ({own} network-mapper series quoted in it)");
        return Err(ReduceError::bad_input(
            name,
            format!(
                "it is not a Prometheus text exposition{quoted}: line {line} is not a sample: {text:?}. Expected a \
                 Prometheus API response of {EDGE_METRIC}, a scrape of the network-mapper exporter, or \
                 netmap-reduce --format json output"
            ),
        ));
    }
    if own > 0 || kind == InputKind::EdgeJson || (kind == InputKind::ApiJson && series == 0) {
        return Ok(());
    }
    Err(ReduceError::bad_input(name, no_series_problem(bytes, kind, series, after)))
}

fn no_series_problem(bytes: &[u8], kind: InputKind, series: usize, stats: &InputStats) -> String {
    let holds = if kind == InputKind::Exposition && starts_like_markup(bytes) {
        "it is an HTML or XML document (a login or error page? check the URL and credentials it was fetched \
         with)"
            .to_owned()
    } else if series > 0 {
        let names: Vec<&str> = stats.other_metrics.iter().map(String::as_str).collect();
        let more = if stats.more_other_metrics { ", …" } else { "" };
        format!("it holds {series} series of other metrics ({}{more})", names.join(", "))
    } else if let Some((line, text)) = &stats.not_a_sample {
        format!("it is not a Prometheus text exposition: line {line} is not a sample: {text:?}")
    } else {
        "it holds no samples at all".to_owned()
    };
    format!(
        "no network-mapper series: {holds}. Expected a Prometheus API response (/api/v1/query or query_range) of \
         {EDGE_METRIC}, a scrape of the network-mapper exporter, or netmap-reduce --format json output"
    )
}

fn starts_like_markup(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
    bytes.get(start) == Some(&b'<')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(own: usize, others: &[&str], not_a_sample: Option<(usize, &str)>) -> InputStats {
        let mut stats = InputStats::default();
        for _ in 0..own {
            stats.add_own();
        }
        for name in others {
            stats.add_other(name);
        }
        stats.not_a_sample = not_a_sample.map(|(n, t)| (n, t.to_owned()));
        stats
    }

    fn problem(bytes: &str, kind: InputKind, after: &InputStats) -> String {
        check_input("x", bytes.as_bytes(), kind, &InputStats::default(), after).unwrap_err().to_string()
    }

    #[test]
    fn empty_markup_foreign_metrics_and_prose_are_each_explained() {
        assert!(problem(" \n", InputKind::Exposition, &stats(0, &[], None)).contains("the input is empty"));
        assert!(problem("<!DOCTYPE html>", InputKind::Exposition, &stats(0, &[], None)).contains("HTML"));
        let up = problem("{}", InputKind::ApiJson, &stats(0, &["up"], None));
        assert!(up.contains("1 series of other metrics (up)"), "{up}");
        let prose = problem("hello world", InputKind::Exposition, &stats(0, &[], Some((1, "hello world"))));
        assert!(prose.contains("line 1 is not a sample: \"hello world\""), "{prose}");
    }

    #[test]
    fn self_metrics_alone_and_an_empty_api_result_are_an_empty_map() {
        let none = InputStats::default();
        assert!(check_input("x", b"a 1", InputKind::Exposition, &none, &stats(1, &["up"], None)).is_ok());
        assert!(check_input("x", b"{}", InputKind::ApiJson, &none, &none).is_ok());
        assert!(check_input("x", b"[]", InputKind::EdgeJson, &none, &none).is_ok());
    }
}
