//! YAML output in the style Kubernetes users read every day. serde_yaml writes a sequence that is a mapping
//! value flush with its key (`targets:\n- kubernetes:`); Otterize's CLI, `kubectl` docs and Prometheus rule
//! files indent it (`targets:\n  - kubernetes:`). The documents are built and serialised by serde_yaml, then
//! [`indent_sequences`] shifts each such block by two spaces: the same YAML, and byte-for-byte the layout of
//! Otterize's own exports.

use serde::Serialize;

/// Serialises one document with serde_yaml and indents its sequences.
pub fn to_yaml<T: Serialize>(value: &T) -> String {
    // Serialising plain structs of strings into a String cannot fail.
    let raw = serde_yaml::to_string(value).unwrap_or_else(|e| unreachable!("serde_yaml failed on a plain struct: {e}"));
    indent_sequences(&raw)
}

/// Indents every block sequence that is the value of a mapping key by two more spaces than serde_yaml does.
///
/// Works on serde_yaml's output for documents whose scalars fit on one line (the reducer refuses names with
/// whitespace or control characters, so no block scalars occur).
pub fn indent_sequences(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + yaml.len() / 4);
    // Raw indents of the currently open key-valued sequences, innermost last.
    let mut open: Vec<usize> = Vec::new();
    let mut previous_key_column: Option<usize> = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let content = &line[indent..];
        let is_item = content == "-" || content.starts_with("- ");
        while let Some(&seq) = open.last() {
            if indent < seq || (indent == seq && !is_item) {
                open.pop();
            } else {
                break;
            }
        }
        if is_item && previous_key_column == Some(indent) && open.last() != Some(&indent) {
            open.push(indent);
        }
        for _ in 0..indent + 2 * open.len() {
            out.push(' ');
        }
        out.push_str(content);
        out.push('\n');
        previous_key_column = opened_mapping_column(indent, content);
    }
    out
}

/// If the line ends in a key with no value (`key:`), the column of that key; `- - key:` prefixes count.
fn opened_mapping_column(indent: usize, content: &str) -> Option<usize> {
    let mut column = indent;
    let mut rest = content;
    while let Some(after) = rest.strip_prefix("- ") {
        column += 2;
        rest = after;
    }
    (rest.ends_with(':') && !rest.starts_with(['\'', '"'])).then_some(column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn nested_sequences_are_indented_like_kubectl() {
        let raw = "spec:\n  targets:\n  - kubernetes:\n      name: a\n  - internet:\n      domains:\n      - x.com\n      - y.com\n  other: 1\nlist:\n- - a\n  - b\n";
        let want = "spec:\n  targets:\n    - kubernetes:\n        name: a\n    - internet:\n        domains:\n          - x.com\n          - y.com\n  other: 1\nlist:\n  - - a\n    - b\n";
        assert_eq!(indent_sequences(raw), want);
    }

    #[test]
    fn a_sequence_of_mappings_holding_sequences() {
        let raw = "groups:\n- name: g\n  rules:\n  - record: r\n    labels:\n      a: b\n";
        let want = "groups:\n  - name: g\n    rules:\n      - record: r\n        labels:\n          a: b\n";
        assert_eq!(indent_sequences(raw), want);
    }

    proptest::proptest! {
        #[test]
        fn indenting_never_changes_the_document(
            doc in proptest::collection::btree_map(
                "[a-z]{1,6}",
                proptest::collection::vec(
                    proptest::collection::btree_map("[a-z]{1,4}", proptest::collection::vec("[a-z:.*'\"-]{1,5}", 0..3), 0..3),
                    0..3),
                0..4)
        ) {
            let raw = serde_yaml::to_string(&doc).unwrap();
            let back: BTreeMap<String, Vec<BTreeMap<String, Vec<String>>>> =
                serde_yaml::from_str(&indent_sequences(&raw)).unwrap();
            proptest::prop_assert_eq!(back, doc);
        }
    }
}
