//! `network-mapper`: the node-level exporter. Parses flags, sets up logging, runs until SIGTERM/SIGINT.

use std::process::ExitCode;

use clap::Parser;
use network_mapper::exporter;
use network_mapper::exporter::config::Args;
use network_mapper::exporter::server::Exposition;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = if args.print_metric_families {
        println!("{}", exporter::metrics::Metrics::families_json());
        Ok(())
    } else if args.print_metrics {
        exporter::print_metrics(&args, Exposition::OpenMetrics).map(|text| print!("{text}"))
    } else {
        run(args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("network-mapper: {e}");
            ExitCode::from(if e.is_bad_input() { 2 } else { 1 })
        }
    }
}

fn run(args: Args) -> Result<(), exporter::Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(exporter::Error::Runtime)?;
    runtime.block_on(exporter::run_with_args(args, shutdown_signal()))
}

/// Completes on the first SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers the process still dies on the default action; serve until then.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
