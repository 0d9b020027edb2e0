//! The job controls of the web UI: run now, pause, resume and cancel, posted as a
//! form to `/karajo/app/{kind}/{id}/control`. With users, the form must come from a
//! session and carry its CSRF token; without users it carries the global secret,
//! compared in constant time (the original's page signed requests in the browser;
//! posting the secret over the same origin works without script and on plain HTTP,
//! where browsers offer no SubtleCrypto). Answers are redirects: to the new run's log
//! after "run now", else back to the job's page with a notice.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq as _;

use super::pages::find_job;
use super::view;
use super::{WuiError, parse_kind};
use crate::http::AppState;
use crate::http::access;
use crate::job::{JobKey, RunStatus, Trigger};
use crate::scheduler::TriggerError;

/// The control form.
#[derive(Debug, serde::Deserialize)]
pub struct ControlForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    secret: String,
}

/// `POST /karajo/app/{kind}/{id}/control`.
pub async fn control(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
    Form(form): Form<ControlForm>,
) -> Result<Response, WuiError> {
    authorise(&state, &headers, &form)?;
    let job_kind = parse_kind(&kind).ok_or(WuiError::JobNotFound)?;
    let view = find_job(&state, &kind, &id)?;
    let key = JobKey {
        kind: job_kind,
        id: view.id().clone(),
    };
    let page = view::job_href(job_kind, key.id.as_str());
    let back = |notice: &str| Redirect::to(&format!("{page}?notice={notice}")).into_response();
    let who = access::session(&state, &headers).map_or_else(|| "secret".to_string(), |s| s.user);
    tracing::info!(job = %key, action = %form.action, by = %who, "web UI control");
    match form.action.as_str() {
        "run" => match state
            .scheduler
            .trigger(key.clone(), Trigger::Api, None)
            .await
        {
            Ok(view) if view.queued => Ok(back("queued")),
            Ok(view) if view.status == RunStatus::Running => {
                Ok(
                    Redirect::to(&view::log_href(job_kind, key.id.as_str(), view.counter))
                        .into_response(),
                )
            }
            Ok(_) => Ok(Redirect::to(&page).into_response()),
            Err(TriggerError::Paused) => Ok(back("paused-refused")),
            Err(TriggerError::Busy) => Ok(back("busy")),
            Err(TriggerError::NotFound(_)) => Err(WuiError::JobNotFound),
            Err(TriggerError::ShuttingDown) => Err(WuiError::ShuttingDown),
        },
        "pause" => state
            .scheduler
            .pause(key)
            .await
            .map(|_| back("paused"))
            .ok_or(WuiError::JobNotFound),
        "resume" => state
            .scheduler
            .resume(key)
            .await
            .map(|_| back("resumed"))
            .ok_or(WuiError::JobNotFound),
        "cancel" => state
            .scheduler
            .cancel(key)
            .await
            .map(|_| back("canceled"))
            .ok_or(WuiError::JobNotFound),
        _ => Err(WuiError::BadAction),
    }
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
        let secret = state.live().config.secret.clone();
        let ok =
            !form.secret.is_empty() && bool::from(secret.as_bytes().ct_eq(form.secret.as_bytes()));
        if ok {
            Ok(())
        } else {
            Err(WuiError::WrongSecret)
        }
    }
}
