//! The Prometheus text exposition as scraped from the exporters: OpenMetrics 1.0 (what `network-mapper` serves,
//! with `# TYPE`, `_created` samples, exemplars and `# EOF`) and the classic 0.0.4 format. Only the samples of
//! [`EDGE_METRIC`], [`INFO_METRIC`] and [`CONNECTIONS_METRIC`] are parsed; every other line of a scrape is skipped unread, so the
//! exporter's self-metrics never get in the way. Pure: bytes in, samples into a [`Snapshot`].

use std::borrow::Cow;

use super::model::{CONNECTIONS_METRIC, EDGE_METRIC, INFO_METRIC, LabelSet, METRIC_PREFIX, Snapshot};

/// Parses one exposition into `snapshot`. The error names the 1-based line and what is wrong with it.
pub fn parse_exposition(text: &str, snapshot: &mut Snapshot) -> Result<(), String> {
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
        let name = &line[..name_end];
        if name != EDGE_METRIC && name != INFO_METRIC && name != CONNECTIONS_METRIC {
            note_other_line(index, line, name, snapshot);
            continue;
        }
        parse_sample(name, &line[name_end..], snapshot).map_err(|problem| format!("line {}: {problem}", index + 1))?;
    }
    Ok(())
}

/// Counts a line that is not one of ours: the exporter's self-metrics make a scrape a network-mapper input even
/// before it has edges; other metrics, or lines that are no samples at all, say what a wrong input is instead.
fn note_other_line(index: usize, line: &str, name: &str, snapshot: &mut Snapshot) {
    let stats = &mut snapshot.stats;
    if name.starts_with(METRIC_PREFIX) {
        stats.add_own();
    } else if is_metric_name(name) && looks_like_sample(&line[name.len()..]) {
        stats.add_other(name);
    } else if stats.not_a_sample.is_none() {
        stats.not_a_sample = Some((index + 1, line.chars().take(60).collect()));
    }
}

/// What follows a metric name in a sample: optional `{labels}`, then a number (prose has words there).
fn looks_like_sample(rest: &str) -> bool {
    let rest = match rest.strip_prefix('{') {
        Some(inner) => match inner.rfind('}') {
            Some(end) => &inner[end + 1..],
            None => return false,
        },
        None => rest,
    };
    rest.split_whitespace().next().is_some_and(|value| parse_value(value).is_ok())
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, the classic metric name.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_sample(name: &str, rest: &str, snapshot: &mut Snapshot) -> Result<(), String> {
    let mut labels = LabelSet { name: Some(Cow::Borrowed(name)), ..LabelSet::default() };
    let rest = match rest.strip_prefix('{') {
        Some(inner) => parse_labels(inner, &mut labels)?,
        None => rest,
    };
    let value_text = rest.split_whitespace().next().ok_or_else(|| format!("sample of {name} has no value"))?;
    let value = parse_value(value_text)?;
    snapshot.add_series(&labels, value)
}

/// Parses `a="x",b="y"}` and returns what follows the closing brace.
fn parse_labels<'a>(mut rest: &'a str, labels: &mut LabelSet<'a>) -> Result<&'a str, String> {
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let eq = rest.find('=').ok_or("a label has no '=' (or the '}' is missing)")?;
        let key = rest[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid label name {key:?}"));
        }
        let (value, after) = parse_quoted(rest[eq + 1..].trim_start())?;
        store_label(labels, key, value);
        rest = after.trim_start_matches([' ', '\t']);
        rest = match rest.strip_prefix(',') {
            Some(after_comma) => after_comma,
            None if rest.starts_with('}') => rest,
            None => return Err(format!("expected ',' or '}}' after the value of label {key}")),
        };
    }
}

/// Parses a double-quoted label value with the exposition escapes `\\`, `\"` and `\n`. Borrows unless the
/// value has escapes.
fn parse_quoted(text: &str) -> Result<(Cow<'_, str>, &str), String> {
    let body = text.strip_prefix('"').ok_or("a label value is not quoted")?;
    let mut owned: Option<String> = None;
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let value = owned.map_or(Cow::Borrowed(&body[..i]), Cow::Owned);
                return Ok((value, &body[i + 1..]));
            }
            '\\' => {
                let buf = owned.get_or_insert_with(|| body[..i].to_owned());
                match chars.next() {
                    Some((_, 'n')) => buf.push('\n'),
                    Some((_, '\\')) => buf.push('\\'),
                    Some((_, '"')) => buf.push('"'),
                    other => return Err(format!("invalid escape \\{} in a label value", other.map_or(' ', |o| o.1))),
                }
            }
            _ => {
                if let Some(buf) = owned.as_mut() {
                    buf.push(c);
                }
            }
        }
    }
    Err("a label value has no closing quote".to_owned())
}

