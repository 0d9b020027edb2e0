//! `karajo job ...`, `karajo job-http ...` and `karajo monitor ...`: calls to a running
//! server through the typed [`Client`], printed for a human (a job or a monitor: id,
//! name, status, times, logs; a log: its decoded content) or as JSON with `--json`. No
//! job logic here.

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};
use jiff::Timestamp;
use serde::Serialize;

use super::CliError;
use crate::client::{
    Client, ClientOptions, DEFAULT_SERVER_URL, JobExec, JobHttp, LogSummary, Monitor,
};

/// How to reach the server and how to print.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "KARAJO_SERVER", default_value = DEFAULT_SERVER_URL)]
    pub server: String,

    /// The server's global secret (signed calls: run, pause, resume, cancel).
    #[arg(long, env = "KARAJO_SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// Longest time the call may take (Go duration: `10s`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Log in as this web UI user to read (the password from KARAJO_PASSWORD, or asked
    /// for on the terminal); without it, reads are signed with the secret when given.
    #[arg(long, env = "KARAJO_USER")]
    pub user: Option<String>,

    /// Accept any TLS certificate.
    #[arg(long)]
    pub insecure: bool,

    /// Print the server's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A `--param NAME=VALUE`.
fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{text:?}: give NAME=VALUE")),
    }
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = crate::config::duration::parse(text).map_err(|e| e.to_string())?;
    Duration::try_from(d).map_err(|_| format!("{text}: must not be negative"))
}

impl ServerArgs {
    /// A client for a read: logged in with `--user` when given.
    pub(super) async fn reader(&self) -> Result<Client, CliError> {
        let client = self.client(false)?;
        let Some(user) = &self.user else {
            return Ok(client);
        };
        let password = match std::env::var("KARAJO_PASSWORD") {
            Ok(password) if !password.is_empty() => password,
            _ => super::password::ask(&format!("Password of {user}: "))?,
        };
        Ok(client.login(user, &password).await?)
    }

    pub(super) fn client(&self, signed: bool) -> Result<Client, CliError> {
        let secret = match (&self.secret, signed) {
            (Some(secret), _) => secret.clone(),
            (None, false) => String::new(),
            (None, true) => {
                return Err(CliError::Usage(
                    "this call is signed: give --secret or set KARAJO_SECRET".into(),
                ));
            }
        };
        Ok(Client::new(ClientOptions {
            server_url: self.server.clone(),
            secret,
            timeout: (!self.timeout.is_zero()).then_some(self.timeout),
            headers: Vec::new(),
            allow_insecure: self.insecure,
        })?)
    }
}

