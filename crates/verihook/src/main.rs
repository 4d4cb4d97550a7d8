//! `verihook`: a thin shim over the library crates. Parses the command line, sets up
//! logging, and hands over to the command.

mod bench;
mod check;
mod forward;
mod listen;
mod serve;
mod signing;
mod trigger;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;
use verihook_server::config::LogFormat;
use verihook_server::ServeConfig;

#[derive(Parser)]
#[command(
    name = "verihook",
    version,
    about = "Reliable, signed webhooks for a KYC API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and the delivery engine.
    Serve(Box<ServeConfig>),
    /// Receive webhooks locally: verify and print each event.
    Listen(listen::ListenArgs),
    /// Print the X-Webhook-Signature of the body on stdin.
    Sign(signing::SignArgs),
    /// Check a signature of the body on stdin; exits 0 only if it is valid.
    Verify(signing::VerifyArgs),
    /// Benchmark end to end: API throughput, delivery throughput and latency, memory.
    Bench(bench::BenchArgs),
    /// Make an event of a type happen, through the API of a sandbox organization.
    Trigger(trigger::TriggerArgs),
    /// Grade a receiver against the webhook testing checklist; exits 0 only if none fails.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Serve(config) => config.log_format,
        _ => LogFormat::Pretty,
    };
    init_logging(format);
    let result = match cli.command {
        Command::Serve(config) => block_on(serve::run(*config)),
        Command::Listen(args) => block_on(listen::run(args)),
        Command::Sign(args) => signing::sign(args),
        Command::Verify(args) => signing::verify(args),
        Command::Bench(args) => block_on(bench::run(args)),
        Command::Trigger(args) => block_on(trigger::run(args)),
        Command::Check(args) => block_on(check::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Log records go to stderr (stdout is for what the command prints), filtered by `RUST_LOG`.
fn init_logging(format: LogFormat) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => logs.init(),
        // Fields at the top level of each object, beside `timestamp`, `level`, `message`.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

fn block_on(work: impl std::future::Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::runtime::Runtime::new()
        .map_err(|e| format!("could not start the async runtime: {e}"))?
        .block_on(work)
        .map_err(|e| format!("error: {e}"))
}
