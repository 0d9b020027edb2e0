//! What karajo must not expose, end to end: HTTP jobs' secret header values and URL
//! user info (sent for real to an upstream on 127.0.0.1, then looked for in the run
//! logs, the environment JSON, the job API, the web UI's pages with and without users,
//! and a webhook notification), the public directory's redirects and headers, and the
//! modes of the files and directories under `dir_base/var`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::any;
use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::*;
use crate::notify::{next_hit, webhook_server};

/// The secret values the jobs below send; none may show anywhere but upstream.
const BEARER: &str = "Bearer xyz-bearer-8d1f";
const API_KEY: &str = "abc-apikey-5e2c";
const TENANT: &str = "tenant-hidden-3a9b";
const PASSWORD: &str = "pw-url-secret-7c4d";
const SIGN_KEY: &str = "own-sign-key-2b6e";
/// Sent back by the upstream in response headers.
const COOKIE: &str = "sid=cookie-secret-9f0a";
const RESPONSE_TOKEN: &str = "response-token-1e7d";

/// Every request the upstream saw: its headers and body.
type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// An upstream on 127.0.0.1 that records each request and answers 200 with a
/// `Set-Cookie` and an `X-Refresh-Token` header.
async fn upstream() -> (String, Seen) {
    async fn handle(State(seen): State<Seen>, req: Request) -> impl IntoResponse {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        seen.lock()
            .unwrap()
            .push((parts.headers, String::from_utf8_lossy(&body).into_owned()));
        (
            [
                ("set-cookie", COOKIE),
                ("x-refresh-token", RESPONSE_TOKEN),
                ("x-request-id", "req-1"),
            ],
            "{\"ok\":true}",
        )
    }
    let seen: Seen = Arc::default();
    let app = Router::new().fallback(any(handle)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, seen)
}

