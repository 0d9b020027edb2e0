//! The controls of the web UI: run now, pause, resume and cancel for jobs, pause
//! (with its `until`) and resume for heartbeat monitors, and enable, disable, restart,
//! run once and signal for supervised services (without a CAS: the page shows the
//! service live, and the API is there for clients that want one), posted as a form to
//! `/karajo/app/{kind}/{id}/control`. With users, the form must come from a
//! session and carry its CSRF token; without users it carries the global secret,
//! compared in constant time (the original's page signed requests in the browser;
//! posting the secret over the same origin works without script and on plain HTTP,
//! where browsers offer no SubtleCrypto). Answers are redirects: to the new run's log
//! after "run now", else back to the job's page with a notice. A service's page posts
//! its form from its script and stays (its state follows live); the redirect's page
//! gives it the notice.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use subtle::ConstantTimeEq as _;

use super::login::Connect;
use super::screens::find_job;
use super::view;
use super::{WuiError, monitor, parse_kind, service};
use crate::config::model::ServiceSignal;
use crate::job::{JobKey, JobKind, RunStatus, Trigger};
use crate::monitor::PauseUntil;
use crate::scheduler::{JobControl, ServiceAnswer, TriggerError};
use crate::service::Control;
use crate::web::access;
use crate::web::{AppState, peer};

/// A control, as the form's `action` field names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// `run`: start a run now.
    Run,
    /// `pause`: stop timers and web hooks from starting runs.
    Pause,
    /// `resume`: undo `pause`.
    Resume,
    /// `cancel`: end the running run.
    Cancel,
}

impl Action {
    /// Every control, in the order the job page shows them.
    pub(super) const ALL: [Action; 4] =
        [Action::Run, Action::Pause, Action::Resume, Action::Cancel];

    /// The form value.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Action::Run => "run",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Cancel => "cancel",
        }
    }

    /// The control named by a form value; `None` for anything else.
    pub(super) fn parse(word: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == word)
    }
}

/// The message shown on a job's page after a control, carried by `?notice=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Notice {
    /// `queued`: the run waits behind the current one.
    Queued,
    /// `busy`: a run is in progress and another one is already queued.
    Busy,
    /// `paused-refused`: the job is paused, so no run was started.
    PausedRefused,
    /// `paused`: the job was paused.
    Paused,
    /// `resumed`: the job was resumed.
    Resumed,
    /// `canceled`: the running run was asked to end.
    Canceled,
    /// `monitor-paused`: a heartbeat monitor was paused.
    MonitorPaused,
    /// `service-enabled`: a service was enabled.
    ServiceEnabled,
    /// `service-disabled`: a service's disable started.
    ServiceDisabled,
    /// `service-restarted`: a service's restart started.
    ServiceRestarted,
    /// `service-run-once`: a service runs once.
    ServiceRunOnce,
    /// `service-signalled`: a signal went to a service's instance.
    ServiceSignalled,
    /// `service-not-running`: no instance to signal.
    ServiceNotRunning,
    /// `service-changed`: the service changed between the page and the control.
    ServiceChanged,
}

impl Notice {
    /// Every notice.
    pub(super) const ALL: [Notice; 14] = [
        Notice::Queued,
        Notice::Busy,
        Notice::PausedRefused,
        Notice::Paused,
        Notice::Resumed,
        Notice::Canceled,
        Notice::MonitorPaused,
        Notice::ServiceEnabled,
        Notice::ServiceDisabled,
        Notice::ServiceRestarted,
        Notice::ServiceRunOnce,
        Notice::ServiceSignalled,
        Notice::ServiceNotRunning,
        Notice::ServiceChanged,
    ];

    /// The query value.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Notice::Queued => "queued",
            Notice::Busy => "busy",
            Notice::PausedRefused => "paused-refused",
            Notice::Paused => "paused",
            Notice::Resumed => "resumed",
            Notice::Canceled => "canceled",
            Notice::MonitorPaused => "monitor-paused",
            Notice::ServiceEnabled => "service-enabled",
            Notice::ServiceDisabled => "service-disabled",
            Notice::ServiceRestarted => "service-restarted",
            Notice::ServiceRunOnce => "service-run-once",
            Notice::ServiceSignalled => "service-signalled",
            Notice::ServiceNotRunning => "service-not-running",
            Notice::ServiceChanged => "service-changed",
        }
    }

    /// The notice named by a query value; `None` for anything else.
    pub(super) fn parse(word: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|n| n.as_str() == word)
    }

    /// The fixed message shown on the page.
    pub(super) fn text(self) -> &'static str {
        match self {
            Notice::Queued => "The run is queued behind the current one.",
            Notice::Busy => "Not started: a run is in progress and another one is already queued.",
            Notice::PausedRefused => "Not started: the job is paused. Resume it first.",
            Notice::Paused => "Paused: timers and web hooks start no runs until it is resumed.",
            Notice::Resumed => "Resumed.",
            Notice::Canceled => "Cancel requested: a running run ends shortly.",
            Notice::MonitorPaused => {
                "Paused: the monitor raises no alarm until it resumes (see its state below)."
            }
            Notice::ServiceEnabled => "Enabled: it starts unless an instance runs already.",
            Notice::ServiceDisabled => {
                "Disable requested: the instance is stopped (see its state below)."
            }
            Notice::ServiceRestarted => {
                "Restart requested: the instance is stopped and a new one started."
            }
            Notice::ServiceRunOnce => {
                "Run once: one instance runs, and it is not restarted when it ends."
            }
            Notice::ServiceSignalled => "Signal sent to the instance's process group.",
            Notice::ServiceNotRunning => "Not sent: no instance is running.",
            Notice::ServiceChanged => {
                "Not done: the service changed meanwhile. Look at its state and try again."
            }
        }
    }
}

