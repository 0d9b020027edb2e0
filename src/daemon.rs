//! The composition root: loads the configuration, restores the jobs' state from disk,
//! starts the notifier, the scheduler and the HTTP server, and ties their lifecycle to signals
//! (SIGTERM/SIGINT stop, SIGHUP reloads). Tests start it in-process on a temporary
//! `dir_base` and `127.0.0.1:0`. The HTTP server's accept loop and its limits are in
//! `serve.rs`; the open-file limit it is sized from, in `nofile.rs`; the exclusive lock
//! on `dir_base` taken before anything touches the state, in `lock.rs`; the warning
//! about running as root, in `root.rs`.

mod cluster;
pub(crate) mod lock;
mod nofile;
mod root;
mod serve;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::ReplayGuard;
use crate::auth::replay::{DEFAULT_DELIVERY_TTL, DEFAULT_REPLAY_CAPACITY};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{self, Config, ConfigErrors, Diagnostic, JobKindSpec};
use crate::exec::JobFn;
use crate::job::JobKind;
use crate::metrics::Metrics;
use crate::notify::{Notifier, NotifierOptions};
use crate::scheduler::{self, JobDef, JobDefKind, SchedulerHandle, SchedulerOptions};
use crate::store::monitor_files::AliveMark;
use crate::store::{EventLimits, EventLog, Layout, StateFile};
use crate::web::{self, AppState};

/// How long processes left running by a killed karajo get between SIGTERM and SIGKILL.
const LEFTOVER_GRACE: Duration = Duration::from_secs(5);

