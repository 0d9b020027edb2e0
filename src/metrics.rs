//! Operational metrics in the Prometheus text format: runs by job and status, a run
//! duration histogram per job, web hook requests by outcome, and, read from the
//! scheduler's snapshot when rendered, running jobs and queue depth. In cluster mode the
//! `karajo_cluster_*` metrics (cluster spec 11.1) are read from the node's
//! [`ClusterInfo`] when rendered. Counters are plain atomics and one short-held lock per
//! finished run; rendering never blocks a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cluster::status::{ClusterInfo, ClusterStats};
use crate::exec::group_usage::Usage;
use crate::job::{JobKey, RunStatus};
use crate::notify::NotifyStats;
use crate::scheduler::Snapshot;

/// Upper bounds (seconds) of the run duration histogram's buckets.
const DURATION_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];

/// How a web hook request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The run was started or queued.
    Accepted,
    /// Bad or missing signature, or an epoch outside the window.
    Forbidden,
    /// A delivery id or nonce seen before.
    Replayed,
    /// The job is paused.
    Paused,
    /// A run is in progress and another is queued.
    Busy,
    /// No job has this path.
    NotFound,
    /// The body was over `max_body_size`.
    TooLarge,
    /// A verified GitHub or SourceHut delivery the job's rules ignore (202).
    Ignored,
    /// Anything else (shutting down, malformed request).
    Other,
}

impl WebhookOutcome {
    const ALL: [Self; 9] = [
        Self::Accepted,
        Self::Forbidden,
        Self::Replayed,
        Self::Paused,
        Self::Busy,
        Self::NotFound,
        Self::TooLarge,
        Self::Ignored,
        Self::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Forbidden => "forbidden",
            Self::Replayed => "replayed",
            Self::Paused => "paused",
            Self::Busy => "busy",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::Ignored => "ignored",
            Self::Other => "other",
        }
    }

    /// The outcome a web hook response status stands for.
    pub fn from_status(status: u16) -> Self {
        match status {
            200 => Self::Accepted,
            202 => Self::Ignored,
            401 | 403 => Self::Forbidden,
            409 => Self::Replayed,
            412 => Self::Paused,
            429 => Self::Busy,
            404 => Self::NotFound,
            413 => Self::TooLarge,
            _ => Self::Other,
        }
    }
}

/// One job's run counts and durations.
#[derive(Debug, Default, Clone)]
struct JobRuns {
    by_status: BTreeMap<&'static str, u64>,
    buckets: [u64; DURATION_BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
}

/// Every metric karajo keeps.
#[derive(Debug, Default)]
pub struct Metrics {
    runs: Mutex<BTreeMap<JobKey, JobRuns>>,
    webhooks: [AtomicU64; WebhookOutcome::ALL.len()],
    notifications: Option<Arc<NotifyStats>>,
    /// Check-ins by monitor and kind (`start`, `success`, `fail`, `exit`, `log`).
    monitor_checkins: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Status transitions by monitor and the status entered.
    monitor_transitions: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Ended service instances by service and reason.
    service_restarts: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Bytes of service output lost because the log could not be written.
    service_log_dropped: Mutex<BTreeMap<String, u64>>,
    /// The event log, for its written and dropped counts.
    events: Option<crate::store::EventLog>,
}

impl Metrics {
    /// Metrics that also report the notifier's counters.
    pub fn new(notifications: Option<Arc<NotifyStats>>) -> Self {
        Self {
            notifications,
            ..Self::default()
        }
    }

    /// Metrics that also report the event log's counts.
    pub fn with_events(mut self, events: crate::store::EventLog) -> Self {
        self.events = Some(events);
        self
    }

    /// Counts a monitor's check-in of `kind`.
    pub fn monitor_checkin(&self, monitor: &str, kind: &'static str) {
        let mut counts = self
            .monitor_checkins
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *counts.entry((monitor.to_string(), kind)).or_default() += 1;
    }

    /// Counts an ended instance of `service`, by why it ended.
    pub fn service_ended(&self, service: &str, reason: &'static str) {
        let mut counts = self
            .service_restarts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *counts.entry((service.to_string(), reason)).or_default() += 1;
    }

