//! `GET /karajo/api/environment`: the whole configuration and every job's state, as
//! the original's `Env` JSON (spec 4.3), plus karajo's `monitors` and `services` maps
//! when there are any (monitors spec 1.3). Secrets, users and notifications never appear;
//! HTTP jobs' secret header values and URL user info are `<redacted>`
//! ([`crate::redact`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use super::AppState;
use super::json::{self, ClusterPlace, JobExecJson, JobHttpJson};
use crate::cluster::status::ClusterInfo;
use crate::scheduler::Snapshot;

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
    /// Heartbeat monitors by name (left out when there are none, so the original's
    /// answer is unchanged).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    monitors: BTreeMap<&'a str, super::monitor::MonitorJson<'a>>,
    /// Supervised services by name, without history (left out when there are none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    services: BTreeMap<&'a str, super::service::ServiceJson<'a>>,
}

/// The last rendered answer and what it was rendered from. The answer is a pure
/// function of the snapshot and the configuration (and, in cluster mode, of the jobs'
/// places in the cluster, compared as well), so while none changes (clients
/// polling a quiet daemon) it is served again instead of serializing every job, and
/// compressing it, per request. Holding the `Arc`s keeps their addresses from being
/// reused, so comparing pointers is exact.
#[derive(Debug, Default)]
pub struct EnvCache(Mutex<Option<Arc<Rendered>>>);

#[derive(Debug)]
struct Rendered {
    snapshot: Arc<Snapshot>,
    /// Cluster mode: each job's place, in the snapshot's order.
    places: Option<Vec<ClusterPlace>>,
    plain: Bytes,
    /// The gzip form, made by the first client that accepts it.
    gzip: OnceLock<Bytes>,
}

impl EnvCache {
    fn get(&self, snapshot: Arc<Snapshot>, cluster: Option<&ClusterInfo>) -> Arc<Rendered> {
        let places = cluster.map(|cluster| {
            let records = cluster.coordinator.records();
            let table = records.borrow();
            snapshot
                .jobs
                .iter()
                .map(|view| ClusterPlace::in_table(&table, view))
                .collect::<Vec<_>>()
        });
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = last.as_ref()
            && Arc::ptr_eq(&r.snapshot, &snapshot)
            && r.places == places
        {
            return r.clone();
        }
        let rendered = Arc::new(Rendered {
            plain: Bytes::from(render(&snapshot, places.as_deref())),
            snapshot,
            places,
            gzip: OnceLock::new(),
        });
        *last = Some(rendered.clone());
        rendered
    }
}

/// Serves the environment, gzip-compressed when the client accepts it.
pub(super) async fn get_environment(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let rendered = state
        .env_cache
        .get(state.scheduler.snapshot(), state.cluster.as_ref());
    let mut response = if accepts_gzip(&headers) {
        let body = rendered.gzip.get_or_init(|| gzip(&rendered.plain));
        let mut response = body.clone().into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        rendered.plain.clone().into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    *response.status_mut() = StatusCode::OK;
    response
}

/// Whether `Accept-Encoding` lists gzip with a non-zero quality.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused =
                parts.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0");
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

fn gzip(plain: &[u8]) -> Bytes {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(plain);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// The environment envelope `{"data":{...},"code":200}` as JSON text; in cluster mode
/// with each job's place (`places`, in the snapshot's order).
fn render(snapshot: &Snapshot, places: Option<&[ClusterPlace]>) -> String {
    let cfg = &snapshot.config;
    let place = |i: usize| places.and_then(|p| p.get(i)).cloned();
    let env = EnvJson {
        jobs: snapshot
            .jobs
            .iter()
            .enumerate()
            .filter_map(|(i, view)| Some((view.name(), JobExecJson::new(view)?.placed(place(i)))))
            .collect(),
        http_jobs: snapshot
            .jobs
            .iter()
            .enumerate()
            .filter_map(|(i, view)| Some((view.name(), JobHttpJson::new(view)?.placed(place(i)))))
            .collect(),
        name: &cfg.name,
        listen_address: &cfg.listen_address,
        dir_base: cfg.dir_base.display().to_string(),
        dir_public: cfg
            .dir_public
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        version: crate::VERSION,
        http_timeout: cfg.http_timeout.map_or(0, |d| d.as_nanos()),
        max_job_running: cfg.max_job_running,
        is_development: cfg.is_development,
        monitors: snapshot
            .monitors
            .iter()
            .map(|view| {
                (
                    view.spec.name.as_str(),
                    super::monitor::MonitorJson::new(view),
                )
            })
            .collect(),
        services: snapshot
            .services
            .iter()
            .map(|view| {
                (
                    view.spec.name.as_str(),
                    super::service::ServiceJson::new(view, None),
                )
            })
            .collect(),
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
