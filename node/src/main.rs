//! The `node` binary: parses the command line, sets up logging on stderr, runs [`node::program::run`]
//! and turns its error into a message and an exit code.

use anyhow::Context;
use clap::Parser;
use node::cli::{Cli, Settings};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.options.verbose);
    let settings = match Settings::from_options(&cli.options) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new().context("could not start the async runtime")
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let input = node::menu::stdin_lines();
    let mut out = std::io::stdout();
    let result = runtime.block_on(node::program::run(settings, cli.command, &mut out, input));
    // The stdin thread may be blocked in a read; do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = error.exit_code();
            eprintln!("error: {:#}", anyhow::Error::from(error));
            ExitCode::from(code)
        }
    }
}

/// Logs go to stderr so stdout stays for the user and for `--json`. Quiet by default (warnings),
/// `-v` for info, `-vv` for debug; `RUST_LOG` overrides both.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