    /// Counts `bytes` of `service`'s output lost (the log could not be written).
    pub fn service_log_dropped(&self, service: &str, bytes: u64) {
        let mut counts = self
            .service_log_dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *counts.entry(service.to_string()).or_default() += bytes;
    }

    /// Counts a monitor's transition into `to`.
    pub fn monitor_transition(&self, monitor: &str, to: &'static str) {
        let mut counts = self
            .monitor_transitions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *counts.entry((monitor.to_string(), to)).or_default() += 1;
    }

    /// Records a finished run of `key` that took `duration`.
    pub fn run_finished(&self, key: &JobKey, status: RunStatus, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let job = runs.entry(key.clone()).or_default();
        *job.by_status.entry(status.as_str()).or_default() += 1;
        for (bucket, bound) in job.buckets.iter_mut().zip(DURATION_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        job.duration_sum += seconds;
        job.duration_count += 1;
    }

    /// Counts a web hook request by how it ended.
    pub fn webhook(&self, outcome: WebhookOutcome) {
        let index = WebhookOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(WebhookOutcome::ALL.len() - 1);
        self.webhooks[index].fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4);
    /// `service_usage` is what the live service instances use, by service id; `cluster`
    /// is this node's part of the cluster in cluster mode (`None` adds no
    /// `karajo_cluster_*` metric).
    pub fn render(
        &self,
        snapshot: &Snapshot,
        service_usage: &[(&str, Usage)],
        cluster: Option<&ClusterInfo>,
    ) -> String {
        let mut out = String::with_capacity(4096);
        self.render_runs(&mut out);
        let _ = writeln!(
            out,
            "# HELP karajo_jobs_running Runs executing now.\n# TYPE karajo_jobs_running gauge\nkarajo_jobs_running {}",
            snapshot.running
        );
        let _ = writeln!(
            out,
            "# HELP karajo_queue_depth Command job runs waiting for a max_job_running slot.\n# TYPE karajo_queue_depth gauge\nkarajo_queue_depth {}",
            snapshot.waiting
        );
        out.push_str("# HELP karajo_webhook_requests_total Web hook requests by outcome.\n");
        out.push_str("# TYPE karajo_webhook_requests_total counter\n");
        for (outcome, count) in WebhookOutcome::ALL.iter().zip(&self.webhooks) {
            let _ = writeln!(
                out,
                "karajo_webhook_requests_total{{outcome=\"{}\"}} {}",
                outcome.label(),
                count.load(Ordering::Relaxed)
            );
        }
        if !snapshot.monitors.is_empty() {
            out.push_str("# HELP karajo_monitor_status Each heartbeat monitor's status (1 for the current one).\n");
            out.push_str("# TYPE karajo_monitor_status gauge\n");
            for monitor in &snapshot.monitors {
                let current = monitor.state.status.as_str();
                for status in ["new", "up", "late", "down", "paused"] {
                    let _ = writeln!(
                        out,
                        "karajo_monitor_status{{monitor=\"{}\",status=\"{status}\"}} {}",
                        monitor.id(),
                        u8::from(status == current)
                    );
                }
            }
        }
        self.render_monitor_counts(&mut out);
        self.render_services(snapshot, &mut out);
        render_service_usage(service_usage, &mut out);
        if let Some(events) = &self.events {
            let stats = events.stats();
            out.push_str("# HELP karajo_events_total Events written to the event log, by level.\n");
            out.push_str("# TYPE karajo_events_total counter\n");
            for (level, count) in crate::store::event_log::Level::ALL
                .iter()
                .zip(stats.written)
            {
                let _ = writeln!(
                    out,
                    "karajo_events_total{{level=\"{}\"}} {count}",
                    level.as_str()
                );
            }
            let _ = writeln!(
                out,
                "# HELP karajo_events_dropped_total Events dropped (full queue, day cap, write errors).\n# TYPE karajo_events_dropped_total counter\nkarajo_events_dropped_total {}",
                stats.dropped()
            );
        }
        if let Some(stats) = &self.notifications {
            let n = stats.snapshot();
            let _ = writeln!(
                out,
                "# HELP karajo_notifications_total Notifications by what happened to them.\n# TYPE karajo_notifications_total counter\n\
                 karajo_notifications_total{{event=\"queued\"}} {}\nkarajo_notifications_total{{event=\"sent\"}} {}\n\
                 karajo_notifications_total{{event=\"retried\"}} {}\nkarajo_notifications_total{{event=\"failed\"}} {}\n\
                 # HELP karajo_notifications_pending Notifications waiting for delivery.\n# TYPE karajo_notifications_pending gauge\n\
                 karajo_notifications_pending {}",
                n.queued, n.sent, n.retried, n.failed, n.pending
            );
        }
        if let Some(cluster) = cluster {
            render_cluster(cluster, &mut out);
        }
        out
    }

    fn render_services(&self, snapshot: &crate::scheduler::Snapshot, out: &mut String) {
        if !snapshot.services.is_empty() {
            out.push_str(
                "# HELP karajo_service_up Whether each service is running (ready).
",
            );
            out.push_str(
                "# TYPE karajo_service_up gauge
",
            );
            for service in &snapshot.services {
                let up = service.state.status.as_str() == "running";
                let _ = writeln!(
                    out,
                    "karajo_service_up{{service=\"{}\"}} {}",
                    service.id(),
                    u8::from(up)
                );
            }
            out.push_str(
                "# HELP karajo_service_state Each service's state (1 for the current one).\n",
            );
            out.push_str("# TYPE karajo_service_state gauge\n");
            for service in &snapshot.services {
                let current = service.state.status.as_str();
                for state in [
                    "disabled", "stopped", "starting", "running", "backoff", "stopping", "fatal",
                ] {
                    let _ = writeln!(
                        out,
                        "karajo_service_state{{service=\"{}\",state=\"{state}\"}} {}",
                        service.id(),
                        u8::from(state == current)
                    );
                }
            }
        }
        let restarts = self
            .service_restarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !restarts.is_empty() {
            out.push_str("# HELP karajo_service_restarts_total Ended service instances, by why they ended.\n# TYPE karajo_service_restarts_total counter\n");
            for ((service, reason), count) in restarts {
                let _ = writeln!(
                    out,
                    "karajo_service_restarts_total{{service=\"{service}\",reason=\"{reason}\"}} {count}"
                );
            }
        }
        let dropped = self
            .service_log_dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !dropped.is_empty() {
            out.push_str("# HELP karajo_service_log_dropped_bytes_total Service output lost because its log could not be written.\n# TYPE karajo_service_log_dropped_bytes_total counter\n");
            for (service, bytes) in dropped {
                let _ = writeln!(
                    out,
                    "karajo_service_log_dropped_bytes_total{{service=\"{service}\"}} {bytes}"
                );
            }
        }
    }

    fn render_monitor_counts(&self, out: &mut String) {
        let tables = [
            (
                &self.monitor_checkins,
                "karajo_monitor_checkins_total",
                "kind",
                "Heartbeat check-ins by monitor and kind.",
            ),
            (
                &self.monitor_transitions,
                "karajo_monitor_transitions_total",
                "to",
                "Heartbeat monitor transitions by the status entered.",
            ),
        ];
        for (table, name, label, help) in tables {
            let counts = table.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if counts.is_empty() {
                continue;
            }
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((monitor, value), count) in counts {
                let _ = writeln!(
                    out,
                    "{name}{{monitor=\"{monitor}\",{label}=\"{value}\"}} {count}"
                );
            }
        }
    }

    fn render_runs(&self, out: &mut String) {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        out.push_str("# HELP karajo_runs_total Finished runs by job and status.\n");
        out.push_str("# TYPE karajo_runs_total counter\n");
        for (key, job) in &runs {
            for (status, count) in &job.by_status {
                let _ = writeln!(
                    out,
                    "karajo_runs_total{{kind=\"{}\",job=\"{}\",status=\"{status}\"}} {count}",
                    key.kind.as_str(),
                    label_value(key.id.as_str())
                );
            }
        }
        out.push_str("# HELP karajo_run_duration_seconds Run durations by job.\n");
        out.push_str("# TYPE karajo_run_duration_seconds histogram\n");
        for (key, job) in &runs {
            let labels = format!(
                "kind=\"{}\",job=\"{}\"",
                key.kind.as_str(),
                label_value(key.id.as_str())
            );
            for (bound, count) in DURATION_BUCKETS.iter().zip(job.buckets) {
                let _ = writeln!(
                    out,
                    "karajo_run_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "karajo_run_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\nkarajo_run_duration_seconds_sum{{{labels}}} {}\nkarajo_run_duration_seconds_count{{{labels}}} {}",
                job.duration_count, job.duration_sum, job.duration_count
            );
        }
    }
}

/// Escapes a label value (job ids are plain, but stay safe).
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The resource gauges of live service instances (their whole process groups).
fn render_service_usage(usage: &[(&str, Usage)], out: &mut String) {
    if usage.is_empty() {
        return;
    }
    type Field = fn(&Usage) -> f64;
    let series: [(&str, &str, &str, Field); 4] = [
        (
            "karajo_service_cpu_seconds_total",
            "counter",
            "CPU time of the current instance's processes (and the children they waited for).",
            |u| u.totals.cpu.as_secs_f64(),
        ),
        (
            "karajo_service_cpu_percent",
            "gauge",
            "CPU share of the current instance's processes since the last reading, in percent of one core.",
            |u| u.cpu_percent,
        ),
        (
            "karajo_service_resident_memory_bytes",
            "gauge",
            "Resident memory of the current instance's processes.",
            |u| u.totals.rss_bytes as f64,
        ),
        (
            "karajo_service_processes",
            "gauge",
            "Processes of the current instance.",
            |u| f64::from(u.totals.processes),
        ),
    ];
    for (name, kind, help, field) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (service, u) in usage {
            let _ = writeln!(out, "{name}{{service=\"{service}\"}} {}", field(u));
        }
    }
}

/// The `karajo_cluster_*` metrics (cluster spec 11.1): this node's link, the nodes it
/// knows, and what its cluster agent counted.
fn render_cluster(cluster: &ClusterInfo, out: &mut String) {
    let connected = cluster.coordinator.health().borrow().is_connected();
    let nodes = cluster.coordinator.nodes().borrow().clone();
    let alive = nodes.values().filter(|node| node.alive).count();
    let _ = writeln!(
        out,
        "# HELP karajo_cluster_connected Whether this node reaches the cluster.\n# TYPE karajo_cluster_connected gauge\nkarajo_cluster_connected {}",
        u8::from(connected)
    );
    let _ = writeln!(
        out,
        "# HELP karajo_cluster_nodes_alive Nodes whose heartbeat was seen within lease_ttl.\n# TYPE karajo_cluster_nodes_alive gauge\nkarajo_cluster_nodes_alive {alive}"
    );
    out.push_str("# HELP karajo_cluster_node_info Every node known, with its karajo version and its NATS server's version.\n");
    out.push_str("# TYPE karajo_cluster_node_info gauge\n");
    let this_node = cluster.coordinator.node();
    for (name, node) in &nodes {
        let nats_server = if name == this_node {
            &cluster.nats_server
        } else {
            &node.nats_server
        };
        let _ = writeln!(
            out,
            "karajo_cluster_node_info{{node=\"{}\",version=\"{}\",nats_server=\"{}\"}} 1",
            label_value(name.as_str()),
            label_value(&node.version),
            label_value(nats_server)
        );
    }
    let stats = &cluster.stats;
    render_cluster_counters(
        out,
        "karajo_cluster_claims_total",
        "Timer slot claims, by result.",
        "result",
        &[
            ("won", &stats.claims_won),
            ("lost", &stats.claims_lost),
            ("uncertain", &stats.claims_uncertain),
            ("unavailable", &stats.claims_unavailable),
        ],
    );
    render_cluster_counters(
        out,
        "karajo_cluster_orders_dispatched_total",
        "Run orders dispatched, by target.",
        "target",
        &[
            ("node", &stats.dispatched_node),
            ("any", &stats.dispatched_any),
            ("tag", &stats.dispatched_tag),
            ("all", &stats.dispatched_all),
        ],
    );
    render_cluster_counters(
        out,
        "karajo_cluster_orders_failed_total",
        "Run orders that failed, by reason.",
        "reason",
        &[
            ("not_accepted", &stats.failed_not_accepted),
            ("rejected", &stats.failed_rejected),
            ("node_lost", &stats.failed_node_lost),
        ],
    );
    let _ = writeln!(
        out,
        "# HELP karajo_cluster_missed_slots_total Missed timer slots past misfire_grace, skipped.\n# TYPE karajo_cluster_missed_slots_total counter\nkarajo_cluster_missed_slots_total {}",
        ClusterStats::get(&stats.missed_slots)
    );
    let _ = writeln!(
        out,
        "# HELP karajo_cluster_catchups_total Missed timer slots caught up after a reconnection.\n# TYPE karajo_cluster_catchups_total counter\nkarajo_cluster_catchups_total {}",
        ClusterStats::get(&stats.catchups)
    );
}

/// One counter family of the cluster agent's counts, one series per `label` value.
fn render_cluster_counters(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: &[(&str, &AtomicU64)],
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (value, counter) in series {
        let _ = writeln!(
            out,
            "{name}{{{label}=\"{value}\"}} {}",
            ClusterStats::get(counter)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobId;

    #[test]
    fn runs_and_webhooks_render_in_the_text_format() {
        let metrics = Metrics::default();
        let key = JobKey::exec(JobId::from_raw("deploy"));
        metrics.run_finished(&key, RunStatus::Success, Duration::from_millis(700));
        metrics.run_finished(&key, RunStatus::Failed, Duration::from_secs(20));
        metrics.webhook(WebhookOutcome::Accepted);
        metrics.webhook(WebhookOutcome::from_status(403));
        let usage = Usage {
            totals: crate::exec::group_usage::GroupTotals {
                cpu: Duration::from_millis(1_250),
                rss_bytes: 4096,
                processes: 2,
            },
            cpu_percent: 12.5,
        };
        let text = metrics.render(
            &Snapshot::empty(std::sync::Arc::new(crate::config::defaults(
                std::path::Path::new("/nonexistent"),
            ))),
            &[("api", usage)],
            None,
        );
        for line in [
            "karajo_runs_total{kind=\"job\",job=\"deploy\",status=\"success\"} 1",
            "karajo_runs_total{kind=\"job\",job=\"deploy\",status=\"failed\"} 1",
            "karajo_run_duration_seconds_bucket{kind=\"job\",job=\"deploy\",le=\"1\"} 1",
            "karajo_run_duration_seconds_bucket{kind=\"job\",job=\"deploy\",le=\"30\"} 2",
            "karajo_run_duration_seconds_bucket{kind=\"job\",job=\"deploy\",le=\"+Inf\"} 2",
            "karajo_run_duration_seconds_count{kind=\"job\",job=\"deploy\"} 2",
            "karajo_jobs_running 0",
            "karajo_service_cpu_seconds_total{service=\"api\"} 1.25",
            "karajo_service_cpu_percent{service=\"api\"} 12.5",
            "karajo_service_resident_memory_bytes{service=\"api\"} 4096",
            "karajo_service_processes{service=\"api\"} 2",
            "karajo_webhook_requests_total{outcome=\"accepted\"} 1",
            "karajo_webhook_requests_total{outcome=\"forbidden\"} 1",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        assert!(!text.contains("karajo_cluster_"), "single node:\n{text}");
    }

    #[test]
    fn cluster_mode_adds_the_link_the_nodes_and_the_agents_counts() {
        use crate::cluster::NodeName;
        use crate::cluster::memory::MemoryCluster;

        let clock: crate::clock::SharedClock = Arc::new(crate::clock::ManualClock::new(
            "2024-05-01T12:00:00Z".parse().unwrap(),
        ));
        let cluster = MemoryCluster::new(
            clock.clone(),
            Duration::from_secs(600),
            Duration::from_secs(30),
            5,
        );
        let n1 = cluster.join("n1", &[]);
        let _n2 = cluster.join("n2", &["gpu"]);
        let _n3 = cluster.join("n3", &[]);
        let name = |n: &str| NodeName::parse(n).unwrap();
        cluster.update_node(&name("n1"), |info| info.version = "1.2.0".into());
        cluster.update_node(&name("n2"), |info| {
            info.version = "1.1.0".into();
            info.nats_server = "2.10.1".into();
        });
        cluster.set_alive(&name("n3"), false);
        let stats = Arc::new(ClusterStats::default());
        for counter in [
            &stats.claims_won,
            &stats.claims_won,
            &stats.claims_unavailable,
            &stats.dispatched_tag,
            &stats.failed_node_lost,
            &stats.catchups,
        ] {
            ClusterStats::count(counter);
        }
        let info = ClusterInfo {
            coordinator: Arc::new(n1),
            config_digest: "sha256:00".into(),
            nats_server: "2.9.10".into(),
            stats,
        };
        let snapshot = Snapshot::empty(Arc::new(crate::config::defaults(std::path::Path::new(
            "/nonexistent",
        ))));
        let text = Metrics::default().render(&snapshot, &[], Some(&info));
        for line in [
            "# HELP karajo_cluster_connected ",
            "# TYPE karajo_cluster_connected gauge\nkarajo_cluster_connected 1\n",
            "# TYPE karajo_cluster_nodes_alive gauge\nkarajo_cluster_nodes_alive 2\n",
            "# TYPE karajo_cluster_node_info gauge\n\
             karajo_cluster_node_info{node=\"n1\",version=\"1.2.0\",nats_server=\"2.9.10\"} 1\n\
             karajo_cluster_node_info{node=\"n2\",version=\"1.1.0\",nats_server=\"2.10.1\"} 1\n\
             karajo_cluster_node_info{node=\"n3\",version=\"\",nats_server=\"\"} 1\n",
            "# TYPE karajo_cluster_claims_total counter\n\
             karajo_cluster_claims_total{result=\"won\"} 2\n\
             karajo_cluster_claims_total{result=\"lost\"} 0\n\
             karajo_cluster_claims_total{result=\"uncertain\"} 0\n\
             karajo_cluster_claims_total{result=\"unavailable\"} 1\n",
            "# TYPE karajo_cluster_orders_dispatched_total counter\n\
             karajo_cluster_orders_dispatched_total{target=\"node\"} 0\n\
             karajo_cluster_orders_dispatched_total{target=\"any\"} 0\n\
             karajo_cluster_orders_dispatched_total{target=\"tag\"} 1\n\
             karajo_cluster_orders_dispatched_total{target=\"all\"} 0\n",
            "# TYPE karajo_cluster_orders_failed_total counter\n\
             karajo_cluster_orders_failed_total{reason=\"not_accepted\"} 0\n\
             karajo_cluster_orders_failed_total{reason=\"rejected\"} 0\n\
             karajo_cluster_orders_failed_total{reason=\"node_lost\"} 1\n",
            "# TYPE karajo_cluster_missed_slots_total counter\nkarajo_cluster_missed_slots_total 0\n",
            "# TYPE karajo_cluster_catchups_total counter\nkarajo_cluster_catchups_total 1\n",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        for line in text.lines().filter(|l| l.contains("karajo_cluster_")) {
            let name = line
                .trim_start_matches("# HELP ")
                .trim_start_matches("# TYPE ")
                .split(['{', ' '])
                .next()
                .unwrap();
            assert!(
                text.contains(&format!("# HELP {name} "))
                    && text.contains(&format!("# TYPE {name} ")),
                "{name} lacks HELP or TYPE"
            );
        }

        cluster.set_connected(&name("n1"), false);
        let text = Metrics::default().render(&snapshot, &[], Some(&info));
        assert!(text.contains("\nkarajo_cluster_connected 0\n"), "{text}");
    }
}
