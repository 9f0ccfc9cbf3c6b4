//! Kubernetes manifests as users keep them: files or directories (searched recursively for `.yaml`, `.yml`
//! and `.json`, in name order), one or many documents per file, `List`s (`kubectl get … -o yaml`) and typed
//! lists (`NetworkPolicyList`, `ClientIntentsList`) flattened into their items. Used by the declared-edges mode
//! (ClientIntents) and by `impact` (policies). Every error names the file and the document.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{ReduceError, Result};

/// Calls `visit` with every object of every manifest under `paths` (file name, object); a problem it returns
/// stops the run as bad input naming the file, the document and the list item.
pub fn visit_objects(
    paths: &[PathBuf],
    visit: &mut dyn FnMut(&str, &serde_yaml::Value) -> std::result::Result<(), String>,
) -> Result<()> {
    for path in paths {
        for file in expand(path)? {
            let text = std::fs::read_to_string(&file).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ReduceError::MissingInput { path: file.clone() },
                _ => ReduceError::io(file.display().to_string(), e),
            })?;
            let name = file.display().to_string();
            visit_text(&name, &text, &mut |object| visit(&name, object))?;
        }
    }
    Ok(())
}

/// [`visit_objects`] on one file's text.
pub fn visit_text(
    name: &str,
    text: &str,
    visit: &mut dyn FnMut(&serde_yaml::Value) -> std::result::Result<(), String>,
) -> Result<()> {
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let where_ = format!("document {}", index + 1);
        let value = serde_yaml::Value::deserialize(document)
            .map_err(|e| ReduceError::bad_input(name, format!("{where_}: malformed YAML: {e}")))?;
        flatten(&value, visit).map_err(|problem| ReduceError::bad_input(name, format!("{where_}: {problem}")))?;
    }
    Ok(())
}

fn flatten(
    value: &serde_yaml::Value,
    visit: &mut dyn FnMut(&serde_yaml::Value) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    if value.is_null() {
        return Ok(());
    }
    let kind = value.get("kind").and_then(|k| k.as_str()).ok_or("not a Kubernetes object (no `kind`)")?;
    if !kind.ends_with("List") {
        return visit(value);
    }
    let items = value.get("items").and_then(|i| i.as_sequence()).ok_or(format!("a {kind} without `items`"))?;
    items.iter().enumerate().try_for_each(|(i, item)| flatten(item, visit).map_err(|p| format!("item {}: {p}", i + 1)))
}

/// A file as itself; a directory as the manifest files in it and below, in name order.
fn expand(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let io_error = |e| ReduceError::io(path.display().to_string(), e);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io_error)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::result::Result<_, _>>()
        .map_err(io_error)?;
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            files.extend(expand(&entry)?);
        } else if entry.extension().is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "json") {
            files.push(entry);
        }
    }
    Ok(files)
}