/// The text with askama's HTML escapes of `<`, `>` and `&` undone.
fn unescape(html: &str) -> String {
    html.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// Fails when `text` holds any secret value (`what` names where it was found).
fn assert_no_secret(what: &str, text: &str, extra: &[&str]) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("u:{PASSWORD}"));
    for secret in [
        "xyz-bearer-8d1f",
        API_KEY,
        TENANT,
        PASSWORD,
        SIGN_KEY,
        COOKIE,
        "cookie-secret-9f0a",
        RESPONSE_TOKEN,
        basic.as_str(),
    ]
    .iter()
    .chain(extra)
    {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

fn http_log(dir: &TestDir, id: &str, counter: u64, status: &str) -> std::path::PathBuf {
    dir.base()
        .join("var/log/karajo/job_http")
        .join(id)
        .join(format!("{id}.{counter}.{status}"))
}

#[tokio::test]
async fn secret_headers_and_url_user_info_are_sent_but_never_shown() {
    let (address, seen) = upstream().await;
    let (hook_url, mut hits) = webhook_server(Vec::new()).await;
    let dir = TestDir::new(&format!(
        r#"
[job.http "bearer"]
interval = 1h
http_method = POST
http_url = http://{address}/bearer
http_request_type = json
http_header = Authorization: {BEARER}
http_header = X-Api-Key: {API_KEY}
http_header = X-Tenant: {TENANT}
http_header = X-Visible: shown-value
http_header_secret = X-Tenant
notif_on_success = chat

[job.http "basic"]
interval = 1h
http_url = http://u:{PASSWORD}@{address}/basic
secret = {SIGN_KEY}
header_sign = X-Hook-Mac
notif_on_success = chat

[notif "chat"]
kind = webhook
url = {hook_url}
"#
    ));
    let d = TestDaemon::start(&dir).await;
    let requests = wait_for("two upstream requests", || async {
        let seen = seen.lock().unwrap().clone();
        (seen.len() >= 2).then_some(seen)
    })
    .await;

    // Upstream got the real values.
    let bearer = requests
        .iter()
        .find(|(h, _)| h.contains_key("x-api-key"))
        .expect("the bearer job's request");
    assert_eq!(bearer.0["authorization"], BEARER);
    assert_eq!(bearer.0["x-api-key"], API_KEY);
    assert_eq!(bearer.0["x-tenant"], TENANT);
    assert_eq!(bearer.0["x-visible"], "shown-value");
    let sign = karajo::auth::sign_hmac_sha256(SECRET.as_bytes(), bearer.1.as_bytes());
    assert_eq!(bearer.0["x-karajo-sign"], sign.as_str());
    let basic = requests
        .iter()
        .find(|(h, _)| h.contains_key("x-hook-mac"))
        .expect("the basic job's request");
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("u:{PASSWORD}"));
    assert_eq!(basic.0["authorization"], format!("Basic {credentials}"));
    let mac = basic.0["x-hook-mac"].to_str().unwrap().to_string();
    assert_eq!(mac.len(), 64);
    let signatures = [sign.clone(), mac.clone()];
    let signatures: Vec<&str> = signatures.iter().map(String::as_str).collect();

    // The run logs show the names, not the values.
    let bearer_log = wait_for("the bearer job's log", || async {
        std::fs::read_to_string(http_log(&dir, "bearer", 1, "success")).ok()
    })
    .await;
    for line in [
        "bearer: authorization: <redacted>\n",
        "bearer: x-api-key: <redacted>\n",
        "bearer: x-tenant: <redacted>\n",
        "bearer: x-karajo-sign: <redacted>\n",
        "bearer: x-visible: shown-value\n",
        "bearer: set-cookie: <redacted>\n",
        "bearer: x-refresh-token: <redacted>\n",
        "bearer: x-request-id: req-1\n",
    ] {
        assert!(bearer_log.contains(line), "missing {line:?}:\n{bearer_log}");
    }
    assert_no_secret("the bearer job's log", &bearer_log, &signatures);
    let basic_log = wait_for("the basic job's log", || async {
        std::fs::read_to_string(http_log(&dir, "basic", 1, "success")).ok()
    })
    .await;
    for line in [
        "basic: GET /basic?_karajo_epoch=",
        "basic: authorization: <redacted>\n",
        "basic: x-hook-mac: <redacted>\n",
    ] {
        assert!(basic_log.contains(line), "missing {line:?}:\n{basic_log}");
    }
    assert_no_secret("the basic job's log", &basic_log, &signatures);

    // Both notifications quote the redacted logs.
    for _ in 0..2 {
        let hit = next_hit(&mut hits).await;
        let body = String::from_utf8(hit.body).unwrap();
        let doc: Value = serde_json::from_str(&body).unwrap();
        let tail = doc["log_tail"].as_str().unwrap();
        assert!(tail.contains("authorization: <redacted>"), "{tail}");
        assert_no_secret("a notification", &body, &signatures);
    }

    // The environment JSON and the job API.
    let env_text = d
        .http
        .get(d.url("/karajo/api/environment"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_no_secret("the environment", &env_text, &signatures);
    let env: Value = serde_json::from_str(&env_text).unwrap();
    let jobs = &env["data"]["http_jobs"];
    assert_eq!(
        jobs["bearer"]["http_headers"],
        serde_json::json!([
            "Authorization: <redacted>",
            "X-Api-Key: <redacted>",
            "X-Tenant: <redacted>",
            "X-Visible: shown-value"
        ])
    );
    assert_eq!(
        jobs["bearer"]["http_url"],
        format!("http://{address}/bearer")
    );
    assert_eq!(
        jobs["basic"]["http_url"],
        format!("http://<redacted>@{address}/basic")
    );
    assert_eq!(jobs["basic"]["header_sign"], "X-Hook-Mac");
    for id in ["bearer", "basic"] {
        let text = d
            .http
            .get(d.url(&format!("/karajo/api/job_http?id={id}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains(r#"\u003credacted\u003e"#), "{text}");
        assert_no_secret("the job API", &text, &signatures);
    }

    // The web UI, open to anyone without users.
    let pages = |http: reqwest::Client, cookie: Option<String>| {
        let d = &d;
        async move {
            let mut texts = Vec::new();
            for path in [
                "/karajo/app/",
                "/karajo/app/job_http/bearer",
                "/karajo/app/job_http/basic",
                "/karajo/app/job_http/bearer/log/1",
                "/karajo/app/job_http/bearer/log/1/raw",
                "/karajo/app/job_http/basic/log/1",
            ] {
                let mut req = http.get(d.url(path));
                if let Some(cookie) = &cookie {
                    req = req.header("cookie", cookie);
                }
                let res = req.send().await.unwrap();
                assert_eq!(res.status(), 200, "{path}");
                texts.push((path, unescape(&res.text().await.unwrap())));
            }
            texts
        }
    };
    for (path, page) in pages(d.http.clone(), None).await {
        assert_no_secret(path, &page, &signatures);
        match path {
            "/karajo/app/job_http/bearer" => {
                for shown in [
                    "Authorization: <redacted>",
                    "X-Api-Key: <redacted>",
                    "X-Tenant: <redacted>",
                    "X-Visible: shown-value",
                ] {
                    assert!(page.contains(shown), "{path}: missing {shown:?}");
                }
            }
            "/karajo/app/job_http/basic" => {
                let want = format!("GET http://<redacted>@{address}/basic");
                assert!(page.contains(&want), "{path}: missing {want:?}:\n{page}");
            }
            "/karajo/app/job_http/bearer/log/1" | "/karajo/app/job_http/bearer/log/1/raw" => {
                assert!(page.contains("authorization: <redacted>"), "{path}");
            }
            _ => {}
        }
    }

    // With users, after logging in: the same.
    let hash = bcrypt::hash("login-pass", 4).unwrap();
    dir.write(
        "etc/karajo/user.conf",
        &format!("[user \"admin\"]\npassword = {hash}\n"),
    );
    d.daemon.as_ref().unwrap().reload().await.unwrap();
    let res = d
        .http
        .post(d.url("/karajo/api/auth/login"))
        .form(&[("name", "admin"), ("password", "login-pass")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    for (path, page) in pages(d.http.clone(), Some(cookie)).await {
        assert_no_secret(path, &page, &signatures);
        if path == "/karajo/app/job_http/bearer" {
            assert!(page.contains("Authorization: <redacted>"), "{path}");
        }
    }
    d.stop().await;
}

/// A raw request (the path exactly as given); the status and the headers, lower-cased
/// names.
async fn raw_get(d: &TestDaemon, path: &str, extra: &str) -> (u16, Vec<(String, String)>) {
    let addr = d.daemon.as_ref().unwrap().local_addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn public_redirects_stay_on_this_origin_and_public_files_are_sandboxed() {
    let dir = TestDir::new("");
    let public = dir.base().join("public");
    std::fs::create_dir_all(public.join("evil.example")).unwrap();
    std::fs::create_dir_all(public.join("docs/sub")).unwrap();
    std::fs::write(
        public.join("index.html"),
        "<script>fetch('/karajo/api/environment')</script>",
    )
    .unwrap();
    std::fs::write(public.join("docs/a.txt"), "text").unwrap();
    let conf = std::fs::read_to_string(dir.config_file())
        .unwrap()
        .replacen(
            "[karajo]\n",
            &format!("[karajo]\ndir_public = {}\n", public.display()),
            1,
        );
    dir.write("etc/karajo/karajo.conf", &conf);
    let d = TestDaemon::start(&dir).await;

    for (path, want) in [
        ("//evil.example", "/evil.example/"),
        ("///evil.example", "/evil.example/"),
        ("/evil.example", "/evil.example/"),
        ("/docs//sub", "/docs/sub/"),
        ("//docs///sub", "/docs/sub/"),
    ] {
        let (status, headers) = raw_get(&d, path, "").await;
        assert_eq!(status, 303, "{path}");
        assert_eq!(header(&headers, "location"), Some(want), "{path}");
    }
    // The web UI's paths are never served from dir_public, and redirect nowhere.
    for path in ["/karajo//evil.example", "/karajo//evil.example/"] {
        let (status, headers) = raw_get(&d, path, "").await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(header(&headers, "location"), None, "{path}");
    }

    for path in [
        "/",
        "/index.html",
        "/docs/a.txt",
        "/evil.example/../docs/a.txt",
    ] {
        let (status, headers) = raw_get(&d, path, "").await;
        if path.contains("..") {
            assert_eq!(status, 404, "{path}");
            continue;
        }
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            header(&headers, "content-security-policy"),
            Some("sandbox"),
            "{path}"
        );
        assert_eq!(
            header(&headers, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        // A revalidation (304) carries them too.
        let etag = header(&headers, "etag").unwrap().to_string();
        let (status, headers) = raw_get(&d, path, &format!("If-None-Match: {etag}\r\n")).await;
        assert_eq!(status, 304, "{path}");
        assert_eq!(
            header(&headers, "content-security-policy"),
            Some("sandbox"),
            "{path}"
        );
    }
    d.stop().await;
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[tokio::test]
async fn files_under_var_are_private_and_old_directories_are_tightened() {
    let dir = TestDir::new("");
    let base = dir.base().to_path_buf();
    // Directories an earlier version left open to everyone.
    let old = [
        base.join("var/run/karajo/groups"),
        base.join("var/log/karajo/job"),
        base.join("var/lib/karajo/request"),
        base.join("var/lib/karajo/notify"),
    ];
    for d in &old {
        std::fs::create_dir_all(d).unwrap();
    }
    for d in old.iter().chain(&[
        base.join("var/run/karajo"),
        base.join("var/log/karajo"),
        base.join("var/lib/karajo"),
    ]) {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let groups = base.join("var/run/karajo/groups");
    // The command reports the modes of its request body file and of the process
    // groups' journal while it runs (its record is written just after the command
    // starts, so it waits for the journal). Nothing listens on port 1, so the notification
    // stays in the spool.
    let conf = format!(
        "[job \"modes\"]\npath = /modes\n\
         command = stat -c body=%a $KARAJO_REQUEST_BODY\n\
         command = \"r={groups}/journal; \
         for i in $(seq 400); do [ -f $r ] && break; sleep 0.05; done; \
         stat -c record=%a $r\"\n\
         command = stat -c groups=%a {groups}\n\
         notif_on_success = down\n\n\
         [notif \"down\"]\nkind = webhook\nurl = http://127.0.0.1:1/hook\n",
        groups = groups.display()
    );
    let dir_conf = std::fs::read_to_string(dir.config_file()).unwrap() + &conf;
    dir.write("etc/karajo/karajo.conf", &dir_conf);
    let d = TestDaemon::start(&dir).await;
    for d in old.iter().chain(&[
        base.join("var/run/karajo"),
        base.join("var/log/karajo"),
        base.join("var/lib/karajo"),
    ]) {
        assert_eq!(mode(d), 0o700, "{} tightened at start", d.display());
    }

    assert_eq!(d.run_hook("/modes", &epoch_body()).await.status(), 200);
    let log = dir.wait_log("modes", 1, "success").await;
    for line in [
        "modes: body=600\n",
        "modes: record=600\n",
        "modes: groups=700\n",
    ] {
        assert!(log.contains(line), "missing {line:?}:\n{log}");
    }

    let log_dir = base.join("var/log/karajo/job/modes");
    assert_eq!(mode(&log_dir), 0o700);
    assert_eq!(mode(&log_dir.join("modes.1.success")), 0o600);
    assert_eq!(mode(&base.join("var/lib/karajo/job/modes")), 0o700);
    let state = base.join("var/lib/karajo/state.json");
    wait_for("the state file", || async { state.exists().then_some(()) }).await;
    assert_eq!(mode(&state), 0o600);
    let spool = base.join("var/lib/karajo/notify");
    let spooled = wait_for("a spooled notification", || async {
        std::fs::read_dir(&spool)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
    })
    .await;
    assert_eq!(mode(&spool), 0o700);
    assert_eq!(mode(&spooled), 0o600);
    // Directories karajo made itself.
    for d in [
        base.join("var/lib/karajo/job"),
        base.join("var/lib/karajo/job_http"),
        base.join("var/log/karajo/job_http"),
        base.join("var/run/karajo/job_http"),
    ] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    d.stop().await;
}