fn store_label<'a>(labels: &mut LabelSet<'a>, key: &str, value: Cow<'a, str>) {
    let slot = match key {
        "client" => &mut labels.client,
        "namespace" => &mut labels.namespace,
        "server" => &mut labels.server,
        "server_namespace" => &mut labels.server_namespace,
        "workload" => &mut labels.workload,
        "kind" => &mut labels.kind,
        "exported_namespace" => &mut labels.exported_namespace,
        "port" => &mut labels.port,
        _ => return,
    };
    *slot = Some(value);
}

/// Sample values: Go/OpenMetrics floats, including `+Inf`, `-Inf` and `NaN`.
pub(crate) fn parse_value(text: &str) -> Result<f64, String> {
    text.parse::<f64>().map_err(|_| format!("invalid sample value {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reduce::model::Filter;

    fn parse(text: &str) -> Result<crate::reduce::model::ServiceMap, String> {
        let mut snapshot = Snapshot::default();
        parse_exposition(text, &mut snapshot)?;
        Ok(snapshot.into_map(&Filter::default()))
    }

    #[test]
    fn openmetrics_with_created_exemplars_and_eof() {
        let text = "# HELP network_mapper_edge Observed calls.\n\
            # TYPE network_mapper_edge counter\n\
            network_mapper_edge_total{client=\"a\",namespace=\"shop\",server=\"b\",server_namespace=\"shop\"} 3 # {trace_id=\"x\"} 1 1.5\n\
            network_mapper_edge_created{client=\"a\",namespace=\"shop\",server=\"b\",server_namespace=\"shop\"} 1.7e9\n\
            # TYPE network_mapper_workload info\n\
            network_mapper_workload_info{workload=\"b\",namespace=\"shop\",kind=\"StatefulSet\"} 1\n\
            # EOF\n";
        let map = parse(text).unwrap();
        assert_eq!(map.clients[0].calls[0].count, 3.0);
        assert_eq!(map.clients[0].calls[0].kind.as_deref(), Some("StatefulSet"));
    }

    #[test]
    fn classic_text_with_timestamps_spaces_and_escapes() {
        let text = "network_mapper_edge_total{ client = \"a\" , namespace=\"shop\", server=\"api.example.com\", } 2 1700000000000\r\n\
            network_mapper_edge_total{instance=\"x\\\"y\\\\z\",client=\"a\",namespace=\"shop\",server=\"api.example.com\"} 1\n";
        let map = parse(text).unwrap();
        assert_eq!(map.clients[0].calls[0].server, "api.example.com");
        assert_eq!(map.clients[0].calls[0].count, 3.0);
    }

    #[test]
    fn other_metrics_are_skipped_even_when_they_would_not_parse() {
        let text = "network_mapper_packets_total{weird stuff 12\nprocess_cpu_seconds_total 4.5\n";
        assert!(parse(text).unwrap().is_empty());
    }

    proptest::proptest! {
        #[test]
        fn escaped_label_values_come_back_unchanged(value in "[a-z\\\\\"\n{},= ]{0,12}") {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let line = format!("network_mapper_workload_info{{workload=\"w\",namespace=\"n\",kind=\"{escaped}\"}} 1");
            let mut labels = LabelSet::default();
            let rest = parse_labels(&line["network_mapper_workload_info{".len()..], &mut labels).unwrap();
            proptest::prop_assert_eq!(rest, " 1");
            proptest::prop_assert_eq!(labels.kind.as_deref(), Some(value.as_str()));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "(network_mapper_edge_total|[{}=\",a-z0-9 .\\\\\n#-])*") {
            let _ = parse_exposition(&text, &mut Snapshot::default());
        }
    }

    #[test]
    fn malformed_samples_name_their_line() {
        for (text, needle) in [
            ("\nnetwork_mapper_edge_total{client=\"a\" 1\n", "line 2"),
            ("network_mapper_edge_total{client=a} 1\n", "not quoted"),
            ("network_mapper_edge_total{client=\"a} 1\n", "no closing quote"),
            ("network_mapper_edge_total{client=\"a\",namespace=\"s\",server=\"b\"} x1\n", "invalid sample value"),
            ("network_mapper_edge_total{client=\"a\",namespace=\"s\",server=\"b\"}\n", "no value"),
            ("network_mapper_edge_total{namespace=\"s\",server=\"b\"} 1\n", "no `client` label"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
