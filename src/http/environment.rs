//! `GET /karajo/api/environment`: the whole configuration and every job's state, as
//! the original's `Env` JSON (spec 4.3). Secrets, users and notifications never appear.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use super::json::{self, JobExecJson};
use super::{AppState, LiveConfig};
use crate::scheduler::Snapshot;

/// The version reported by the API and `karajo version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Serialize)]
struct EnvJson<'a> {
    jobs: BTreeMap<&'a str, JobExecJson<'a>>,
    http_jobs: BTreeMap<&'a str, ()>,
    name: &'a str,
    listen_address: &'a str,
    dir_base: String,
    dir_public: String,
    version: &'static str,
    http_timeout: u128,
    max_job_running: usize,
    is_development: bool,
}

/// The last rendered answer and what it was rendered from. The answer is a pure
/// function of the snapshot and the configuration, so while neither changes (clients
/// polling an idle daemon) it is served again instead of serializing every job per
/// request. Holding the `Arc`s keeps their addresses from being reused, so comparing
/// pointers is exact; daemons in one process (tests) only evict each other.
struct Rendered {
    snapshot: Arc<Snapshot>,
    live: Arc<LiveConfig>,
    body: Bytes,
}

static LAST: Mutex<Option<Rendered>> = Mutex::new(None);

/// Serves the environment.
pub(super) async fn get_environment(State(state): State<AppState>) -> Response {
    let live = state.live();
    let snapshot = state.scheduler.snapshot();
    let cached = LAST
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|r| {
            (Arc::ptr_eq(&r.snapshot, &snapshot) && Arc::ptr_eq(&r.live, &live))
                .then(|| r.body.clone())
        });
    let body = match cached {
        Some(body) => body,
        None => {
            let body = Bytes::from(render(&snapshot, &live));
            *LAST.lock().unwrap_or_else(|e| e.into_inner()) = Some(Rendered {
                snapshot,
                live,
                body: body.clone(),
            });
            body
        }
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The environment envelope `{"data":{...},"code":200}` as JSON text.
fn render(snapshot: &Snapshot, live: &LiveConfig) -> String {
    let cfg = &live.config;
    let env = EnvJson {
        jobs: snapshot
            .jobs
            .iter()
            .map(|view| (view.config.name.as_str(), JobExecJson::new(view)))
            .collect(),
        http_jobs: BTreeMap::new(),
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
    #[derive(Serialize)]
    struct Envelope<'a> {
        data: &'a EnvJson<'a>,
        code: u16,
    }
    json::to_string(&Envelope {
        data: &env,
        code: 200,
    })
}
