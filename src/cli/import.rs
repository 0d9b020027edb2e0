//! `karajo import crontab [FILE]`: brings an existing crontab along. This module owns
//! the command's arguments and its IO: reading the crontab (a file, or standard input
//! for `-` or no FILE), choosing the format (`/etc/crontab` and `/etc/cron.d/*` are the
//! system format with a user field), the default time zone (the system's, as cron used)
//! and where the result goes (`$dir_base/etc/karajo/job.d/<name>.conf` of the
//! configuration, or `--output`), and never overwriting a file without `--force`. The
//! translation itself is the pure [`crontab`] module.

pub mod crontab;

use std::io::{Read as _, Write};
use std::path::{Path, PathBuf};

use self::crontab::{CrontabFormat, ImportOptions, translate};
use super::CliError;

/// What `karajo import` imports.
#[derive(Debug, clap::Subcommand)]
pub enum ImportCommand {
    /// Translate a crontab into a job.d/*.conf file, one `[job]` per cron line.
    Crontab(CrontabArgs),
}

/// The format option of `import crontab`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// System format for /etc/crontab and /etc/cron.d/*, user format otherwise.
    Auto,
    /// A user's crontab (`crontab -l`): five fields, then the command.
    User,
    /// /etc/crontab and /etc/cron.d/*: five fields, the user, then the command.
    System,
}

/// The arguments of `karajo import crontab`.
#[derive(Debug, clap::Args)]
pub struct CrontabArgs {
    /// The crontab to read; `-` or none reads standard input (`crontab -l | karajo
    /// import crontab`).
    pub file: Option<PathBuf>,
    /// The crontab's format.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,
    /// The time zone cron read the schedules in (default: the system's); a CRON_TZ
    /// line in the crontab overrides it for the lines after it.
    #[arg(long, value_name = "AREA/CITY")]
    pub timezone: Option<String>,
    /// The file to write (default: `$dir_base/etc/karajo/job.d/<name>.conf` of the
    /// configuration given with --config; `<name>` is `crontab` for standard input,
    /// the file's name when it starts with `cron` or ends with `crontab`, else
    /// `cron-<file name>`).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the job.d file on standard output instead of writing it.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace the output file when it exists.
    #[arg(long)]
    pub force: bool,
}

/// Runs `karajo import`; `config` is the `--config` file, read only for its
/// `dir_base` when no `--output` is given.
pub fn run(command: &ImportCommand, config: &Path, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        ImportCommand::Crontab(args) => run_crontab(args, config, out),
    }
}

fn run_crontab(args: &CrontabArgs, config: &Path, out: &mut dyn Write) -> Result<(), CliError> {
    let file = args.file.as_deref().filter(|f| *f != Path::new("-"));
    let (text, source) = match file {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| CliError::Io {
                what: "cannot read the crontab",
                source: std::io::Error::other(format!("{}: {source}", path.display())),
            })?;
            (
                String::from_utf8_lossy(&bytes).into_owned(),
                path.display().to_string(),
            )
        }
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| CliError::Io {
                    what: "cannot read the crontab from standard input",
                    source,
                })?;
            (text, "standard input".to_string())
        }
    };
    let format = match args.format {
        FormatArg::User => CrontabFormat::User,
        FormatArg::System => CrontabFormat::System,
        FormatArg::Auto => match file {
            Some(path) if is_system_crontab(path) => CrontabFormat::System,
            _ => CrontabFormat::User,
        },
    };
    let timezone = match &args.timezone {
        Some(zone) => {
            jiff::tz::TimeZone::get(zone).map_err(|e| {
                CliError::Usage(format!("--timezone {zone:?} is not a time zone: {e}"))
            })?;
            Some(zone.clone())
        }
        None => jiff::tz::TimeZone::try_system()
            .ok()
            .and_then(|tz| tz.iana_name().map(str::to_string)),
    };
    let name = output_name(file);
    let options = ImportOptions {
        format,
        prefix: name.clone(),
        source,
        timezone,
    };
    let translation = translate(&text, &options);
    if args.dry_run {
        return out
            .write_all(translation.text.as_bytes())
            .map_err(CliError::output);
    }
    let path = match &args.output {
        Some(path) => path.clone(),
        None => job_dir(config)?.join(format!("{name}.conf")),
    };
    if path.exists() && !args.force {
        return Err(CliError::Usage(format!(
            "{} exists; add --force to replace it, or --output FILE, or --dry-run",
            path.display()
        )));
    }
    let io_error = |what: &'static str, place: &Path| {
        let place = place.display().to_string();
        move |source: std::io::Error| CliError::Io {
            what,
            source: std::io::Error::other(format!("{place}: {source}")),
        }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(io_error("cannot create the output directory", parent))?;
    }
    std::fs::write(&path, &translation.text).map_err(io_error("cannot write the jobs", &path))?;
    writeln!(
        out,
        "{}: {} job{}, {} line{} not imported (see the comments); check it with `karajo check`",
        path.display(),
        translation.jobs,
        if translation.jobs == 1 { "" } else { "s" },
        translation.untranslated,
        if translation.untranslated == 1 {
            ""
        } else {
            "s"
        },
    )
    .map_err(CliError::output)
}

