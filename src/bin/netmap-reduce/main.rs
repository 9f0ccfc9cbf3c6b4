//! `netmap-reduce`: the command line of [`network_mapper::reduce`]. Parses arguments ([`args`]; every flag
//! also reads `NETMAP_<FLAG>`), refuses flags that do not apply to the run, calls the library ([`requests`]
//! builds its requests), maps errors to exit codes: 0 success, 2 bad input or usage, 1 network or I/O failure;
//! `diff` and `impact` are gates: 0 nothing found, 1 found, 2 any trouble (docs/design.md §6).

mod args;
mod requests;

use std::io::Write;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use network_mapper::reduce::{self, Outcome, ReduceError, flags, impact, policy};

use args::{Args, Command, DiffArgs, Format, ImpactArgs, ImpactFormat};

fn main() -> ExitCode {
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // For a gate, 1 is the finding: every failure must be told apart from it.
    let gate = matches!(args.command, Some(Command::Diff(_) | Command::Impact(_)));
    match run(args, &matches) {
        Ok(code) => code,
        // `netmap-reduce … | head` closing the pipe early is not a failure.
        Err(ReduceError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("netmap-reduce: {error}");
            ExitCode::from(if gate { 2 } else { error.exit_code() })
        }
    }
}

fn run(args: Args, matches: &ArgMatches) -> Result<ExitCode, ReduceError> {
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let run = requests::run_of(&args);
    let command = Args::command();
    let given = match matches.subcommand() {
        Some((name, sub)) => given_flags(sub, command.find_subcommand(name).unwrap_or(&command)),
        None => given_flags(matches, &command),
    };
    flags::check_flags(&given, &run)?;
    let code = match args.command {
        Some(Command::Diff(diff)) => run_diff(diff, &mut stdout)?,
        Some(Command::Impact(impact)) => run_impact(impact, &mut stdout)?,
        None => run_map(args, &mut stdout)?,
    };
    stdout.flush().map_err(|source| ReduceError::Io { path: "<stdout>".to_owned(), source })?;
    Ok(code)
}

/// The long names of the flags set on the command line or through their environment variable.
fn given_flags(matches: &ArgMatches, command: &clap::Command) -> Vec<String> {
    command
        .get_arguments()
        .filter(|arg| {
            let source = matches.value_source(arg.get_id().as_str());
            matches!(source, Some(ValueSource::CommandLine | ValueSource::EnvVariable))
        })
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .collect()
}

fn run_map(args: Args, out: &mut dyn Write) -> Result<ExitCode, ReduceError> {
    if !args.declared_rules_from.is_empty() {
        for warning in reduce::run_declared(&args.declared_rules_from, out)? {
            eprintln!("netmap-reduce: warning: {warning}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = if matches!(args.format, Format::Networkpolicy) {
        let request = requests::policy_request_from(args)?;
        policy::run(&request, out, &mut |note| eprintln!("netmap-reduce: {note}"))?
    } else {
        reduce::run(&requests::request_from(args)?, out)?
    };
    report(outcome);
    Ok(ExitCode::SUCCESS)
}

fn report(outcome: Outcome) {
    match outcome {
        Outcome::Empty { report, removed } => {
            for file in removed {
                eprintln!("removed {}", file.display());
            }
            eprintln!("No connections found ({report}).");
        }
        Outcome::Written { files, removed } => {
            for file in files {
                eprintln!("wrote {}", file.display());
            }
            for file in removed {
                eprintln!("removed {}", file.display());
            }
        }
        Outcome::Unseen { count, declared, warnings } => {
            for warning in warnings {
                eprintln!("netmap-reduce: warning: {warning}");
            }
            eprintln!("{count} of {declared} declared edge(s) not seen.");
        }
    }
}

fn run_diff(args: DiffArgs, out: &mut dyn Write) -> Result<ExitCode, ReduceError> {
    let filter = requests::filter_from(&args.filters);
    let (old, new) = requests::diff_sources(&args)?;
    let skip = args.filters.skip_renamed;
    let old = reduce::load_snapshot(&old, skip, false)?;
    let new = reduce::load_snapshot(&new, skip, false)?;
    let diff = reduce::diff::diff(old, new, &filter);
    reduce::diff::write_diff(&diff, out)?;
    eprintln!("{} new, {} gone, {} in both.", diff.new.len(), diff.gone.len(), diff.kept);
    Ok(if diff.new.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn run_impact(args: ImpactArgs, out: &mut dyn Write) -> Result<ExitCode, ReduceError> {
    let json = matches!(args.format, ImpactFormat::Json);
    let request = requests::impact_request_from(args, json)?;
    let outcome = impact::run(&request, out)?;
    for note in &outcome.notes {
        eprintln!("netmap-reduce: {note}");
    }
    Ok(if outcome.summary.denied == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
