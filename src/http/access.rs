//! Who may read. With no users in `user.conf` everything readable is open, as in the
//! original. When users exist, the read endpoints of the API (and every web UI page)
//! need a valid session cookie, and the API's read endpoints also accept a signature:
//! `X-Karajo-Sign` = hex HMAC-SHA256 of the raw query string (exactly as sent, empty
//! when there is none) with the global secret; a `_karajo_epoch` in the query must be
//! within `epoch_window`. [`require_reader`] is the one middleware that enforces this on
//! the group of read routes; the web UI uses [`session`] for its pages.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::json;
use crate::auth::session::SessionInfo;
use crate::auth::{check_epoch, verify_global};

/// The name of the session cookie, as the original's.
pub const SESSION_COOKIE: &str = "karajo";

/// Whether `user.conf` defines at least one user.
pub fn users_exist(state: &AppState) -> bool {
    !state.live().config.users.is_empty()
}

/// The value of the `karajo` cookie, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie `wanted`, if the request has one.
pub fn cookie<'a>(headers: &'a HeaderMap, wanted: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.trim_matches('"'))
}

/// The request's valid session, if any. Sessions of users no longer in `user.conf`
/// end here.
pub fn session(state: &AppState, headers: &HeaderMap) -> Option<SessionInfo> {
    let key = session_cookie(headers)?;
    let live = state.live();
    state.sessions.get(key, state.clock.now(), |user| {
        live.config.users.iter().any(|u| u.name == user)
    })
}

/// Whether the request carries a valid `X-Karajo-Sign` over its raw query string.
pub fn signed_query(state: &AppState, headers: &HeaderMap, query: &str) -> bool {
    let live = state.live();
    let signature = headers.get("x-karajo-sign").and_then(|v| v.to_str().ok());
    verify_global(live.config.secret.as_bytes(), signature, query.as_bytes()).is_ok()
        && check_epoch(
            query.as_bytes(),
            state.clock.now(),
            live.config.epoch_window,
        )
        .is_ok()
}

/// The middleware of the read routes: passes when there are no users, or the request
/// has a valid session or signature; otherwise `401` with an error object.
pub async fn require_reader(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let allowed = !users_exist(&state)
        || session(&state, req.headers()).is_some()
        || signed_query(&state, req.headers(), req.uri().query().unwrap_or(""));
    if allowed {
        next.run(req).await
    } else {
        let body = json::error_object(
            "login or a signature is required",
            "ERR_UNAUTHORIZED",
            StatusCode::UNAUTHORIZED.as_u16(),
        );
        let mut res = json::response(StatusCode::UNAUTHORIZED, body);
        res.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("X-Karajo-Sign"),
        );
        res
    }
}
