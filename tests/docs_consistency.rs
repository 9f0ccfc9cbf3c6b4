//! The docs against the code, both ways: docs/operating.md's metrics table lists exactly the exporter's table of
//! families (names, types, labels and fixed label values); the flag tables list exactly the flags of both binaries
//! (read from their `--help`); and every repository path the docs cite exists, with the heading a link names.
//! Each test fails naming every difference, with the side it is missing from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use network_mapper::exporter::config::Args;
use network_mapper::exporter::metrics::{FamilyInfo, Metrics};

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fail_on(problems: Vec<String>, what: &str) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

/// The text in backticks, in order.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The cells of a Markdown table row (`\|` does not split).
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut escaped = false;
    for c in inner.chars() {
        match c {
            '|' if !escaped => cells.push(String::new()),
            _ => cells.last_mut().unwrap().push(c),
        }
        escaped = c == '\\';
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

/// The body rows of the first table under the heading `heading` (a whole line).
fn table_under(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let (_, after) = doc.split_once(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("no heading {heading:?}"));
    let table = after.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|'));
    table.skip(2).map(cells).collect()
}

/// A family as the doc's metrics table gives it: type, and each label with its fixed values (empty when open).
#[derive(Debug, PartialEq)]
struct Documented {
    metric_type: String,
    labels: BTreeMap<String, BTreeSet<String>>,
}

/// `client`, `namespace`; `outcome`: `ok`, `error`: groups split by `;`, a group with `:` is a fixed label.
fn documented_labels(cell: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut labels = BTreeMap::new();
    for group in cell.split(';').filter(|g| !g.trim().is_empty()) {
        match group.split_once(':') {
            Some((name, values)) => {
                let name = code_spans(name).concat();
                labels.insert(name, code_spans(values).into_iter().map(str::to_string).collect());
            }
            None => labels.extend(code_spans(group).into_iter().map(|n| (n.to_string(), BTreeSet::new()))),
        }
    }
    labels
}

fn from_table(family: &FamilyInfo) -> Documented {
    let labels = family.labels.iter().map(|l| {
        let values = l.values.iter().flatten().map(|v| v.to_string()).collect();
        (l.name.to_string(), values)
    });
    Documented { metric_type: format!("{:?}", family.spec.metric_type).to_lowercase(), labels: labels.collect() }
}

#[test]
fn operating_md_lists_exactly_the_metric_families_with_their_labels_and_values() {
    let doc = read("docs/operating.md");
    let mut documented = BTreeMap::new();
    for row in table_under(&doc, "## Metrics") {
        let [name, metric_type, labels, _meaning] = &row[..] else { panic!("a metrics row has 4 cells: {row:?}") };
        let metric_type = metric_type.split_whitespace().next().unwrap_or_default().to_string();
        let family = Documented { metric_type, labels: documented_labels(labels) };
        documented.insert(code_spans(name).concat(), family);
    }
    let table: BTreeMap<String, Documented> =
        Metrics::families().iter().map(|f| (f.exposed_name.clone(), from_table(f))).collect();
    let mut problems = Vec::new();
    for (name, family) in &table {
        match documented.get(name) {
            None => problems.push(format!("{name}: served, missing from docs/operating.md")),
            Some(doc) if doc != family => {
                problems.push(format!("{name}: docs/operating.md says {doc:?}, the exporter's table {family:?}"));
            }
            Some(_) => {}
        }
    }
    let extra = documented.keys().filter(|name| !table.contains_key(*name));
    problems.extend(extra.map(|name| format!("{name}: in docs/operating.md, not served by the exporter")));
    fail_on(problems, "docs/operating.md ## Metrics against the exporter's table of families");
}

/// The long flags a `--help` output lists (without `--help` and `--version`).
fn help_flags(binary: &str, args: &[&str]) -> BTreeSet<String> {
    let out = Command::new(binary).args(args).arg("--help").output().expect("the binary runs");
    assert!(out.status.success(), "{binary} {args:?} --help: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let flags = text.lines().filter_map(|line| {
        let line = line.trim_start();
        let line =
            line.strip_prefix("-").filter(|l| l.as_bytes().get(1) == Some(&b',')).map_or(line, |l| l[2..].trim());
        let flag = line.strip_prefix("--")?.split([' ', '=', '<', '.']).next()?;
        Some(format!("--{flag}"))
    });
    flags.filter(|f| f != "--help" && f != "--version").collect()
}

/// The long flags in the first column of the table under `heading`.
fn documented_flags(doc: &str, heading: &str) -> BTreeSet<String> {
    let first_cells: Vec<String> = table_under(doc, heading).into_iter().map(|row| row[0].clone()).collect();
    let spans =
        first_cells.iter().flat_map(|cell| code_spans(cell).into_iter().map(str::to_string).collect::<Vec<_>>());
    spans
        .filter_map(|span| span.split_whitespace().next().filter(|f| f.starts_with("--")).map(str::to_string))
        .collect()
}

fn compare_flags(binary: &str, actual: &BTreeSet<String>, doc: &str, documented: &BTreeSet<String>) -> Vec<String> {
    let missing = actual.difference(documented).map(|f| format!("{binary} {f}: a flag, not documented in {doc}"));
    let extra = documented.difference(actual).map(|f| format!("{binary} {f}: documented in {doc}, not a flag"));
    missing.chain(extra).collect()
}

