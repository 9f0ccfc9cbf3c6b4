//! The layering of `src/` (docs/architecture.md), checked on the source text: data flows one way, from the
//! sources through the pure core to the exporter runtime, and the reducer stands apart. A module that imports
//! from a layer above its own, or two sibling modules that import each other, fail this test with the file and
//! the line.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layer a file belongs to, from its path under `src/`.
fn layer_of(relative: &str) -> String {
    let parts: Vec<&str> = relative.trim_end_matches(".rs").split('/').collect();
    match parts.as_slice() {
        ["sources", source, ..] if *source != "mod" => format!("sources::{source}"),
        ["sources", "mod"] => "sources".into(),
        [top, ..] => top.to_string(),
        [] => unreachable!("a path has a first component"),
    }
}

/// May a module of layer `from` name `crate::<target>`? `target` is the first one or two path segments.
fn allowed(from: &str, target: &str) -> bool {
    // Items at the crate root (e.g. `UnixMicros`) are shared vocabulary, not a layer; so is `mesh` (the ports and
    // annotations of service meshes, no I/O), which the socket scan, the inventory, the core and the reducer all
    // speak.
    let root_item = target.chars().next().is_some_and(char::is_uppercase) || target == "mesh";
    if root_item || target == from || target.starts_with(&format!("{from}::")) {
        return true;
    }
    let inventory = target == "sources::inventory";
    match from {
        // A source sees only itself: capture, sockets and inventory know nothing of each other.
        f if f.starts_with("sources::") => false,
        // The pure core resolves against the inventory index.
        "resolve" => inventory,
        // The reducer reads the same Kubernetes objects (selectors for policies), nothing of the exporter.
        "reduce" => inventory,
        // The runtime may use everything below it, never the reducer.
        "exporter" => target.starts_with("sources") || target == "resolve",
        "lib" | "bin" | "sources" => true,
        _ => false,
    }
}

/// `crate::a::b` paths used on code lines (comments and doc links are not imports), with their line numbers.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            // `use crate::{a, b::c}` names several first segments at once.
            let names: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                group.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
            } else {
                vec![rest.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).next().unwrap_or("").into()]
            };
            for name in names {
                let segments: Vec<&str> = name.split("::").filter(|s| !s.is_empty()).take(2).collect();
                let target = match segments.as_slice() {
                    ["sources", source] => format!("sources::{source}"),
                    [first, ..] => first.to_string(),
                    [] => continue,
                };
                found.push((number + 1, target));
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&src).expect("under src/").to_string_lossy().replace('\\', "/");
            (relative, fs::read_to_string(&path).expect("read source file"))
        })
        .collect()
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let mut violations = Vec::new();
    for (relative, text) in sources() {
        let layer = layer_of(&relative);
        for (line, target) in crate_paths(&text) {
            if !allowed(&layer, &target) {
                violations.push(format!("src/{relative}:{line}: layer `{layer}` imports `crate::{target}`"));
            }
        }
    }
    assert!(violations.is_empty(), "imports against the layering (docs/architecture.md):\n{}", violations.join("\n"));
}

/// Sibling files of one folder that import each other (`super::x` both ways) form a cycle; a folder's `mod.rs`
/// is its parent and exempt (children use its error type, it re-exports theirs).
#[test]
fn no_two_sibling_modules_import_each_other() {
    let mut imports: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (relative, text) in sources() {
        let (folder, file) = relative.rsplit_once('/').unwrap_or(("", relative.as_str()));
        let module = file.trim_end_matches(".rs").to_string();
        if module == "mod" || module == "lib" {
            continue;
        }
        let crate_prefix = format!("crate::{}::", folder.replace('/', "::"));
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for prefix in ["super::", crate_prefix.as_str()] {
                for (at, _) in line.match_indices(prefix) {
                    let name: String =
                        line[at + prefix.len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() && name != module && name.chars().next().is_some_and(char::is_lowercase) {
                        imports.entry((folder.to_string(), module.clone())).or_default().insert(name);
                    }
                }
            }
        }
    }
    let mut cycles = Vec::new();
    for ((folder, module), targets) in &imports {
        for target in targets {
            let back = imports.get(&(folder.clone(), target.clone()));
            if module < target && back.is_some_and(|b| b.contains(module)) {
                cycles.push(format!("src/{folder}: {module} <-> {target}"));
            }
        }
    }
    assert!(cycles.is_empty(), "sibling modules that import each other:\n{}", cycles.join("\n"));
}

#[test]
fn the_checker_sees_a_violation_when_there_is_one() {
    let paths = crate_paths("use crate::exporter::metrics::Metrics;\n// use crate::exporter::server;\n");
    assert_eq!(paths, vec![(1, "exporter".to_string())]);
    assert!(!allowed(&layer_of("sources/inventory/kube.rs"), "exporter"));
    assert!(!allowed(&layer_of("sources/capture/frame.rs"), "sources::sockets"));
    assert!(allowed(&layer_of("sources/capture/frame.rs"), "UnixMicros"));
    assert!(allowed(&layer_of("sources/sockets/classify.rs"), "mesh"));
    assert!(!allowed(&layer_of("mesh.rs"), "sources::sockets"));
    assert!(allowed(&layer_of("resolve.rs"), "sources::inventory"));
    assert!(!allowed(&layer_of("reduce/model.rs"), "exporter"));
    let grouped = crate_paths("use crate::{UnixMicros, sources::capture::dns};");
    assert_eq!(grouped, vec![(1, "UnixMicros".to_string()), (1, "sources::capture".to_string())]);
}
