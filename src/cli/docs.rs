//! `karajo man` and `karajo completions SHELL`: the manual page (roff, through
//! clap_mangen) and the shell completion scripts (through clap_complete), both made
//! from the clap definitions in [`crate::cli`], so they never drift from the command
//! line they describe. The Debian package build runs these two commands on the release
//! binary (see `scripts/package-deb`); nothing here reads configuration or a server.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory as _;

use super::{Cli, CliError};

/// The arguments of `karajo man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write `karajo.1` and one page per subcommand (`karajo-check.1`, ...) into this
    /// directory instead of printing `karajo.1` on standard output.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The shells `karajo completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// GNU bash (bash-completion).
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// The arguments of `karajo completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The clap command with its final name, as the man page and the completions see it.
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

/// Writes the man page `karajo.1` to `out`, or, with `--dir`, every page to files.
pub fn run_man(args: &ManArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let cmd = command();
    match &args.dir {
        None => render(&cmd, "karajo", out).map_err(CliError::output),
        Some(dir) => write_pages(&cmd, dir, "karajo", out),
    }
}

fn render(cmd: &clap::Command, title: &str, out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(cmd.clone())
        .title(title.to_string())
        .section("1")
        .manual("karajo manual")
        .source(format!("karajo {}", crate::VERSION))
        .render(out)
}

/// Writes `<name>.1` for `cmd` and recurses into its visible subcommands, naming each
/// written file on `out`.
fn write_pages(
    cmd: &clap::Command,
    dir: &Path,
    name: &str,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let path = dir.join(format!("{name}.1"));
    let io_error = |what: &'static str, place: &Path| {
        let place = place.display().to_string();
        move |source: std::io::Error| CliError::Io {
            what,
            source: std::io::Error::other(format!("{place}: {source}")),
        }
    };
    std::fs::create_dir_all(dir).map_err(io_error("cannot create the man page directory", dir))?;
    let mut page = Vec::new();
    render(cmd, name, &mut page).map_err(CliError::output)?;
    std::fs::write(&path, page).map_err(io_error("cannot write a man page", &path))?;
    writeln!(out, "{}", path.display()).map_err(CliError::output)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, dir, &format!("{name}-{}", sub.get_name()), out)?;
    }
    Ok(())
}

/// Writes the completion script for `args.shell` to `out`.
pub fn run_completions(args: &CompletionsArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let mut cmd = command();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "karajo", &mut script);
    out.write_all(&script).map_err(CliError::output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_names_every_subcommand() {
        let mut out = Vec::new();
        run_man(&ManArgs { dir: None }, &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.starts_with(".ie"), "{}", &page[..80.min(page.len())]);
        assert!(page.contains(".TH karajo 1"), "{page}");
        for sub in ["check", "completions", "man", "import", "hash\\-password"] {
            assert!(page.contains(sub), "{sub} missing from\n{page}");
        }
    }

    #[test]
    fn man_dir_writes_one_page_per_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        run_man(
            &ManArgs {
                dir: Some(dir.path().to_path_buf()),
            },
            &mut out,
        )
        .unwrap();
        for page in ["karajo.1", "karajo-check.1", "karajo-import-crontab.1"] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(text.contains(".TH"), "{page}");
        }
        assert!(!dir.path().join("karajo-help.1").exists());
    }

    #[test]
    fn completions_exist_for_bash_zsh_and_fish() {
        for (shell, marker) in [
            (Shell::Bash, "complete -F _karajo"),
            (Shell::Zsh, "#compdef karajo"),
            (Shell::Fish, "complete -c karajo"),
        ] {
            let mut out = Vec::new();
            run_completions(&CompletionsArgs { shell }, &mut out).unwrap();
            let script = String::from_utf8(out).unwrap();
            assert!(script.contains(marker), "{shell:?}: {script}");
            assert!(script.contains("hash-password"), "{shell:?}");
        }
    }
}