/// `karajo job ...`: command jobs.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// List the command jobs.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show a command job.
    Get {
        /// The job id (`hello_world` for `[job "Hello World"]`).
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Run a job now: by id (signed with the global secret), or through its web hook
    /// when given its path starting with `/` (hmac-sha256 with the given secret).
    Run {
        /// The job id (`hello`), or its web hook `path` (`/hello`).
        target: String,
        /// A run parameter the job declares (`param = NAME`), as NAME=VALUE; repeatable.
        /// Values reach the commands as KARAJO_PARAM_NAME, never on a command line.
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Pause a job: timers and web hooks stop starting it.
    Pause {
        /// The job id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Resume a paused job.
    Resume {
        /// The job id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Cancel a job's run.
    Cancel {
        /// The job id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print a run's log.
    Log {
        /// The job id.
        id: String,
        /// The run's counter; the newest log when absent.
        counter: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `karajo job-http ...`: HTTP jobs.
#[derive(Debug, Subcommand)]
pub enum JobHttpCommand {
    /// Show an HTTP job.
    Get {
        /// The job id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Pause an HTTP job.
    Pause {
        /// The job id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Resume a paused HTTP job.
    Resume {
        /// The job id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print a run's log.
    Log {
        /// The job id.
        id: String,
        /// The run's counter; the newest log when absent.
        counter: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `karajo monitor ...`: heartbeat monitors.
#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// List the monitors.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show a monitor.
    Get {
        /// The monitor id (`backup_db` for `[monitor "Backup DB"]`).
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Pause a monitor: no alarms while paused.
    Pause {
        /// The monitor id.
        id: String,
        /// Until the next success (`ping`), the resume call (`resume`) or an RFC 3339
        /// time; the monitor's `manual_resume` decides when absent.
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Resume a paused monitor.
    Resume {
        /// The monitor id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Runs a `karajo monitor` subcommand, printing to `out`.
pub async fn run_monitor(command: &MonitorCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let (monitor, json) = match command {
        MonitorCommand::List { server } => {
            let env = server.reader().await?.env().await?;
            if server.json {
                return print_json(out, &env.monitors);
            }
            let mut text = String::new();
            for m in env.monitors.values() {
                text.push_str(&format!(
                    "{:<24} {:<7} last {:<24} due {}\n",
                    m.id,
                    m.status,
                    show_time(m.last_ping),
                    show_time(m.next_due)
                ));
            }
            return write_all(out, text.as_bytes());
        }
        MonitorCommand::Get { id, server } => {
            (server.reader().await?.monitor(id).await?, server.json)
        }
        MonitorCommand::Pause { id, until, server } => (
            server
                .client(true)?
                .monitor_pause(id, until.as_deref())
                .await?,
            server.json,
        ),
        MonitorCommand::Resume { id, server } => {
            (server.client(true)?.monitor_resume(id).await?, server.json)
        }
    };
    if json {
        print_json(out, &monitor)
    } else {
        write_all(out, format_monitor(&monitor).as_bytes())
    }
}

/// A monitor for a human.
pub fn format_monitor(m: &Monitor) -> String {
    let mut lines = vec![
        field("id", &m.id),
        field("name", &m.name),
        field("status", &m.status),
        field("since", &show_time(m.since)),
        field("pinged", &show_time(m.last_ping)),
        field("due", &show_time(m.next_due)),
    ];
    if let Some(reason) = &m.down_reason {
        lines.push(field("down", reason));
    }
    if !m.paused_until.is_empty() {
        lines.push(field("until", &m.paused_until));
    }
    lines.push(field("path", &m.path));
    lines.push(format_logs(&m.logs));
    lines.concat()
}

/// Runs a `karajo job` subcommand, printing to `out`.
pub async fn run_job(command: &JobCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        JobCommand::List { server } => {
            let env = server.reader().await?.env().await?;
            if server.json {
                return print_json(out, &env.jobs);
            }
            let mut text = String::new();
            for job in env.jobs.values() {
                text.push_str(&format!(
                    "{:<24} {:<9} last {:<24} next {}\n",
                    job.id,
                    or_dash(&job.status),
                    show_time(job.last_run),
                    show_time(job.next_run)
                ));
            }
            write_all(out, text.as_bytes())
        }
        JobCommand::Get { id, server } => {
            let env = server.reader().await?.env().await?;
            let job = env
                .job_exec(id)
                .ok_or_else(|| CliError::Usage(format!("no command job has the id {id:?}")))?;
            print_job_exec(out, job, server.json)
        }
        JobCommand::Run {
            target,
            params,
            server,
        } => {
            let client = server.client(true)?;
            let job = if target.starts_with('/') {
                client.job_exec_run_with(target, params).await?
            } else {
                client.job_exec_run_id(target, params).await?
            };
            print_job_exec(out, &job, server.json)
        }
        JobCommand::Pause { id, server } => {
            let job = server.client(true)?.job_exec_pause(id).await?;
            print_job_exec(out, &job, server.json)
        }
        JobCommand::Resume { id, server } => {
            let job = server.client(true)?.job_exec_resume(id).await?;
            print_job_exec(out, &job, server.json)
        }
        JobCommand::Cancel { id, server } => {
            let job = server.client(true)?.job_exec_cancel(id).await?;
            print_job_exec(out, &job, server.json)
        }
        JobCommand::Log {
            id,
            counter,
            server,
        } => {
            let client = server.reader().await?;
            let counter = match counter {
                Some(n) => *n,
                None => {
                    let env = client.env().await?;
                    let job = env.job_exec(id).ok_or_else(|| {
                        CliError::Usage(format!("no command job has the id {id:?}"))
                    })?;
                    newest(id, &job.logs)?
                }
            };
            let log = client.job_exec_log(id, counter).await?;
            if server.json {
                print_json(out, &log)
            } else {
                write_all(out, &log.content)
            }
        }
    }
}

/// Runs a `karajo job-http` subcommand, printing to `out`.
pub async fn run_job_http(command: &JobHttpCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        JobHttpCommand::Get { id, server } => {
            let job = server.reader().await?.job_http(id).await?;
            print_job_http(out, &job, server.json)
        }
        JobHttpCommand::Pause { id, server } => {
            let job = server.client(true)?.job_http_pause(id).await?;
            print_job_http(out, &job, server.json)
        }
        JobHttpCommand::Resume { id, server } => {
            let job = server.client(true)?.job_http_resume(id).await?;
            print_job_http(out, &job, server.json)
        }
        JobHttpCommand::Log {
            id,
            counter,
            server,
        } => {
            let client = server.reader().await?;
            let counter = match counter {
                Some(n) => *n,
                None => newest(id, &client.job_http(id).await?.logs)?,
            };
            let log = client.job_http_log(id, counter).await?;
            if server.json {
                print_json(out, &log)
            } else {
                write_all(out, &log.content)
            }
        }
    }
}

fn newest(id: &str, logs: &[LogSummary]) -> Result<u64, CliError> {
    logs.iter()
        .map(|log| log.counter)
        .max()
        .ok_or_else(|| CliError::Usage(format!("job {id:?} has no logs")))
}

pub(super) fn write_all(out: &mut dyn Write, bytes: &[u8]) -> Result<(), CliError> {
    out.write_all(bytes).map_err(CliError::output)
}

pub(super) fn print_json<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Io {
        what: "cannot write JSON",
        source: std::io::Error::other(e),
    })?;
    writeln!(out, "{text}").map_err(CliError::output)
}

fn print_job_exec(out: &mut dyn Write, job: &JobExec, json: bool) -> Result<(), CliError> {
    if json {
        print_json(out, job)
    } else {
        write_all(out, format_job_exec(job).as_bytes())
    }
}

fn print_job_http(out: &mut dyn Write, job: &JobHttp, json: bool) -> Result<(), CliError> {
    if json {
        print_json(out, job)
    } else {
        write_all(out, format_job_http(job).as_bytes())
    }
}

/// A command job for a human.
pub fn format_job_exec(job: &JobExec) -> String {
    let mut lines = vec![
        field("id", &job.id),
        field("name", &job.name),
        field("status", or_dash(&job.status)),
        field("last run", &show_time(job.last_run)),
        field("next run", &show_time(job.next_run)),
    ];
    if !job.schedule.is_empty() {
        lines.push(field("schedule", &job.schedule));
    }
    if !job.interval.is_zero() {
        lines.push(field("interval", &super::short_duration(job.interval)));
    }
    if !job.path.is_empty() {
        lines.push(field(
            "web hook",
            &format!("{} ({})", job.path, job.auth_kind),
        ));
    }
    if !job.hook_events.is_empty() || !job.hook_refs.is_empty() {
        let any = |list: &[String]| match list {
            [] => "any".to_string(),
            list => list.join(", "),
        };
        lines.push(field(
            "rules",
            &format!(
                "events {}; refs {}",
                any(&job.hook_events),
                any(&job.hook_refs)
            ),
        ));
    }
    if !job.params.is_empty() {
        let params: Vec<String> = job
            .params
            .iter()
            .map(|p| match &p.default {
                Some(d) => format!("{}={d}", p.name),
                None => format!("{} (required)", p.name),
            })
            .collect();
        lines.push(field("params", &params.join(", ")));
    }
    lines.push(format_logs(&job.logs));
    lines.concat()
}

/// An HTTP job for a human.
pub fn format_job_http(job: &JobHttp) -> String {
    let mut lines = vec![
        field("id", &job.id),
        field("name", &job.name),
        field("status", or_dash(&job.status)),
        field("last run", &show_time(job.last_run)),
        field("next run", &show_time(job.next_run)),
        field("request", &format!("{} {}", job.http_method, job.http_url)),
    ];
    if !job.schedule.is_empty() {
        lines.push(field("schedule", &job.schedule));
    }
    if !job.interval.is_zero() {
        lines.push(field("interval", &super::short_duration(job.interval)));
    }
    lines.push(format_logs(&job.logs));
    lines.concat()
}

pub(super) fn format_logs(logs: &[LogSummary]) -> String {
    if logs.is_empty() {
        return field("logs", "none");
    }
    let mut text = "logs:\n".to_string();
    for log in logs {
        text.push_str(&format!(
            "  #{:<5} {:<9} {}\n",
            log.counter,
            or_dash(&log.status),
            log.name
        ));
    }
    text
}

pub(super) fn field(name: &str, value: &str) -> String {
    format!("{:<10}{value}\n", format!("{name}:"))
}

pub(super) fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// `2023-01-09 00:00:00 UTC`, or `never`.
pub(super) fn show_time(at: Option<Timestamp>) -> String {
    match at {
        Some(t) => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => "never".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobExec {
        serde_json::from_str(
            r#"{"path":"/hello","auth_kind":"hmac-sha256","header_sign":"X-Karajo-Sign",
            "last_run":"2023-01-09T00:00:00Z","next_run":"0001-01-01T00:00:00Z",
            "id":"hello","name":"Hello","status":"success",
            "logs":[{"job_id":"hello","name":"hello.1.success","status":"success","counter":1},
                    {"job_id":"hello","name":"hello.2","status":"running","counter":2}],
            "interval":300000000000,"log_retention":5}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_job_is_shown_field_by_field() {
        assert_eq!(
            format_job_exec(&job()),
            "\
id:       hello
name:     Hello
status:   success
last run: 2023-01-09 00:00:00 UTC
next run: never
interval: 5m
web hook: /hello (hmac-sha256)
logs:
  #1     success   hello.1.success
  #2     running   hello.2
"
        );
    }

    #[test]
    fn the_newest_log_is_the_highest_counter() {
        assert_eq!(newest("hello", &job().logs).unwrap(), 2);
        assert!(newest("hello", &[]).is_err());
    }

    #[test]
    fn signed_calls_need_a_secret() {
        let args = ServerArgs {
            server: DEFAULT_SERVER_URL.into(),
            secret: None,
            timeout: Duration::from_secs(1),
            user: None,
            insecure: false,
            json: false,
        };
        assert!(args.client(false).is_ok());
        let err = args.client(true).unwrap_err();
        assert!(err.to_string().contains("KARAJO_SECRET"), "{err}");
    }
}
