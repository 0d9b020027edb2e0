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
use axum::response::{IntoResponse as _, Response};

use super::AppState;
use super::api::json;
use crate::auth::session::SessionInfo;
use crate::auth::{AuthError, HEADER_KARAJO_SIGN, ReplayError, verify_global};

pub use crate::auth::session::SESSION_COOKIE;

/// Whether `user.conf` defines at least one user.
pub fn users_exist(state: &AppState) -> bool {
    !state.config().users.is_empty()
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
    let config = state.config();
    state.sessions.get(key, state.clock.now(), |user| {
        config.users.iter().any(|u| u.name == user)
    })
}

/// Why a request signed with the global secret was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignRefusal {
    /// The signature is missing or does not verify.
    Signature(AuthError),
    /// The signature verified but its stamp is missing or stale, or it was used before.
    Stamp(ReplayError),
}

/// Whether the request carries an `X-Karajo-Sign` at all (checked before reading a body).
pub fn has_signature(headers: &HeaderMap) -> bool {
    headers
        .get(HEADER_KARAJO_SIGN)
        .is_some_and(|v| !v.is_empty())
}

/// Accepts a request whose `X-Karajo-Sign` is the global secret's HMAC of `signed` (the
/// raw body or query string) stamped within the rules, and spends the signature; every
/// parameter the caller uses must come from `signed`.
pub fn accept_global_signature(
    state: &AppState,
    headers: &HeaderMap,
    signed: &[u8],
) -> Result<(), SignRefusal> {
    let config = state.config();
    let signature = headers
        .get(HEADER_KARAJO_SIGN)
        .and_then(|v| v.to_str().ok());
    let id = verify_global(config.secret.as_bytes(), signature, signed)
        .map_err(SignRefusal::Signature)?;
    state
        .replay
        .accept_signed(id, signed, &config.stamp_rules(), state.clock.now())
        .map_err(SignRefusal::Stamp)
}

/// The middleware of the read routes: passes when there are no users, or the request
/// has a valid session or signature; otherwise `401` with an error object.
pub async fn require_reader(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !users_exist(&state) || session(&state, req.headers()).is_some() {
        return next.run(req).await;
    }
    let query = req.uri().query().unwrap_or("").as_bytes();
    let why = match accept_global_signature(&state, req.headers(), query) {
        Ok(()) => return next.run(req).await,
        Err(SignRefusal::Stamp(err)) if err.is_reuse() => {
            return super::api::ApiError::replayed(err.to_string()).into_response();
        }
        Err(SignRefusal::Stamp(err)) => err.to_string(),
        Err(SignRefusal::Signature(_)) => "login or a signature is required".to_owned(),
    };
    {
        let body = json::error_object(&why, "ERR_UNAUTHORIZED", StatusCode::UNAUTHORIZED.as_u16());
        let mut res = json::response(StatusCode::UNAUTHORIZED, body);
        res.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static(HEADER_KARAJO_SIGN),
        );
        res
    }
}