/// The control form.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ControlForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    secret: String,
    /// A monitor's pause: `ping`, `resume` or an RFC 3339 time; empty is the
    /// monitor's default.
    #[serde(default)]
    until: String,
    /// A service's `signal` control: `HUP`, `USR1`, ….
    #[serde(default)]
    signal: String,
    /// The other fields: a command job's run parameters are `param.NAME`.
    #[serde(flatten)]
    rest: std::collections::BTreeMap<String, String>,
}

impl ControlForm {
    /// The run parameters the form gives (`param.NAME` fields).
    fn params(&self) -> Vec<(String, String)> {
        self.rest
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(crate::web::api::PARAM_FIELD)
                    .map(|name| (name.to_string(), v.clone()))
            })
            .collect()
    }
}

/// `POST /karajo/app/{kind}/{id}/control`.
pub(super) async fn control(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
    connect: Connect,
    Form(form): Form<ControlForm>,
) -> Result<Response, WuiError> {
    authorise(&state, &headers, &form)?;
    let job_kind = parse_kind(&kind).ok_or(WuiError::JobNotFound)?;
    match job_kind {
        JobKind::Monitor => return monitor_control(&state, &headers, &id, &form).await,
        JobKind::Service => {
            return service_control(&state, &headers, &connect, &id, &form).await;
        }
        JobKind::Exec | JobKind::Http => {}
    }
    let view = find_job(&state, &kind, &id)?;
    let key = JobKey {
        kind: job_kind,
        id: view.id().clone(),
    };
    let page = view::job_href(job_kind, key.id.as_str());
    let back = |notice: Notice| {
        Redirect::to(&format!("{page}?notice={}", notice.as_str())).into_response()
    };
    let who = access::session(&state, &headers).map_or_else(|| "secret".to_string(), |s| s.user);
    tracing::info!(job = %key, action = %form.action, by = %who, "web UI control");
    let action = Action::parse(&form.action).ok_or(WuiError::BadAction)?;
    match action {
        Action::Run => match state
            .scheduler
            .trigger_with_env(key.clone(), Trigger::Api, None, run_env(&view, &form)?)
            .await
        {
            Ok(view) if view.queued => Ok(back(Notice::Queued)),
            Ok(view) if view.status == RunStatus::Running => {
                Ok(
                    Redirect::to(&view::log_href(job_kind, key.id.as_str(), view.counter))
                        .into_response(),
                )
            }
            Ok(_) => Ok(Redirect::to(&page).into_response()),
            Err(TriggerError::Paused) => Ok(back(Notice::PausedRefused)),
            Err(TriggerError::Busy) => Ok(back(Notice::Busy)),
            Err(TriggerError::NotFound(_)) => Err(WuiError::JobNotFound),
            Err(TriggerError::ShuttingDown) => Err(WuiError::ShuttingDown),
            Err(TriggerError::ClusterUnavailable(why)) => Err(WuiError::ClusterUnavailable(why)),
        },
        Action::Pause => job_control(&state, key, JobControl::Pause, back(Notice::Paused)).await,
        Action::Resume => job_control(&state, key, JobControl::Resume, back(Notice::Resumed)).await,
        Action::Cancel => {
            job_control(&state, key, JobControl::Cancel, back(Notice::Canceled)).await
        }
    }
}

/// The environment of a run now: a command job's parameters from the form, checked
/// against those it declares (a refusal names them).
fn run_env(
    view: &crate::scheduler::JobView,
    form: &ControlForm,
) -> Result<Vec<(String, String)>, WuiError> {
    match &view.def.kind {
        crate::scheduler::JobDefKind::Exec { spec, .. } => spec
            .params
            .resolve(&form.params())
            .map_err(|e| WuiError::Params(e.to_string())),
        crate::scheduler::JobDefKind::Http { .. } => Ok(Vec::new()),
    }
}

