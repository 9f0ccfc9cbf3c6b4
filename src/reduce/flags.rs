//! Which flag goes with which run. A flag that does not apply to the chosen format, mode or input is a usage
//! error (exit 2) naming the flag and what it goes with, never silently ignored (docs/design.md §6): a user who
//! writes `--focus cart --format networkpolicy` or `--window 1d` with a file must learn that it did nothing.
//! The binary gives the flags set on the command line or in the environment; this module holds the table.

use super::OutputFormat;
use super::error::{ReduceError, Result};

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The map in one of the renderings.
    Render(OutputFormat),
    NetworkPolicy,
    /// `--declared`: the declared edges that were not seen.
    Declared,
    /// `--declared-rules-from`: recording rules of declared edges.
    DeclaredRules,
    Diff,
    Impact,
}

/// The run the flags are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub mode: Mode,
    /// `--prometheus` is given.
    pub live: bool,
    /// With `--format networkpolicy`: policies are written for ingress, for egress (`--policy-direction`).
    pub ingress: bool,
    pub egress: bool,
}

impl Run {
    /// A run of `mode`; policies, if any, in both directions.
    pub fn new(mode: Mode, live: bool) -> Run {
        Run { mode, live, ingress: true, egress: true }
    }
}

/// A flag, when it applies, and what to tell the user it goes with.
struct Applies {
    flags: &'static [&'static str],
    when: fn(&Run) -> bool,
    goes_with: &'static str,
}

const LIVE: &[&str] = &[
    "--window",
    "--bearer-token-file",
    "--basic-auth-user",
    "--basic-auth-password-file",
    "--header",
    "--ca-file",
    "--insecure-skip-verify",
    "--timeout",
];

const FLAGS: &[Applies] = &[
    Applies {
        flags: &["--intents-version"],
        when: |r| r.mode == Mode::Render(OutputFormat::Intents),
        goes_with: "--format intents",
    },
    Applies {
        flags: &["--output-dir", "--prune", "--allow-empty"],
        when: |r| matches!(r.mode, Mode::Render(OutputFormat::Intents) | Mode::NetworkPolicy),
        goes_with: "--format intents or --format networkpolicy",
    },
    Applies {
        flags: &["--focus", "--depth"],
        when: |r| matches!(r.mode, Mode::Render(_)),
        goes_with: "--format list, intents, json, dot, mermaid or html",
    },
    Applies {
        flags: &["--group-by"],
        when: |r| matches!(r.mode, Mode::Render(OutputFormat::Dot | OutputFormat::Mermaid | OutputFormat::Html)),
        goes_with: "--format dot, mermaid or html",
    },
    Applies {
        flags: &["--show-seen"],
        when: |r| r.mode == Mode::Render(OutputFormat::List),
        goes_with: "--format list",
    },
    Applies { flags: &["--declared"], when: |r| r.mode == Mode::Declared, goes_with: "--format list" },
    Applies {
        flags: &["--show-control-plane"],
        when: |r| matches!(r.mode, Mode::Render(OutputFormat::List | OutputFormat::Intents)),
        goes_with: "--format list or intents (policies and the other formats keep control-plane calls)",
    },
    Applies {
        flags: &["--policy-format", "--policy-direction", "--no-default-deny"],
        when: |r| r.mode == Mode::NetworkPolicy,
        goes_with: "--format networkpolicy",
    },
    // The node-local cache is a DNS destination (egress rules); the CIDRs are sources (ingress rules).
    Applies {
        flags: &["--node-local-dns"],
        when: |r| r.mode == Mode::NetworkPolicy && r.egress,
        goes_with: "--format networkpolicy --policy-direction egress or both",
    },
    Applies {
        flags: &["--allow-from-cidr"],
        when: |r| r.mode == Mode::NetworkPolicy && r.ingress,
        goes_with: "--format networkpolicy --policy-direction ingress or both",
    },
    Applies {
        flags: &["--inventory-file", "--kubeconfig"],
        when: |r| matches!(r.mode, Mode::NetworkPolicy | Mode::Impact),
        goes_with: "--format networkpolicy and `impact`",
    },
    Applies { flags: LIVE, when: |r| r.live, goes_with: "--prometheus" },
    Applies { flags: &["--offset"], when: |r| r.mode == Mode::Diff && r.live, goes_with: "`diff --prometheus`" },
    Applies {
        flags: &["--format", "--namespace", "--min-count", "--exclude-namespace", "--exclude-server", "--skip-renamed"],
        when: |r| r.mode != Mode::DeclaredRules,
        goes_with: "a map (snapshot files or --prometheus), not --declared-rules-from",
    },
];

/// Fails on the first of `given` (long names, `--window`) that does not apply to `run`.
pub fn check_flags(given: &[String], run: &Run) -> Result<()> {
    for flag in given {
        let Some(rule) = FLAGS.iter().find(|rule| rule.flags.contains(&flag.as_str())) else { continue };
        if !(rule.when)(run) {
            return Err(ReduceError::Usage(format!(
                "{flag} does not apply to {}: it goes with {}; remove it (flags set through NETMAP_* environment \
                 variables count too)",
                describe(run),
                rule.goes_with
            )));
        }
    }
    Ok(())
}

fn describe(run: &Run) -> String {
    let what = match run.mode {
        Mode::Render(OutputFormat::List) => "--format list",
        Mode::Render(OutputFormat::Intents) => "--format intents",
        Mode::Render(OutputFormat::Json) => "--format json",
        Mode::Render(OutputFormat::Dot) => "--format dot",
        Mode::Render(OutputFormat::Mermaid) => "--format mermaid",
        Mode::Render(OutputFormat::Html) => "--format html",
        Mode::NetworkPolicy => "--format networkpolicy",
        Mode::Declared => "--declared",
        Mode::DeclaredRules => "--declared-rules-from",
        Mode::Diff => "diff",
        Mode::Impact => "impact",
    };
    let input = if run.live { "--prometheus" } else { "snapshot files" };
    if run.mode == Mode::DeclaredRules { what.to_owned() } else { format!("{what} with {input}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(flag: &str, mode: Mode, live: bool) -> std::result::Result<(), String> {
        check_flags(&[flag.to_owned()], &Run::new(mode, live)).map_err(|e| e.to_string())
    }

    #[test]
    fn flags_apply_only_where_they_do_something() {
        assert!(check("--focus", Mode::Render(OutputFormat::Dot), false).is_ok());
        let err = check("--focus", Mode::NetworkPolicy, false).unwrap_err();
        assert!(err.contains("--focus does not apply to --format networkpolicy with snapshot files"), "{err}");
        assert!(
            check("--window", Mode::Render(OutputFormat::List), false).unwrap_err().contains("goes with --prometheus")
        );
        assert!(check("--window", Mode::Impact, true).is_ok());
        assert!(check("--offset", Mode::Diff, true).is_ok());
        assert!(check("--offset", Mode::Diff, false).is_err());
        assert!(check("--kubeconfig", Mode::Impact, false).is_ok());
        assert!(check("--kubeconfig", Mode::Render(OutputFormat::Intents), false).is_err());
        assert!(check("--namespace", Mode::DeclaredRules, false).is_err());
        assert!(
            check("--prometheus", Mode::Render(OutputFormat::List), true).is_ok(),
            "flags not in the table always apply"
        );
    }
}
