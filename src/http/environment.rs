//! `GET /karajo/api/environment`: the whole configuration and every job's state, as
//! the original's `Env` JSON (spec 4.3). Secrets, users and notifications never appear.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;

use super::AppState;
use super::json::{self, JobExecJson, JobHttpJson};

/// The version reported by the API and `karajo version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Serialize)]
struct EnvJson<'a> {
    jobs: BTreeMap<&'a str, JobExecJson<'a>>,
    http_jobs: BTreeMap<&'a str, JobHttpJson<'a>>,
    name: &'a str,
    listen_address: &'a str,
    dir_base: String,
    dir_public: String,
    version: &'static str,
    http_timeout: u128,
    max_job_running: usize,
    is_development: bool,
}

/// Serves the environment.
pub(super) async fn get_environment(State(state): State<AppState>) -> Response {
    let live = state.live();
    let snapshot = state.scheduler.snapshot();
    let cfg = &live.config;
    let env = EnvJson {
        jobs: snapshot
            .jobs
            .iter()
            .filter_map(|view| Some((view.name(), JobExecJson::new(view)?)))
            .collect(),
        http_jobs: snapshot
            .http_jobs
            .iter()
            .filter_map(|view| Some((view.name(), JobHttpJson::new(view)?)))
            .collect(),
        name: &cfg.name,
        listen_address: &cfg.listen_address,
        dir_base: cfg.dir_base.display().to_string(),
        dir_public: cfg
            .dir_public
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        version: VERSION,
        http_timeout: cfg.http_timeout.map_or(0, |d| d.as_nanos()),
        max_job_running: cfg.max_job_running,
        is_development: cfg.is_development,
    };
    json::data(&env)
}
