//! `karajo service ...`: the supervised services of a running server through the typed
//! [`Client`](crate::client::Client): list them, show one (with its instance history
//! on request), and the signed controls `enable`, `disable`, `restart`, `run-once` and
//! `signal`, each with an optional `--cas` precondition. A refused precondition prints
//! the service's current `cas` (the whole service with `--json`) before failing, so a
//! script can retry with it. No service logic here.

use std::io::Write;

use clap::{Subcommand, ValueEnum};

use super::CliError;
use super::jobs::{ServerArgs, field, format_logs, or_dash, print_json, show_time, write_all};
use crate::client::{ClientError, Service, ServiceHistoryEntry};

/// `karajo service ...`: supervised services.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// List the services.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show a service.
    Get {
        /// The service id (`web_app` for `[service "Web App"]`).
        id: String,
        /// Also show its ended instances, newest first.
        #[arg(long)]
        history: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Let a service run (it starts unless it runs already).
    Enable {
        /// The service id.
        id: String,
        /// Only if the service's `cas` is still this.
        #[arg(long)]
        cas: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Stop a service and keep it stopped.
    Disable {
        /// The service id.
        id: String,
        /// Only if the service's `cas` is still this.
        #[arg(long)]
        cas: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Start a fresh instance now (also out of `fatal`).
    Restart {
        /// The service id.
        id: String,
        /// Only if the service's `cas` is still this.
        #[arg(long)]
        cas: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// `on`: run one instance and do not restart it; `off`: clear that flag.
    #[command(name = "run-once")]
    RunOnce {
        /// The service id.
        id: String,
        /// `on` or `off`.
        switch: Switch,
        /// Only if the service's `cas` is still this.
        #[arg(long)]
        cas: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Send a signal to the live instance's process group.
    Signal {
        /// The service id.
        id: String,
        /// `HUP`, `USR1`, `USR2`, `INT`, `TERM`, `QUIT` or `KILL`.
        signal: String,
        /// Only if the service's `cas` is still this.
        #[arg(long)]
        cas: Option<u64>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `on` or `off` for `run-once`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// `on=1`.
    On,
    /// `on=0`.
    Off,
}

/// Runs a `karajo service` subcommand, printing to `out`.
pub async fn run_service(command: &ServiceCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let (server, answer) = match command {
        ServiceCommand::List { server } => {
            let env = server.reader().await?.env().await?;
            if server.json {
                return print_json(out, &env.services);
            }
            let mut text = String::new();
            for s in env.services.values() {
                let pid = s.pid.map_or_else(|| "-".to_string(), |p| p.to_string());
                text.push_str(&format!(
                    "{:<24} {:<9} cas {:<6} pid {:<8} {}\n",
                    s.id,
                    s.status,
                    s.cas,
                    pid,
                    or_dash(&s.instance)
                ));
            }
            return write_all(out, text.as_bytes());
        }
        ServiceCommand::Get {
            id,
            history,
            server,
        } => {
            let client = server.reader().await?;
            let answer = if *history {
                client.service_history(id).await
            } else {
                client.service(id).await
            };
            (server, answer)
        }
        ServiceCommand::Enable { id, cas, server } => {
            let answer = server.client(true)?.service_enable(id, *cas).await;
            (server, answer)
        }
        ServiceCommand::Disable { id, cas, server } => {
            let answer = server.client(true)?.service_disable(id, *cas).await;
            (server, answer)
        }
        ServiceCommand::Restart { id, cas, server } => {
            let answer = server.client(true)?.service_restart(id, *cas).await;
            (server, answer)
        }
        ServiceCommand::RunOnce {
            id,
            switch,
            cas,
            server,
        } => {
            let on = *switch == Switch::On;
            let answer = server.client(true)?.service_run_once(id, on, *cas).await;
            (server, answer)
        }
        ServiceCommand::Signal {
            id,
            signal,
            cas,
            server,
        } => {
            let answer = server.client(true)?.service_signal(id, signal, *cas).await;
            (server, answer)
        }
    };
    match answer {
        Ok(service) if server.json => print_json(out, &service),
        Ok(service) => write_all(out, format_service(&service).as_bytes()),
        Err(err @ ClientError::CasMismatch { .. }) => {
            if let ClientError::CasMismatch { current, .. } = &err {
                if server.json {
                    print_json(out, current)?;
                } else {
                    let line = format!("current cas: {} ({})\n", current.cas, current.status);
                    write_all(out, line.as_bytes())?;
                }
            }
            Err(err.into())
        }
        Err(err) => Err(err.into()),
    }
}

/// A service for a human.
pub fn format_service(s: &Service) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut lines = vec![
        field("id", &s.id),
        field("name", &s.name),
        field("status", &s.status),
        field("enabled", yes_no(s.enabled)),
    ];
    if s.run_once {
        lines.push(field("run once", "yes"));
    }
    lines.push(field("cas", &s.cas.to_string()));
    lines.push(field("command", &s.command));
    if !s.instance.is_empty() {
        let pid = s.pid.map(|p| format!(" pid {p}")).unwrap_or_default();
        lines.push(field("instance", &format!("{}{pid}", s.instance)));
        lines.push(field("started", &show_time(s.started)));
        lines.push(field("ready", &show_time(s.ready_at)));
    }
    if s.last_seen.is_some() {
        lines.push(field("pinged", &show_time(s.last_seen)));
    }
    if s.next_start.is_some() {
        lines.push(field("next", &show_time(s.next_start)));
    }
    if !s.stop_target.is_empty() {
        lines.push(field("then", &s.stop_target));
    }
    if s.failures > 0 {
        lines.push(field("failures", &s.failures.to_string()));
    }
    if let Some(exit) = &s.last_exit {
        let how = ending(exit.exit_code, &exit.signal);
        let text = format!("{how} ({}) at {}", exit.reason, show_time(Some(exit.at)));
        lines.push(field("ended", &text));
    }
    if !s.status_text.is_empty() {
        lines.push(field("says", &s.status_text));
    }
    if !s.keyvalue.is_empty() {
        let pairs: Vec<String> = s.keyvalue.iter().map(|(k, v)| format!("{k}={v}")).collect();
        lines.push(field("keyvalue", &pairs.join(" ")));
    }
    lines.push(format_logs(&s.logs));
    if let Some(history) = &s.history {
        lines.push(format_history(history));
    }
    lines.concat()
}

/// `exit 1`, `signal KILL` or `exit unknown`.
fn ending(exit_code: Option<i32>, signal: &str) -> String {
    match (exit_code, signal) {
        (_, signal) if !signal.is_empty() => format!("signal {signal}"),
        (Some(code), _) => format!("exit {code}"),
        (None, _) => "exit unknown".to_string(),
    }
}

fn format_history(history: &[ServiceHistoryEntry]) -> String {
    if history.is_empty() {
        return field("history", "none");
    }
    let mut text = "history:\n".to_string();
    for h in history {
        let counters: Vec<String> = h.counters.iter().map(|c| format!("#{c}")).collect();
        text.push_str(&format!(
            "  {} {:>8} {:<13} {:<12} {}\n",
            show_time(Some(h.started)),
            super::short_duration(h.duration),
            h.reason,
            ending(h.exit_code, &h.signal),
            counters.join(",")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Service {
        serde_json::from_str(
            r#"{"id":"api","name":"API","kind":"service","status":"running","enabled":true,
            "cas":42,"command":"exec ./api","instance":"0193","pid":4242,
            "started":"2026-11-22T10:00:00Z","ready_at":"2026-11-22T10:00:01Z",
            "failures":1,"last_exit":{"exit_code":1,"reason":"exited","at":"2026-11-22T09:59:59Z"},
            "keyvalue":{"port":8080},"counter":18,
            "logs":[{"job_id":"api","name":"api.18","status":"running","counter":18}],
            "history":[{"instance":"0192","started":"2026-11-22T09:00:00Z",
              "stopped":"2026-11-22T09:07:13Z","exit_code":null,"signal":"KILL",
              "reason":"exited","clean":false,"counters":[16,17],"duration":433000000000}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_service_is_shown_field_by_field() {
        assert_eq!(
            format_service(&service()),
            "\
id:       api
name:     API
status:   running
enabled:  yes
cas:      42
command:  exec ./api
instance: 0193 pid 4242
started:  2026-11-22 10:00:00 UTC
ready:    2026-11-22 10:00:01 UTC
failures: 1
ended:    exit 1 (exited) at 2026-11-22 09:59:59 UTC
keyvalue: port=8080
logs:
  #18    running   api.18
history:
  2026-11-22 09:00:00 UTC    7m13s exited        signal KILL  #16,#17
"
        );
    }
}
