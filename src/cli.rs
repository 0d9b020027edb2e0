//! The `karajo` command line: the clap definitions of every subcommand and the code
//! that runs them, except serving, which `main.rs` does with the [`Daemon`]. It owns
//! the argument grammar (including the original's single-dash `-config FILE`), the
//! output of `check`, `sign`, `hash-password`, `job`, `job-http`, `monitor`,
//! `service`, `import`, `man` and `completions`, and their exit codes; it reaches a
//! running server only through [`crate::client`].
//!
//! [`Daemon`]: crate::Daemon

pub mod check;
#[cfg(feature = "cluster-nats")]
pub mod cluster;
pub mod docs;
pub mod import;
pub mod jobs;
pub mod password;
pub mod service;
pub mod sign;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::client::ClientError;

/// The configuration file when none is given.
pub const DEFAULT_CONFIG: &str = "/etc/karajo/karajo.conf";

/// karajo runs jobs for servers: commands and HTTP requests on timers and signed web
/// hooks, with a log for every run. Without a subcommand it serves.
#[derive(Debug, Parser)]
#[command(name = "karajo", version = crate::VERSION)]
pub struct Cli {
    /// The main configuration file (also `-config FILE`).
    #[arg(long, short = 'c', default_value = DEFAULT_CONFIG, global = true)]
    pub config: PathBuf,

    /// The format of the daemon's own log lines on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// What to do; serve when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The format of the daemon's log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version and exit.
    #[command(alias = "VERSION", alias = "Version")]
    Version,
    /// Check the configuration as the daemon would, and show each job's next runs.
    Check(check::CheckArgs),
    /// Print the signature header of the payload read from standard input.
    Sign(sign::SignArgs),
    /// Read a password (without echo on a terminal, or one line from standard input)
    /// and print its bcrypt hash for user.conf.
    #[command(name = "hash-password")]
    HashPassword(password::HashPasswordArgs),
    /// Drive the command jobs of a running server.
    #[command(subcommand)]
    Job(jobs::JobCommand),
    /// Drive the HTTP jobs of a running server.
    #[command(subcommand, name = "job-http")]
    JobHttp(jobs::JobHttpCommand),
    /// Read, pause and resume the heartbeat monitors of a running server.
    #[command(subcommand)]
    Monitor(jobs::MonitorCommand),
    /// Read and control the supervised services of a running server.
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Translate other schedulers' configuration into karajo's (a crontab).
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Print the manual page (roff), or write one page per subcommand with --dir.
    Man(docs::ManArgs),
    /// Print the completion script of a shell (bash, zsh or fish).
    Completions(docs::CompletionsArgs),
    /// Cluster mode's operator commands.
    #[cfg(feature = "cluster-nats")]
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server could not be reached or refused the call.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// Reading the input or writing the output failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The arguments do not allow the call.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub(crate) fn output(source: std::io::Error) -> Self {
        Self::Io {
            what: "cannot write the output",
            source,
        }
    }
}

/// Rewrites the original's Go-style flags (`-config FILE`, `-config=FILE`) into the
/// double-dash form clap reads.
pub fn go_style_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|arg| match arg.to_str() {
            Some("-config") => OsString::from("--config"),
            Some(s) if s.starts_with("-config=") => OsString::from(format!("-{s}")),
            _ => arg,
        })
        .collect()
}

/// Parses the process's arguments, Go-style flags included.
pub fn parse() -> Cli {
    Cli::parse_from(go_style_args(std::env::args_os()))
}

