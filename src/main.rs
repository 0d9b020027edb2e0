//! The `karajo` command: parses the command line, sets up logging and runs the daemon
//! from the library. Accepts the original's single-dash `-config FILE` as well as
//! `--config FILE`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// karajo runs jobs for servers: commands and HTTP requests on timers and signed web
/// hooks, with a log for every run.
#[derive(Debug, Parser)]
#[command(name = "karajo", version, disable_version_flag = true)]
struct Cli {
    /// The main configuration file.
    #[arg(
        long,
        short = 'c',
        default_value = "/etc/karajo/karajo.conf",
        global = true
    )]
    config: PathBuf,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the version and exit.
    #[command(alias = "VERSION", alias = "Version")]
    Version,
}

/// Rewrites the original's Go-style flags (`-config FILE`, `-config=FILE`) into the
/// double-dash form clap reads.
fn go_style_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|arg| match arg.to_str() {
            Some("-config") => OsString::from("--config"),
            Some(s) if s.starts_with("-config=") => OsString::from(format!("-{s}")),
            _ => arg,
        })
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(go_style_args(std::env::args_os()));
    if let Some(Command::Version) = cli.command {
        println!("karajo version {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("karajo: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let daemon = karajo::Daemon::new(&cli.config).start().await?;
        daemon.serve_until_signalled().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("karajo: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("karajo=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_config_flags_are_accepted() {
        let args = ["karajo", "-config", "a.conf"].map(OsString::from);
        let cli = Cli::parse_from(go_style_args(args));
        assert_eq!(cli.config, PathBuf::from("a.conf"));
        let args = ["karajo", "-config=b.conf"].map(OsString::from);
        let cli = Cli::parse_from(go_style_args(args));
        assert_eq!(cli.config, PathBuf::from("b.conf"));
        let args = ["karajo", "--config", "c.conf", "version"].map(OsString::from);
        let cli = Cli::parse_from(go_style_args(args));
        assert!(matches!(cli.command, Some(Command::Version)));
    }
}