#[test]
fn every_flag_of_the_exporter_is_documented_once_and_every_documented_flag_exists() {
    let mut flags = help_flags(env!("CARGO_BIN_EXE_network-mapper"), &[]);
    // Hidden flags (for benchmarks and the checkers) are not in --help; the doc marks them as hidden.
    let command = Args::command();
    let hidden = command.get_arguments().filter(|a| a.is_hide_set()).filter_map(|a| a.get_long());
    flags.extend(hidden.map(|f| format!("--{f}")));
    let documented = documented_flags(&read("docs/operating.md"), "## Running the exporter");
    fail_on(compare_flags("network-mapper", &flags, "docs/operating.md", &documented), "exporter flags");
}

#[test]
fn every_flag_of_the_reducer_is_documented_once_and_every_documented_flag_exists() {
    let binary = env!("CARGO_BIN_EXE_netmap-reduce");
    let mut flags = help_flags(binary, &[]);
    for sub in ["diff", "impact"] {
        flags.extend(help_flags(binary, &[sub]));
    }
    let documented = documented_flags(&read("docs/reduce.md"), "## Flags");
    fail_on(compare_flags("netmap-reduce", &flags, "docs/reduce.md", &documented), "reducer flags");
}

/// The docs that cite repository paths.
fn docs() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir("docs").unwrap().map(|e| e.unwrap().path()).collect();
    docs.retain(|p| p.extension().is_some_and(|e| e == "md"));
    docs.push(PathBuf::from("README.md"));
    docs.sort();
    docs
}

/// The text outside fenced code blocks (commands and examples, not citations).
fn prose(text: &str) -> String {
    let mut fenced = false;
    let lines = text.lines().filter(|line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    });
    lines.collect::<Vec<_>>().join("\n")
}

/// Link targets of `[text](target)`: the path (empty for a link within the page) and the `#anchor`, if any.
fn link_targets(text: &str) -> Vec<(&str, Option<&str>)> {
    let targets = text.split("](").skip(1).filter_map(|rest| rest.split_once(')').map(|(t, _)| t));
    targets.map(|t| t.split_once('#').map_or((t, None), |(path, anchor)| (path, Some(anchor)))).collect()
}

/// The anchors GitHub gives a page's headings: lower case, letters, digits, `-` and `_` kept, spaces turned into
/// `-`, everything else dropped; a repeated anchor gets `-1`, `-2`, ...
fn heading_anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    for line in prose(text).lines() {
        let Some(heading) = line.strip_prefix('#').map(|h| h.trim_start_matches('#')).filter(|h| h.starts_with(' '))
        else {
            continue;
        };
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || " -_".contains(*c))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut unique = (0..).map(|n| if n == 0 { slug.clone() } else { format!("{slug}-{n}") });
        let anchor = unique.find(|a| !anchors.contains(a)).expect("an endless sequence has a free name");
        anchors.insert(anchor);
    }
    anchors
}

/// Whether a span in backticks is a repository path: no spaces, no glob or placeholder characters, not absolute,
/// not a URL, and under a top-level entry of the repository (so `client/server`, `k8s.io/x` and `/proc` are not
/// paths). Directories git ignores (`target/`, `.tools/`) are made by builds and set-up, not cited files.
fn is_repo_path(span: &str, top: &BTreeSet<String>) -> bool {
    let plain = span.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    let first = span.split('/').next().unwrap_or_default();
    plain && span.contains('/') && !span.contains("//") && top.contains(first)
}

#[test]
fn every_repository_path_the_docs_cite_exists() {
    let ignored = ["target", ".tools", ".git", "demo-out"];
    let top: BTreeSet<String> = std::fs::read_dir(".")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !ignored.contains(&name.as_str()))
        .collect();
    let mut problems = Vec::new();
    for doc in docs() {
        let text = prose(&std::fs::read_to_string(&doc).unwrap());
        let base = doc.parent().unwrap_or(Path::new("."));
        let local = |(path, _): &(&str, Option<&str>)| !path.contains("://") && !path.starts_with("mailto:");
        for (path, anchor) in link_targets(&text).into_iter().filter(local) {
            let target = if path.is_empty() { doc.clone() } else { base.join(path) };
            if !target.exists() {
                problems.push(format!("{}: link to {path}, which does not exist", doc.display()));
                continue;
            }
            let Some(anchor) = anchor.filter(|_| target.extension().is_some_and(|e| e == "md")) else { continue };
            if !heading_anchors(&std::fs::read_to_string(&target).unwrap()).contains(anchor) {
                problems.push(format!("{}: link to {path}#{anchor}, a heading that does not exist", doc.display()));
            }
        }
        for span in code_spans(&text).into_iter().filter(|s| is_repo_path(s, &top)) {
            if !Path::new(span).exists() {
                problems.push(format!("{}: cites `{span}`, which does not exist", doc.display()));
            }
        }
    }
    problems.dedup();
    fail_on(problems, "paths cited by README.md and docs/*.md");
}