/// Runs a subcommand other than serving, on the process's standard streams, and
/// returns the exit code: 0 done, 1 failed (or `check` found an error).
pub fn run(cli: &Cli, command: &Command) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match command {
        Command::Version => writeln!(out, "karajo version {}", crate::VERSION)
            .map(|()| ExitCode::SUCCESS)
            .map_err(CliError::output),
        Command::Check(args) => match args.format {
            check::CheckFormat::Text => check::run(&cli.config, jiff::Timestamp::now(), &mut out),
            check::CheckFormat::Json => {
                check::run_json(&cli.config, jiff::Timestamp::now(), &mut out)
            }
        }
        .map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        })
        .map_err(CliError::output),
        Command::Sign(args) => sign::run(args, &mut std::io::stdin().lock(), &mut out),
        Command::HashPassword(args) => password::run(args, &mut out),
        Command::Import(command) => {
            import::run(command, &cli.config, &mut out).map(|()| ExitCode::SUCCESS)
        }
        Command::Man(args) => docs::run_man(args, &mut out).map(|()| ExitCode::SUCCESS),
        Command::Completions(args) => {
            docs::run_completions(args, &mut out).map(|()| ExitCode::SUCCESS)
        }
        Command::Job(job) => block_on(jobs::run_job(job, &mut out)),
        Command::JobHttp(job) => block_on(jobs::run_job_http(job, &mut out)),
        Command::Monitor(monitor) => block_on(jobs::run_monitor(monitor, &mut out)),
        Command::Service(service) => block_on(service::run_service(service, &mut out)),
        #[cfg(feature = "cluster-nats")]
        Command::Cluster(command) => {
            cluster::run_cluster(command, &mut out).map(|()| ExitCode::SUCCESS)
        }
    };
    let _ = out.flush();
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("karajo: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A duration in Go's notation without the zero tails: `5m`, `1h30m`, `90s` → `1m30s`.
pub(crate) fn short_duration(d: Duration) -> String {
    crate::config::duration::format_short(d)
}

fn block_on(
    future: impl std::future::Future<Output = Result<(), CliError>>,
) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            what: "cannot start the async runtime",
            source,
        })?;
    runtime.block_on(future).map(|()| ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(go_style_args(args.iter().map(OsString::from)))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn go_style_config_flags_are_accepted() {
        let cli = parse(&["karajo", "-config", "a.conf"]);
        assert_eq!(cli.config, PathBuf::from("a.conf"));
        assert!(cli.command.is_none());
        let cli = parse(&["karajo", "-config=b.conf"]);
        assert_eq!(cli.config, PathBuf::from("b.conf"));
        let cli = parse(&["karajo", "--config", "c.conf", "version"]);
        assert!(matches!(cli.command, Some(Command::Version)));
        let cli = parse(&["karajo", "check", "-config", "d.conf"]);
        assert_eq!(cli.config, PathBuf::from("d.conf"));
        assert!(matches!(cli.command, Some(Command::Check(_))));
        let cli = parse(&["karajo"]);
        assert_eq!(cli.config, PathBuf::from(DEFAULT_CONFIG));
        assert_eq!(cli.log_format, LogFormat::Text);
    }

    #[test]
    fn the_log_format_is_text_or_json() {
        let cli = parse(&["karajo", "--log-format", "json"]);
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(Cli::try_parse_from(["karajo", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn job_subcommands_parse() {
        let cli = parse(&[
            "karajo",
            "job",
            "log",
            "hello",
            "3",
            "--server",
            "http://h:1",
            "--json",
        ]);
        let Some(Command::Job(jobs::JobCommand::Log {
            id,
            counter,
            server,
        })) = cli.command
        else {
            panic!("{:?}", cli.command);
        };
        assert_eq!((id.as_str(), counter), ("hello", Some(3)));
        assert_eq!(server.server, "http://h:1");
        assert!(server.json);
        let cli = parse(&["karajo", "job-http", "pause", "ping", "--secret", "s"]);
        assert!(matches!(
            cli.command,
            Some(Command::JobHttp(jobs::JobHttpCommand::Pause { .. }))
        ));
    }

    #[test]
    fn service_subcommands_parse() {
        let cli = parse(&["karajo", "service", "get", "api", "--history"]);
        assert!(matches!(
            cli.command,
            Some(Command::Service(service::ServiceCommand::Get {
                history: true,
                ..
            }))
        ));
        let cli = parse(&["karajo", "service", "restart", "api", "--cas", "42"]);
        assert!(matches!(
            cli.command,
            Some(Command::Service(service::ServiceCommand::Restart {
                cas: Some(42),
                ..
            }))
        ));
        let cli = parse(&["karajo", "service", "run-once", "api", "off"]);
        assert!(matches!(
            cli.command,
            Some(Command::Service(service::ServiceCommand::RunOnce {
                switch: service::Switch::Off,
                cas: None,
                ..
            }))
        ));
        let cli = parse(&["karajo", "service", "signal", "api", "HUP", "--secret", "s"]);
        let Some(Command::Service(service::ServiceCommand::Signal { signal, .. })) = cli.command
        else {
            panic!("{:?}", cli.command);
        };
        assert_eq!(signal, "HUP");
        for bad in [
            &["karajo", "service", "run-once", "api", "maybe"][..],
            &["karajo", "service", "disable", "api", "--cas", "x"],
            &["karajo", "service", "enable"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn short_durations_drop_zero_tails() {
        let s = Duration::from_secs;
        assert_eq!(short_duration(s(300)), "5m");
        assert_eq!(short_duration(s(3600)), "1h");
        assert_eq!(short_duration(s(5400)), "1h30m");
        assert_eq!(short_duration(s(90)), "1m30s");
        assert_eq!(short_duration(s(3601)), "1h0m1s");
    }

    #[test]
    fn clap_definitions_are_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
