//! The `config` room: everything karajo knows before it starts. It reads the
//! git-config style INI files ([`ini`]), Go durations ([`duration`]), and loads the
//! main file, `user.conf`, `job.d/` and `job_http.d/` into the typed [`Config`]
//! ([`model`]): jobs, heartbeat monitors, `[watchtower]`, supervised services,
//! notifications and users, collecting every error and warning as a [`Diagnostic`] so
//! that `karajo check` can print them all. Pure and synchronous: it only reads files.

mod cluster;
pub mod duration;
mod fields;
pub mod hook_rules;
pub mod ini;
mod jobs;
mod load;
pub mod model;
mod monitors;
pub mod net;
pub mod notif;
pub mod params;
pub mod policies;
mod services;
mod settings;

#[cfg(test)]
mod tests;

pub use jobs::{clean_path, no_command_message};
pub use load::load_cluster;
pub use load::{defaults, load, load_with};
pub use model::{
    Cadence, Config, ConfigErrors, Diagnostic, ExecSpec, HttpMethod, HttpRequestType, HttpSpec,
    IpNet, JobCommon, JobKindSpec, JobSpec, MonitorAuth, MonitorOrigin, MonitorRules, MonitorSpec,
    NotifConfig, OnExit, ReadyRule, RestartPolicy, ServicePolicy, ServiceSignal, ServiceSpec,
    UserConfig, WatchtowerConfig,
};
pub use notif::{
    EmailNotif, NotifKind, PushoverNotif, SmtpSecurity, SmtpServer, TargetError, WebhookNotif,
};
pub use services::{SHUTDOWN_NOTIFICATION_WAIT, ShutdownBudget};
