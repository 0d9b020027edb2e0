//! Logging in and out: the login page and its form (`POST /karajo/login`, a redirect
//! on success), the original's `POST /karajo/api/auth/login` (JSON answers), and
//! `POST /karajo/logout`. Passwords are checked with bcrypt on a blocking thread, a
//! few at a time. The session cookie is `HttpOnly`, `SameSite=Lax`, `Path=/`, lives
//! as long as the session, and is `Secure` when the request came over HTTPS (as a
//! proxy in front says with `X-Forwarded-Proto: https` or `Forwarded: proto=https`).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::{Chrome, WuiError, html};
use crate::auth::session::SessionInfo;
use crate::auth::user::{self, LoginError};
use crate::http::access::{self, SESSION_COOKIE};
use crate::http::{AppState, json};

/// Where a login goes when it names nowhere (or somewhere outside the UI).
const HOME: &str = "/karajo/app/";
/// The message of every refused login, as the original's.
const REFUSED: &str = "invalid user name and/or password";

/// The login form's fields; also the API's.
#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `?next=` of the login page.
#[derive(Debug, serde::Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    error: Option<&'static str>,
    next: String,
    name: String,
}

/// Only paths inside the UI are followed after a login (no open redirects).
fn safe_next(next: &str) -> String {
    let inside = next.starts_with("/karajo/")
        && !next.starts_with("//")
        && !next.contains(['\\', '\r', '\n'])
        && !next.starts_with("/karajo/login")
        && !next.starts_with("/karajo/api/");
    if inside {
        next.to_string()
    } else {
        HOME.to_string()
    }
}

/// `GET /karajo/login`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Result<Response, WuiError> {
    let next = safe_next(&query.next);
    if !access::users_exist(&state) || access::session(&state, &headers).is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    html(&LoginPage {
        chrome: Chrome::new(&state, None),
        error: None,
        next,
        name: String::new(),
    })
}

/// `POST /karajo/login`: a session and a redirect, or the form again with an error.
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WuiError> {
    let next = safe_next(&form.next);
    match check(&state, &form).await? {
        Some(session) => {
            let mut res = Redirect::to(&next).into_response();
            set_cookie(&mut res, &state, &headers, &session);
            Ok(res)
        }
        None => {
            let mut res = html(&LoginPage {
                chrome: Chrome::new(&state, None),
                error: Some("Invalid user name and/or password."),
                next,
                name: form.name.trim().to_string(),
            })?;
            *res.status_mut() = StatusCode::BAD_REQUEST;
            Ok(res)
        }
    }
}

/// `POST /karajo/api/auth/login` (the original's): `{"code":200}` and the cookie, or
/// `400 ERR_AUTH_LOGIN`.
pub async fn api(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    match check(&state, &form).await {
        Ok(Some(session)) => {
            let mut res = json::response(StatusCode::OK, "{\"code\":200}".to_string());
            set_cookie(&mut res, &state, &headers, &session);
            res
        }
        Ok(None) => json::response(
            StatusCode::BAD_REQUEST,
            json::error_object(REFUSED, "ERR_AUTH_LOGIN", 400),
        ),
        Err(err) => err.into_response(),
    }
}

/// Checks the form's name and password (trimmed, as the original) and starts a
/// session; `None` when refused.
async fn check(state: &AppState, form: &LoginForm) -> Result<Option<SessionInfo>, WuiError> {
    let users = state.live().config.users.clone();
    if users.is_empty() {
        return Ok(None);
    }
    let name = form.name.trim().to_string();
    let password = form.password.trim().to_string();
    let permit = state.wui.login_checks.clone().acquire_owned().await;
    let checked = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        user::verify(&users, &name, &password)
    })
    .await?;
    match checked {
        Ok(user) => {
            tracing::info!(%user, "logged in");
            Ok(Some(state.sessions.create(&user, state.clock.now())))
        }
        Err(err @ LoginError::BadHash { .. }) => {
            tracing::error!(%err, "login refused");
            Ok(None)
        }
        Err(err) => {
            tracing::info!(%err, "login refused");
            Ok(None)
        }
    }
}

/// The logout form.
#[derive(Debug, serde::Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /karajo/logout`: ends the session (its CSRF token must match) and clears the
/// cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, WuiError> {
    if let Some(session) = access::session(&state, &headers) {
        if !session.csrf_matches(&form.csrf) {
            return Err(WuiError::Csrf);
        }
        state.sessions.remove(&session.key);
        tracing::info!(user = %session.user, "logged out");
    }
    let mut res = Redirect::to("/karajo/login").into_response();
    let cookie = format!(
        "{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        secure_suffix(&headers)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(res)
}

fn set_cookie(res: &mut Response, state: &AppState, headers: &HeaderMap, session: &SessionInfo) {
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
        session.key,
        state.sessions.lifetime().as_secs(),
        secure_suffix(headers)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, value);
    }
}

/// `; Secure` when the request came over HTTPS through a proxy that says so. karajo
/// itself serves plain HTTP.
fn secure_suffix(headers: &HeaderMap) -> &'static str {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| {
            first.split(';').any(|pair| {
                pair.trim().split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("proto")
                        && v.trim().trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        });
    if forwarded_proto || forwarded {
        "; Secure"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ui_paths_are_followed() {
        assert_eq!(safe_next("/karajo/app/job/x"), "/karajo/app/job/x");
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example/karajo/",
            "/karajo/login?next=x",
            "/other",
            "/karajo/\\evil",
        ] {
            assert_eq!(safe_next(bad), HOME, "{bad}");
        }
    }

    #[test]
    fn secure_follows_the_proxy() {
        let mut h = HeaderMap::new();
        assert_eq!(secure_suffix(&h), "");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(secure_suffix(&h), "; Secure");
        let mut h = HeaderMap::new();
        h.insert(
            header::FORWARDED,
            HeaderValue::from_static("for=1.2.3.4;proto=https"),
        );
        assert_eq!(secure_suffix(&h), "; Secure");
    }
}
