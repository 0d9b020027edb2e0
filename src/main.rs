//! The `karajo` command: parses the command line ([`karajo::cli`]), and either runs a
//! subcommand or sets up logging and serves with the daemon from the library (as PID 1,
//! through the small init of [`karajo::init`]). Accepts
//! the original's single-dash `-config FILE` as well as `--config FILE`.

use std::process::ExitCode;

use karajo::cli::{self, LogFormat};

fn main() -> ExitCode {
    let cli = cli::parse();
    if let Some(command) = &cli.command {
        return cli::run(&cli, command);
    }
    // As PID 1 (a container's entry point) karajo stays a minimal init that reaps
    // orphans and serves from a child process; see karajo::init.
    if karajo::init::wanted() {
        return karajo::init::run();
    }
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(std::time::Duration::from_secs(60))
        .max_blocking_threads(32)
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("karajo: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async {
        let daemon = karajo::Daemon::new(&cli.config).start().await?;
        daemon.serve_until_signalled().await?;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("karajo: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Colour codes only on a terminal, and never when `NO_COLOR` is set (no-color.org):
/// a file or journald gets plain text.
fn colour_wanted() -> bool {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal() && !no_color
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("karajo=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_wanted())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
