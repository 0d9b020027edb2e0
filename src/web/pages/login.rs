//! Logging in and out: the login page and its form (`POST /karajo/login`, a redirect
//! on success), the original's `POST /karajo/api/auth/login` (JSON answers), and
//! `POST /karajo/logout`.
//!
//! Passwords are checked with bcrypt on a blocking thread, a few at a time, behind the
//! login throttle ([`crate::auth::throttle`]): a client or user name that failed too
//! often, or that already has a check in flight, gets `429` with `Retry-After` and no
//! bcrypt at all. The client is the connection's peer address, or the address a
//! `trusted_proxy` forwards ([`crate::web::peer`]).
//!
//! Login CSRF: the form carries a token that is an HMAC (with a key made at each
//! start) of a random value in the `karajo_login` cookie (`HttpOnly`, `SameSite=Lax`)
//! that the login page sets: the signed double-submit cookie of OWASP's CSRF cheat
//! sheet, which binds the token to that pre-session. A post without both, or a
//! browser's cross-site post (`Sec-Fetch-Site`), is refused with `403`. The JSON API
//! has no form to carry a token, so it refuses what only a browser sends across sites:
//! a `Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` that is not this
//! server; non-browser clients send neither and keep working.
//!
//! The session cookie is `HttpOnly`, `SameSite=Lax`, `Path=/`, lives as long as the
//! session, and is `Secure` when a trusted proxy says the request came over HTTPS.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};

use super::{Chrome, WuiError, html};
use crate::auth::session::{self, SessionInfo};
use crate::auth::throttle::Throttled;
use crate::auth::user::{self, LoginError};
use crate::web::access::{self, SESSION_COOKIE};
use crate::web::peer::{self, Peer};
use crate::web::{AppState, api::json};

/// Where a login goes when it names nowhere (or somewhere outside the UI).
const HOME: &str = "/karajo/app/";
/// The message of every refused login, as the original's.
const REFUSED: &str = "invalid user name and/or password";
/// The cookie holding the login form's pre-session value.
const LOGIN_COOKIE: &str = "karajo_login";
/// What the login form's token signs, before the cookie's value.
const TOKEN_CONTEXT: &[u8] = b"karajo login form\n";

/// The connection's peer, as the server records it (absent in some embeddings).
pub(super) type Connect = Option<Extension<ConnectInfo<SocketAddr>>>;

/// The login form's fields; also the API's (which has no `csrf`).
#[derive(Debug, serde::Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    csrf: String,
}

