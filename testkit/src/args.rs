//! The command line of the generators under `examples/`: `PROGRAM OUT_DIR [COUNT]`.

use std::path::PathBuf;
use std::str::FromStr;

/// `OUT_DIR` and `COUNT` (named `count_name` in messages, `default` when absent); a missing directory or a count
/// that does not parse prints the usage or the error and exits with status 2.
pub fn out_dir_and_count<T: FromStr>(program: &str, count_name: &str, default: T) -> (PathBuf, T)
where
    T::Err: std::fmt::Display,
{
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: {program} OUT_DIR [{count_name}]");
        std::process::exit(2);
    };
    let count = match args.next().map(|a| a.parse()) {
        None => default,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("{count_name} must be a number: {e}");
            std::process::exit(2);
        }
    };
    (dir, count)
}
