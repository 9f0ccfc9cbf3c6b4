//! Shared by the policy tests: the shop's fixtures and `netmap-reduce` runs, random policy cases
//! ([`random`]) and the analyzer ([`nca`]).

#![allow(dead_code)]

pub mod nca;
pub mod random;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `tests/fixtures/policy/shop/`: the demo shop's map, inventory and golden policies (tests/policy_shop.rs).
pub fn shop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy/shop")
}

/// A file of the shop's fixtures, as an argument.
pub fn shop(name: &str) -> String {
    shop_dir().join(name).display().to_string()
}

/// Runs `netmap-reduce` with `args` (and no `NETMAP_*` variables from the caller's environment).
pub fn reduce(args: &[&str]) -> Output {
    reduce_with_env(args, &[])
}

/// [`reduce`] with extra environment variables.
pub fn reduce_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netmap-reduce"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("NETMAP_")) {
        command.env_remove(key);
    }
    command.args(args).envs(env.iter().copied()).env("NO_PROXY", "127.0.0.1").output().expect("netmap-reduce runs")
}

/// stdout and stderr as text.
pub fn texts(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Asserts the exit code and that stderr holds every needle.
pub fn assert_exit(output: &Output, code: i32, needles: &[&str]) {
    let (stdout, stderr) = texts(output);
    assert_eq!(output.status.code(), Some(code), "stdout: {stdout}\nstderr: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in stderr: {stderr}");
    }
}

/// The shop's policies from its map and inventory, with `extra` arguments; they must be generated.
pub fn generate(extra: &[&str]) -> String {
    let (input, inventory) = (shop("input.prom"), shop("inventory.yaml"));
    let mut args = vec![input.as_str(), "--format", "networkpolicy", "--inventory-file", inventory.as_str()];
    args.extend(extra);
    let output = reduce(&args);
    assert_exit(&output, 0, &[]);
    texts(&output).0
}