/// `?next=` of the login page.
#[derive(Debug, serde::Deserialize)]
pub(super) struct NextQuery {
    #[serde(default)]
    next: String,
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    error: Option<String>,
    next: String,
    name: String,
    csrf: String,
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

fn peer_of(state: &AppState, connect: &Connect, headers: &HeaderMap) -> Peer {
    let addr = connect.as_ref().map(|Extension(ConnectInfo(a))| *a);
    peer::peer(&state.config().trusted_proxy, addr, headers)
}

/// `GET /karajo/login`: the form, with a token for the `karajo_login` cookie (set
/// here when the browser has none).
pub(super) async fn page(
    State(state): State<AppState>,
    connect: Connect,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Result<Response, WuiError> {
    let next = safe_next(&query.next);
    if !access::users_exist(&state) || access::session(&state, &headers).is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let (nonce, fresh) = match login_cookie(&headers) {
        Some(nonce) => (nonce.to_string(), false),
        None => (session::random_key(), true),
    };
    let mut res = html(&LoginPage {
        chrome: Chrome::new(&state, None),
        error: None,
        next,
        name: String::new(),
        csrf: form_token(&state, &nonce),
    })?;
    if fresh {
        let https = peer_of(&state, &connect, &headers).https;
        let cookie = format!(
            "{LOGIN_COOKIE}={nonce}; Path=/karajo/login; HttpOnly; SameSite=Lax{}",
            secure_suffix(https)
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            res.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    Ok(res)
}

/// `POST /karajo/login`: a session and a redirect; the form again with an error
/// (`400`, or `429` while the throttle refuses); `403` without a valid token.
pub(super) async fn submit(
    State(state): State<AppState>,
    connect: Connect,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WuiError> {
    if cross_site(&headers) {
        return Err(WuiError::Csrf);
    }
    let nonce = login_cookie(&headers).ok_or(WuiError::Csrf)?;
    if !token_matches(&state, nonce, &form.csrf) {
        return Err(WuiError::Csrf);
    }
    let peer = peer_of(&state, &connect, &headers);
    let next = safe_next(&form.next);
    let (status, error, retry) = match login(&state, peer.client, &form).await? {
        Outcome::LoggedIn(session) => {
            let mut res = Redirect::to(&next).into_response();
            set_cookie(&mut res, &state, peer.https, &session);
            return Ok(res);
        }
        Outcome::Refused => (
            StatusCode::BAD_REQUEST,
            "Invalid user name and/or password.".to_string(),
            None,
        ),
        Outcome::Throttled(why) => (
            StatusCode::TOO_MANY_REQUESTS,
            throttled_text(why),
            Some(why),
        ),
    };
    let mut res = html(&LoginPage {
        chrome: Chrome::new(&state, None),
        error: Some(error),
        next,
        name: form.name.trim().to_string(),
        csrf: form_token(&state, nonce),
    })?;
    *res.status_mut() = status;
    if let Some(why) = retry {
        retry_after(&mut res, why);
    }
    Ok(res)
}

/// `POST /karajo/api/auth/login` (the original's): `{"code":200}` and the cookie,
/// `400 ERR_AUTH_LOGIN`, `429 ERR_AUTH_THROTTLED` with `Retry-After`, or `403` for a
/// browser's cross-site request.
pub(super) async fn api(
    State(state): State<AppState>,
    connect: Connect,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let peer = peer_of(&state, &connect, &headers);
    if cross_site(&headers) || !same_origin(&headers, peer.via_proxy) {
        return json::response(
            StatusCode::FORBIDDEN,
            json::error_object("cross-site login refused", "ERR_AUTH_LOGIN", 403),
        );
    }
    match login(&state, peer.client, &form).await {
        Ok(Outcome::LoggedIn(session)) => {
            let mut res = json::response(StatusCode::OK, "{\"code\":200}".to_string());
            set_cookie(&mut res, &state, peer.https, &session);
            res
        }
        Ok(Outcome::Refused) => json::response(
            StatusCode::BAD_REQUEST,
            json::error_object(REFUSED, "ERR_AUTH_LOGIN", 400),
        ),
        Ok(Outcome::Throttled(why)) => {
            let message = throttled_text(why);
            let mut res = json::response(
                StatusCode::TOO_MANY_REQUESTS,
                json::error_object(&message, "ERR_AUTH_THROTTLED", 429),
            );
            retry_after(&mut res, why);
            res
        }
        Err(err) => err.into_response(),
    }
}

/// What a login attempt came to.
enum Outcome {
    LoggedIn(SessionInfo),
    Refused,
    Throttled(Throttled),
}

/// Checks the form's name and password (trimmed, as the original) for `client` and
/// starts a session. The throttle may refuse before bcrypt runs; the result is
/// recorded on the blocking thread, so it counts even if the request goes away.
async fn login(
    state: &AppState,
    client: Option<IpAddr>,
    form: &LoginForm,
) -> Result<Outcome, WuiError> {
    let users = state.config().users.clone();
    let name = form.name.trim().to_string();
    let password = form.password.trim().to_string();
    if users.is_empty() || name.is_empty() || password.is_empty() {
        return Ok(Outcome::Refused);
    }
    let known = users.iter().any(|u| u.name == name);
    let attempt = match state
        .wui
        .login_throttle
        .begin(client, &name, known, Instant::now())
    {
        Ok(attempt) => attempt,
        Err(why) => {
            tracing::info!(client = ?client, user = %name, ?why, "login throttled");
            return Ok(Outcome::Throttled(why));
        }
    };
    let permit = state.wui.login_checks.clone().acquire_owned().await;
    let checked = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let checked = user::verify(&users, &name, &password);
        match &checked {
            Ok(_) => attempt.succeeded(),
            Err(LoginError::UnknownUser(_) | LoginError::WrongPassword(_)) => {
                attempt.failed(Instant::now());
            }
            Err(LoginError::Empty | LoginError::BadHash { .. }) => drop(attempt),
        }
        checked
    })
    .await?;
    match checked {
        Ok(user) => {
            tracing::info!(%user, client = ?client, "logged in");
            Ok(Outcome::LoggedIn(
                state.sessions.create(&user, state.clock.now()),
            ))
        }
        Err(err @ LoginError::BadHash { .. }) => {
            tracing::error!(%err, "login refused");
            Ok(Outcome::Refused)
        }
        Err(err) => {
            tracing::info!(%err, client = ?client, "login refused");
            Ok(Outcome::Refused)
        }
    }
}

fn throttled_text(why: Throttled) -> String {
    let secs = why.retry_after_secs();
    let unit = if secs == 1 { "second" } else { "seconds" };
    match why {
        Throttled::BackedOff { .. } => {
            format!("Too many failed logins. Try again in {secs} {unit}.")
        }
        Throttled::Busy => {
            format!("Another login is being checked. Try again in {secs} {unit}.")
        }
    }
}

fn retry_after(res: &mut Response, why: Throttled) {
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(why.retry_after_secs()),
    );
}

/// The value of the `karajo_login` cookie, when it looks like one karajo set.
fn login_cookie(headers: &HeaderMap) -> Option<&str> {
    access::cookie(headers, LOGIN_COOKIE)
        .filter(|v| v.len() == session::KEY_LEN && v.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The login form's token for the cookie value `nonce`: hex HMAC-SHA256 with the
/// daemon's login key.
fn form_token(state: &AppState, nonce: &str) -> String {
    let mut signed = TOKEN_CONTEXT.to_vec();
    signed.extend_from_slice(nonce.as_bytes());
    crate::auth::sign_hmac_sha256(state.wui.login_key.as_bytes(), &signed)
}

/// Whether `token` is the form token of `nonce` (constant time).
fn token_matches(state: &AppState, nonce: &str, token: &str) -> bool {
    let mut signed = TOKEN_CONTEXT.to_vec();
    signed.extend_from_slice(nonce.as_bytes());
    crate::auth::verify_global(state.wui.login_key.as_bytes(), Some(token), &signed).is_ok()
}

/// Whether a browser says the request comes from another site (`Sec-Fetch-Site`
/// other than `same-origin` or `none`). Browsers send it over HTTPS and to localhost.
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| !matches!(v.as_bytes(), b"same-origin" | b"none"))
}

/// Whether the request's `Origin`, when it has one, is this server: its host and
/// port are the `Host` header's (or, from a trusted proxy, `X-Forwarded-Host`'s).
/// Browsers send `Origin` with every cross-origin `POST`; other clients rarely do.
fn same_origin(headers: &HeaderMap, via_proxy: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some((scheme, authority)) = origin.to_str().ok().and_then(|o| o.split_once("://")) else {
        return false;
    };
    let normal = |host: &str| {
        let host = host.trim().to_ascii_lowercase();
        let default = if scheme.eq_ignore_ascii_case("https") {
            ":443"
        } else {
            ":80"
        };
        host.strip_suffix(default)
            .map(str::to_string)
            .unwrap_or(host)
    };
    let origin = normal(authority);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(normal);
    let forwarded = via_proxy
        .then(|| headers.get("x-forwarded-host"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(normal);
    host.as_deref() == Some(origin.as_str()) || forwarded.as_deref() == Some(origin.as_str())
}

/// The logout form.
#[derive(Debug, serde::Deserialize)]
pub(super) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /karajo/logout`: ends the session (its CSRF token must match) and clears the
/// cookie.
pub(super) async fn logout(
    State(state): State<AppState>,
    connect: Connect,
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
    let https = peer_of(&state, &connect, &headers).https;
    let cookie = format!(
        "{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        secure_suffix(https)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(res)
}

fn set_cookie(res: &mut Response, state: &AppState, https: bool, session: &SessionInfo) {
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
        session.key,
        state.sessions.lifetime().as_secs(),
        secure_suffix(https)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// `; Secure` when a trusted proxy says the request came over HTTPS. karajo itself
/// serves plain HTTP.
fn secure_suffix(https: bool) -> &'static str {
    if https { "; Secure" } else { "" }
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
        // Only a trusted proxy's word makes the cookie Secure (see http::peer for the
        // headers); a client's own header is ignored.
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let from: Option<SocketAddr> = Some("192.0.2.1:4000".parse().unwrap());
        let https = |trusted: &[crate::config::IpNet], h: &HeaderMap| {
            secure_suffix(peer::peer(trusted, from, h).https)
        };
        assert_eq!(https(&[], &h), "");
        let proxy = ["192.0.2.1".parse().unwrap()];
        assert_eq!(https(&proxy, &h), "; Secure");
        assert_eq!(https(&proxy, &HeaderMap::new()), "");
        let mut h = HeaderMap::new();
        h.insert(
            header::FORWARDED,
            HeaderValue::from_static("for=1.2.3.4;proto=https"),
        );
        assert_eq!(https(&proxy, &h), "; Secure");
        assert_eq!(https(&[], &h), "");
    }

    #[test]
    fn cross_site_and_foreign_origins_are_told_apart() {
        let mut h = HeaderMap::new();
        assert!(!cross_site(&h) && same_origin(&h, false));
        for (site, cross) in [
            ("same-origin", false),
            ("none", false),
            ("same-site", true),
            ("cross-site", true),
        ] {
            h.insert("sec-fetch-site", HeaderValue::from_static(site));
            assert_eq!(cross_site(&h), cross, "{site}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            HeaderValue::from_static("karajo.example:8080"),
        );
        for (origin, same) in [
            ("http://karajo.example:8080", true),
            ("https://KARAJO.example:8080", true),
            ("http://evil.example", false),
            ("null", false),
            ("http://karajo.example", false),
        ] {
            h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
            assert_eq!(same_origin(&h, false), same, "{origin}");
        }
        h.insert(header::HOST, HeaderValue::from_static("karajo.example"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://karajo.example:443"),
        );
        assert!(same_origin(&h, false));
        // Behind a trusted proxy that rewrites Host.
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:31937"));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("karajo.example"),
        );
        assert!(same_origin(&h, true));
        assert!(!same_origin(&h, false));
    }
}