/// How long the HTTP server may take to finish open requests at shutdown.
const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the daemon could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration has errors; each names its file and line.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// A file or directory under `dir_base` could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Another karajo holds the lock on `dir_base`, or the lock file cannot be used.
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    /// Cluster mode could not start: NATS unreachable, the node's name held by a live
    /// node, the buckets missing or different.
    #[error("{0}")]
    Cluster(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// Builder of a karajo daemon.
#[derive(Clone)]
pub struct Daemon {
    config_file: PathBuf,
    functions: HashMap<String, JobFn>,
    clock: SharedClock,
    listen_address: Option<String>,
    /// The signatures accepted or sent; shared by the HTTP server and the HTTP jobs.
    replay: Arc<ReplayGuard>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("config_file", &self.config_file)
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Daemon {
    /// A daemon for the configuration file `config_file` (`karajo.conf`).
    pub fn new(config_file: impl Into<PathBuf>) -> Self {
        Self {
            config_file: config_file.into(),
            functions: HashMap::new(),
            clock: Arc::new(SystemClock),
            listen_address: None,
            replay: Arc::new(ReplayGuard::new(
                DEFAULT_REPLAY_CAPACITY,
                DEFAULT_DELIVERY_TTL,
            )),
        }
    }

    /// Makes the `[job "name"]` of the configuration run `function` instead of shell
    /// commands. The section gives its schedule, path, secret and other settings.
    pub fn job_fn(mut self, name: impl Into<String>, function: JobFn) -> Self {
        self.functions.insert(name.into(), function);
        self
    }

    /// Uses `clock` instead of the system clock (tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Listens on `address` instead of the configured `listen_address` (tests use
    /// `127.0.0.1:0`).
    pub fn listen_address(mut self, address: impl Into<String>) -> Self {
        self.listen_address = Some(address.into());
        self
    }

    /// Loads the configuration and checks what the daemon would refuse at start-up.
    /// HTTP jobs whose `http_url` starts with `/` go to `listen_address`.
    pub fn load_config(&self) -> Result<(Config, Vec<JobDef>), DaemonError> {
        let config =
            config::load_with(&self.config_file, &|name| self.functions.contains_key(name))?;
        let defs = job_defs(
            &config,
            &self.functions,
            &config.listen_address,
            &self.replay,
        )?;
        Ok((config, defs))
    }

    /// As [`Daemon::load_config`], with HTTP jobs' `/...` URLs going to `own_address`
    /// (the address actually bound).
    fn load_config_at(&self, own_address: &str) -> Result<(Config, Vec<JobDef>), DaemonError> {
        let config =
            config::load_with(&self.config_file, &|name| self.functions.contains_key(name))?;
        let defs = job_defs(&config, &self.functions, own_address, &self.replay)?;
        Ok((config, defs))
    }

    /// Starts the scheduler and the HTTP server. Timers start only once the server
    /// listens.
    pub async fn start(self) -> Result<RunningDaemon, DaemonError> {
        let config =
            config::load_with(&self.config_file, &|name| self.functions.contains_key(name))?;
        let nofile = nofile::raise_nofile_limit();
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        if let Some(warning) = root::root_warning(&config, rustix::process::geteuid().is_root()) {
            tracing::warn!("{warning}");
        }
        if config.secret_generated {
            // The original prints the generated secret; no secret reaches a log here.
            tracing::warn!(
                "!!! WARNING: [karajo] secret is empty: a random one was generated for this run and is not shown; set `secret` in {} to sign API calls and web hooks",
                config.file.display()
            );
        }
        let layout = Layout::new(&config.dir_base);
        // Before anything reads or changes what is under dir_base: a second karajo on
        // the same dir_base must not kill the first one's process groups, close its
        // logs as failed or write the state file.
        let dir_lock = lock::acquire(&layout)?;
        tracing::info!(lock_file = %layout.lock_file().display(), "dir_base locked");
        layout
            .ensure_dirs()
            .map_err(io_error("cannot create the directories under dir_base"))?;
        let state = load_state(&layout)?;
        let address = self
            .listen_address
            .clone()
            .unwrap_or_else(|| config.listen_address.clone());
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| DaemonError::Listen {
                address: address.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(io_error("listen address"))?;
        let defs = job_defs(
            &config,
            &self.functions,
            &local_addr.to_string(),
            &self.replay,
        )?;

        let joined = cluster::join(
            &config,
            &defs,
            public_url(&config, local_addr),
            self.clock.clone(),
        )
        .await?;
        let restore_layout = layout.clone();
        let cluster_mode = joined.is_some();
        let now = self.clock.now();
        let monitor_specs = config.monitors.clone();
        let pulse_config = config.clone();
        let restored = tokio::task::spawn_blocking(move || {
            // What a killed karajo left running is stopped before its runs are
            // recorded as interrupted.
            let stopped =
                crate::exec::stop_recorded_groups(&restore_layout.group_dir(), LEFTOVER_GRACE);
            if stopped > 0 {
                tracing::warn!(
                    stopped,
                    "stopped process groups left by a karajo that was killed"
                );
            }
            let last_alive = AliveMark::load(&restore_layout.alive_file()).map(|m| m.alive_at);
            let jobs = scheduler::restore_jobs(&restore_layout, defs, &state, now, cluster_mode)?;
            let mut monitors = scheduler::restore_monitors(&restore_layout, &monitor_specs, now)?;
            let (pulses, dynamic) = scheduler::restore_pulses(&restore_layout, &pulse_config, now)?;
            monitors.extend(dynamic);
            scheduler::sweep_removed_services(&restore_layout, &pulse_config);
            let services =
                scheduler::restore_services(&restore_layout, &pulse_config.services, now)?;
            Ok::<_, std::io::Error>((jobs, monitors, pulses, services, state, last_alive))
        })
        .await
        .map_err(|e| DaemonError::Io {
            what: "restoring the jobs".into(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(io_error("cannot restore the jobs' logs"))?;
        let (restored, monitors, pulses, services, state, last_alive) = restored;
        let events = EventLog::spawn(
            layout.event_dir(),
            EventLimits {
                day_max: config.event_day_max,
                retention: config.event_retention,
                ..EventLimits::default()
            },
            self.clock.clone(),
        )
        .await
        .map_err(io_error("cannot open the event log"))?;
        let max_body_size = config.max_body_size;
        let max_connections = config
            .max_connections
            .unwrap_or_else(|| nofile::default_max_connections(nofile));
        tracing::info!(
            max_connections,
            header_read_timeout = ?config.header_read_timeout,
            idle_timeout = ?config.idle_timeout,
            body_read_timeout = ?config.body_read_timeout,
            max_sse_streams = config.max_sse_streams,
            "HTTP server limits"
        );
        let wui = crate::web::pages::WuiState::new(config.max_sse_streams);
        let notifier = Notifier::start(NotifierOptions::new(
            layout.notify_dir(),
            config.notifs.clone(),
            public_url(&config, local_addr),
        ));
        let metrics =
            Arc::new(Metrics::new(Some(notifier.stats_handle())).with_events(events.clone()));
        let (scheduler, scheduler_task) = scheduler::spawn(SchedulerOptions {
            layout: layout.clone(),
            clock: self.clock.clone(),
            config: Arc::new(config),
            jobs: restored,
            state,
            monitors,
            last_alive,
            pulses,
            services,
            service_url: service_url(local_addr),
            events: Some(events.clone()),
            metrics: metrics.clone(),
            notifier: Some(notifier.clone()),
            cluster: joined
                .as_ref()
                .map(|joined| (joined.node.clone(), joined.notices_tx.clone())),
        });
        let cluster_info = joined.as_ref().map(|joined| joined.info.clone());
        let cluster = joined
            .map(|joined| joined.start(scheduler.clone(), layout.clone(), self.clock.clone()));

        let app_state = AppState {
            scheduler: scheduler.clone(),
            layout,
            clock: self.clock.clone(),
            replay: self.replay.clone(),
            bodies: web::body::BodyBudget::for_max_body(max_body_size),
            metrics,
            sessions: Arc::new(crate::auth::session::SessionStore::default()),
            wui,
            env_cache: Arc::default(),
            events: Some(events.clone()),
            usage: Arc::default(),
            cluster: cluster_info,
        };
        let stop_http = CancellationToken::new();
        let app = web::app(app_state);
        let server_task = tokio::spawn(serve::serve(
            listener,
            app,
            scheduler.subscribe(),
            max_connections,
            stop_http.clone(),
            HTTP_SHUTDOWN_GRACE,
        ));
        tracing::info!(address = %local_addr, "listening");
        Ok(RunningDaemon {
            _dir_lock: dir_lock,
            builder: self,
            local_addr,
            scheduler,
            scheduler_task,
            events,
            stop_http,
            server_task,
            notifier,
            cluster,
        })
    }
}

/// The base URL of log links in notifications: `public_url`, or the address the
/// server listens on.
/// How a service instance on this machine reaches karajo: the listen address, with a
/// wildcard host replaced by the loopback of its family.
fn service_url(local_addr: SocketAddr) -> String {
    let ip = match local_addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, local_addr.port()))
}

fn public_url(config: &Config, local_addr: SocketAddr) -> String {
    config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local_addr}"))
}

/// The jobs to schedule: each command job with its registered function, if any, and
/// each HTTP job with its URL resolved against `own_address` when it starts with `/`.
/// A command job with neither commands nor a function is an error, as in the original.
/// HTTP jobs calling another server record the signatures they send in `replay`, so that
/// server cannot replay them to karajo; those calling karajo itself leave them for the
/// receiving route to spend.
pub(crate) fn job_defs(
    config: &Config,
    functions: &HashMap<String, JobFn>,
    own_address: &str,
    replay: &Arc<ReplayGuard>,
) -> Result<Vec<JobDef>, ConfigErrors> {
    let mut errors = Vec::new();
    let mut defs = Vec::with_capacity(config.jobs.len());
    for job in &config.jobs {
        let common = Arc::new(job.common.clone());
        let kind = match &job.kind {
            JobKindSpec::Exec(spec) => {
                let function = functions.get(&common.name).cloned();
                if spec.commands.is_empty() && function.is_none() {
                    errors.push(Diagnostic {
                        file: common.file.clone(),
                        line: common.line,
                        message: config::no_command_message(&common.name),
                    });
                }
                JobDefKind::Exec {
                    spec: Arc::new(spec.clone()),
                    function,
                }
            }
            JobKindSpec::Http(spec) => {
                let url = if spec.http_url.starts_with('/') {
                    format!("http://{own_address}{}", spec.http_url)
                } else {
                    spec.http_url.clone()
                };
                let sent =
                    (!targets_self(&url, own_address)).then(|| crate::exec::SentSignatures {
                        guard: replay.clone(),
                        rules: config.stamp_rules(),
                    });
                JobDefKind::Http {
                    spec: Arc::new(spec.clone()),
                    url,
                    sent,
                }
            }
        };
        defs.push(JobDef { common, kind });
    }
    for name in functions.keys() {
        if !config
            .jobs_of(JobKind::Exec)
            .any(|j| &j.common.name == name)
        {
            errors.push(Diagnostic {
                file: config.file.clone(),
                line: 0,
                message: format!(
                    "a function is registered for job {name:?} but there is no [job {name:?}] section"
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(defs)
    } else {
        Err(ConfigErrors {
            errors,
            warnings: config.warnings.clone(),
        })
    }
}

/// Whether `url` goes to this daemon: `http://` to its own port on a loopback address,
/// `localhost` or the address it listens on.
fn targets_self(url: &str, own_address: &str) -> bool {
    let Ok(own) = own_address.parse::<SocketAddr>() else {
        return false;
    };
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            (host, port.parse::<u16>().ok())
        }
        _ => (host_port, Some(80)),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let is_own_host = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == own.ip() || own.ip().is_unspecified());
    port == Some(own.port()) && is_own_host
}

fn load_state(layout: &Layout) -> Result<StateFile, DaemonError> {
    let path = layout.state_file();
    let (state, warning) = StateFile::load(&path).map_err(|e| DaemonError::Io {
        what: format!("cannot read {}", path.display()),
        source: std::io::Error::other(e.to_string()),
    })?;
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    Ok(state)
}

/// A started daemon.
pub struct RunningDaemon {
    /// Held for the daemon's whole life; released when it is dropped (after
    /// [`RunningDaemon::shutdown`]) or by the kernel when the process dies.
    _dir_lock: lock::DirLock,
    builder: Daemon,
    local_addr: SocketAddr,
    scheduler: SchedulerHandle,
    scheduler_task: JoinHandle<()>,
    events: EventLog,
    stop_http: CancellationToken,
    server_task: JoinHandle<()>,
    notifier: Notifier,
    /// Cluster mode: the agent, and how the node leaves.
    cluster: Option<cluster::Running>,
}

impl std::fmt::Debug for RunningDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningDaemon")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl RunningDaemon {
    /// The address the HTTP server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The scheduler, for callers embedding karajo.
    pub fn scheduler(&self) -> &SchedulerHandle {
        &self.scheduler
    }

    /// The notification queue (its counters, for metrics).
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// The configuration file in use.
    pub fn config_file(&self) -> &Path {
        &self.builder.config_file
    }

    /// Re-reads the configuration. On errors the running configuration stays as it is
    /// and the errors are returned. Running jobs are not disturbed.
    pub async fn reload(&self) -> Result<(), DaemonError> {
        let (config, defs) = self.builder.load_config_at(&self.local_addr.to_string())?;
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let old = self.scheduler.snapshot().config.clone();
        if old.listen_address != config.listen_address
            || old.dir_base != config.dir_base
            || old.max_connections != config.max_connections
            || old.max_sse_streams != config.max_sse_streams
        {
            tracing::warn!(
                "listen_address, dir_base, max_connections and max_sse_streams changes take effect only after a restart"
            );
        }
        self.notifier
            .reload(config.notifs.clone(), public_url(&config, self.local_addr));
        // The job set and the settings are published together, in one snapshot.
        self.scheduler.reload(defs, Arc::new(config)).await;
        tracing::info!("configuration reloaded");
        Ok(())
    }

    /// Stops timers, cancels running jobs and records them as canceled, then stops the
    /// HTTP server.
    pub async fn shutdown(self) {
        self.scheduler.shutdown().await;
        let _ = self.scheduler_task.await;
        // The next start then reads no log whose facts it could know.
        let last = self.scheduler.snapshot();
        let layout = Layout::new(&last.config.dir_base);
        let jobs: Vec<_> = last
            .jobs
            .iter()
            .map(|j| (j.def.kind(), j.id().clone()))
            .collect();
        match tokio::task::spawn_blocking(move || scheduler::refresh_facts_cache(&layout, &jobs))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(%err, "cannot write the log facts cache"),
            Err(err) => tracing::warn!(%err, "cannot write the log facts cache"),
        }
        if let Some(cluster) = self.cluster {
            cluster.leave().await;
        }
        if let Err(err) = self.events.close().await {
            tracing::error!(%err, "cannot close the event log");
        }
        self.notifier.shutdown().await;
        // The server drops what is still open after HTTP_SHUTDOWN_GRACE itself.
        self.stop_http.cancel();
        if let Err(err) = self.server_task.await {
            tracing::error!(%err, "HTTP server task failed");
        }
        tracing::info!("stopped");
    }

    /// Serves until SIGTERM or SIGINT (then shuts down); SIGHUP reloads the
    /// configuration.
    pub async fn serve_until_signalled(self) -> Result<(), DaemonError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(io_error("signal handler"))?;
        let mut int = signal(SignalKind::interrupt()).map_err(io_error("signal handler"))?;
        let mut hup = signal(SignalKind::hangup()).map_err(io_error("signal handler"))?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    if let Err(err) = self.reload().await {
                        tracing::error!("reload refused, keeping the running configuration:\n{err}");
                    }
                }
            }
        }
        tracing::info!("stopping");
        self.shutdown().await;
        Ok(())
    }
}