/// A pause, resume or cancel of a job; `done` once it is taken.
async fn job_control(
    state: &AppState,
    key: JobKey,
    control: JobControl,
    done: Response,
) -> Result<Response, WuiError> {
    match state.scheduler.control(key, control).await {
        Ok(Some(_)) => Ok(done),
        Ok(None) => Err(WuiError::JobNotFound),
        Err(TriggerError::ClusterUnavailable(why)) => Err(WuiError::ClusterUnavailable(why)),
        Err(_) => Err(WuiError::ShuttingDown),
    }
}

/// A heartbeat monitor's pause or resume, through the scheduler as the monitor API
/// does it; back to the monitor's page with a notice.
async fn monitor_control(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    form: &ControlForm,
) -> Result<Response, WuiError> {
    let id = monitor::find(state, id)?.id().clone();
    let page = monitor::page_href(id.as_str());
    let who = access::session(state, headers).map_or_else(|| "secret".to_string(), |s| s.user);
    tracing::info!(monitor = %id, action = %form.action, by = %who, "web UI control");
    let view = match Action::parse(&form.action) {
        Some(Action::Pause) => {
            let until = match form.until.as_str() {
                "" => None,
                text => Some(PauseUntil::parse(text).ok_or(WuiError::BadAction)?),
            };
            state.scheduler.pause_monitor(id, until).await
        }
        Some(Action::Resume) => state.scheduler.resume_monitor(id).await,
        _ => return Err(WuiError::BadAction),
    };
    let notice = match view.ok_or(WuiError::MonitorNotFound)?.state.status {
        crate::monitor::Status::Paused(_) => Notice::MonitorPaused,
        _ => Notice::Resumed,
    };
    Ok(Redirect::to(&format!("{page}?notice={}", notice.as_str())).into_response())
}

/// A service control, as a form's `action` names it (`signal` takes the form's
/// `signal`).
fn service_action(form: &ControlForm) -> Result<(Control, Notice), WuiError> {
    Ok(match form.action.as_str() {
        "enable" => (Control::Enable, Notice::ServiceEnabled),
        "disable" => (Control::Disable, Notice::ServiceDisabled),
        "restart" => (Control::Restart, Notice::ServiceRestarted),
        "run_once" => (Control::RunOnce(true), Notice::ServiceRunOnce),
        "signal" => {
            let signal = ServiceSignal::parse(&form.signal).ok_or(WuiError::BadAction)?;
            (Control::Signal(signal), Notice::ServiceSignalled)
        }
        _ => return Err(WuiError::BadAction),
    })
}

/// A service's enable, disable, restart, run once or signal, through the scheduler as
/// the service API does it (named in the service's log and events as the web UI's
/// user, or the global secret, and the client's address); back to the service's page
/// with a notice.
async fn service_control(
    state: &AppState,
    headers: &HeaderMap,
    connect: &Connect,
    id: &str,
    form: &ControlForm,
) -> Result<Response, WuiError> {
    let id = service::find(state, id)?.id().clone();
    let page = service::page_href(id.as_str());
    let (control, done) = service_action(form)?;
    let who = access::session(state, headers).map_or_else(
        || "the global secret".to_string(),
        |s| format!("user {}", s.user),
    );
    let addr = connect.as_ref().map(|Extension(ConnectInfo(a))| *a);
    let client = peer::peer(&state.config().trusted_proxy, addr, headers).client;
    let by = match client {
        Some(ip) => format!("web UI, {who} from {ip}"),
        None => format!("web UI, {who}"),
    };
    tracing::info!(service = %id, action = %form.action, by = %by, "web UI control");
    let notice = match state
        .scheduler
        .service_control(id, control, None, by)
        .await
        .ok_or(WuiError::ServiceNotFound)?
    {
        ServiceAnswer::Done(_) => done,
        ServiceAnswer::NotRunning(_) => Notice::ServiceNotRunning,
        ServiceAnswer::CasMismatch(_) => Notice::ServiceChanged,
        // The scheduler refuses controls only while karajo stops.
        ServiceAnswer::BadRequest(_) => return Err(WuiError::ShuttingDown),
    };
    Ok(Redirect::to(&format!("{page}?notice={}", notice.as_str())).into_response())
}

/// A session with the form's CSRF token when users exist, else the global secret.
fn authorise(state: &AppState, headers: &HeaderMap, form: &ControlForm) -> Result<(), WuiError> {
    if access::users_exist(state) {
        let session = access::session(state, headers).ok_or(WuiError::NotLoggedIn)?;
        if session.csrf_matches(&form.csrf) {
            Ok(())
        } else {
            Err(WuiError::Csrf)
        }
    } else {
        let secret = state.config().secret.clone();
        let ok =
            !form.secret.is_empty() && bool::from(secret.as_bytes().ct_eq(form.secret.as_bytes()));
        if ok {
            Ok(())
        } else {
            Err(WuiError::WrongSecret)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        for notice in Notice::ALL {
            assert_eq!(Notice::parse(notice.as_str()), Some(notice));
        }
        assert_eq!(Action::parse("Run"), None);
        assert_eq!(Action::parse(""), None);
        assert_eq!(Notice::parse("nope"), None);
    }
}