/// `/etc/crontab` and the files of `/etc/cron.d/` have a user field.
fn is_system_crontab(path: &Path) -> bool {
    path == Path::new("/etc/crontab")
        || path
            .parent()
            .is_some_and(|dir| dir.file_name().is_some_and(|n| n == "cron.d"))
}

/// `crontab` for standard input, the file name when it starts with `cron` or ends
/// with `crontab`, `cron-<name>` otherwise,
/// with only letters, digits, `-` and `_`.
fn output_name(file: Option<&Path>) -> String {
    let stem = file
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "crontab".to_string());
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if stem.starts_with("cron") || stem.ends_with("crontab") {
        stem
    } else {
        format!("cron-{stem}")
    }
}

/// `$dir_base/etc/karajo/job.d` of the configuration file, read with karajo's INI
/// reader (`[karajo] dir_base`, default `/`; relative to the current directory, as
/// the daemon reads it).
fn job_dir(config: &Path) -> Result<PathBuf, CliError> {
    let text = std::fs::read_to_string(config).map_err(|source| {
        CliError::Usage(format!(
            "cannot read {} to find its dir_base: {source}; give --output FILE or --config FILE",
            config.display()
        ))
    })?;
    let doc = crate::config::ini::parse(&text).map_err(|e| {
        CliError::Usage(format!(
            "{}:{}: {}; give --output FILE",
            config.display(),
            e.line,
            e.kind
        ))
    })?;
    let dir_base = doc
        .sections
        .iter()
        .filter(|s| s.name == "karajo" && s.sub.is_none())
        .flat_map(|s| &s.vars)
        .filter(|v| v.key == "dir_base" && !v.value.is_empty())
        .map(|v| v.value.clone())
        .next_back()
        .unwrap_or_else(|| "/".to_string());
    Ok(Path::new(&dir_base).join("etc/karajo/job.d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_crontabs_are_recognised_by_their_place() {
        assert!(is_system_crontab(Path::new("/etc/crontab")));
        assert!(is_system_crontab(Path::new("/etc/cron.d/php")));
        assert!(is_system_crontab(Path::new("some/cron.d/x")));
        assert!(!is_system_crontab(Path::new("/home/me/crontab")));
        assert!(!is_system_crontab(Path::new("crontab.txt")));
    }

    #[test]
    fn output_names_follow_the_input() {
        assert_eq!(output_name(None), "crontab");
        assert_eq!(output_name(Some(Path::new("/etc/crontab"))), "crontab");
        assert_eq!(output_name(Some(Path::new("/etc/cron.d/php"))), "cron-php");
        assert_eq!(
            output_name(Some(Path::new("/etc/cron.d/e2scrub_all"))),
            "cron-e2scrub_all"
        );
        assert_eq!(
            output_name(Some(Path::new("my tab.txt"))),
            "cron-my-tab-txt"
        );
    }

    #[test]
    fn the_job_dir_comes_from_dir_base() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("karajo.conf");
        std::fs::write(&conf, "[karajo]\ndir_base = /srv/k # here\n").unwrap();
        assert_eq!(
            job_dir(&conf).unwrap(),
            PathBuf::from("/srv/k/etc/karajo/job.d")
        );
        std::fs::write(&conf, "[karajo]\nname = x\n").unwrap();
        assert_eq!(job_dir(&conf).unwrap(), PathBuf::from("/etc/karajo/job.d"));
        let missing = job_dir(&dir.path().join("nope.conf")).unwrap_err();
        assert!(missing.to_string().contains("nope.conf"), "{missing}");
    }
}
