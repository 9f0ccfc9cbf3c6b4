//! Golden files and generated fixtures, with one update switch: `UPDATE_GOLDEN=1` (`make golden-update`) rewrites
//! them from what the code produces now; review the diff before committing it.

use std::path::Path;

/// Whether this run rewrites golden files instead of comparing with them.
pub fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

/// Compares `actual` with the file at `path`, or rewrites the file under `UPDATE_GOLDEN=1`. Returns a mismatch
/// report (with both texts when they are text); a missing file fails the test.
pub fn check(path: &Path, actual: &[u8]) -> Option<String> {
    if updating() {
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return None;
    }
    let expected = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1 to create it", path.display()));
    if expected == actual {
        return None;
    }
    let texts = match (std::str::from_utf8(&expected), std::str::from_utf8(actual)) {
        (Ok(expected), Ok(actual)) => format!("\n--- expected\n{expected}\n--- actual\n{actual}"),
        _ => String::new(),
    };
    Some(format!("{} differs (UPDATE_GOLDEN=1 to accept, then review the diff){texts}", path.display()))
}

/// [`check`], failing the test on a mismatch.
pub fn assert_matches(path: &Path, actual: &[u8]) {
    if let Some(report) = check(path, actual) {
        panic!("{report}");
    }
}
