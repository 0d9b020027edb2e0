//! Logins over HTTP: the throttle (back-off with `429` and `Retry-After` without a
//! password check, a success clearing it, a flood that does not delay other users),
//! `trusted_proxy` (forwarded client addresses and HTTPS believed only from it), and
//! the login form's CSRF token. Distinct clients are distinct loopback addresses
//! (127.0.0.0/8 all reach the daemon on 127.0.0.1).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::helpers::*;

const ADMIN_PASSWORD: &str = "admin-password";
const BOB_PASSWORD: &str = "bob-password";
/// Failed logins that cost nothing (`karajo::auth::throttle::FREE_FAILURES`).
const FREE: usize = karajo::auth::throttle::FREE_FAILURES as usize;

/// A test directory with users `admin` and `bob` whose hashes have bcrypt `cost`, and
/// `karajo_keys` added to `[karajo]`.
fn with_users(cost: u32, karajo_keys: &str) -> TestDir {
    let dir = TestDir::new(&format!("[karajo]\n{karajo_keys}\n"));
    let admin = bcrypt::hash(ADMIN_PASSWORD, cost).expect("hash");
    let bob = bcrypt::hash(BOB_PASSWORD, cost).expect("hash");
    dir.write(
        "etc/karajo/user.conf",
        &format!("[user \"admin\"]\npassword = {admin}\n[user \"bob\"]\npassword = {bob}\n"),
    );
    dir
}

/// A client whose connections come from `ip` (a loopback address).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `POST /karajo/api/auth/login`; the response and how long it took.
async fn api_login(
    d: &TestDaemon,
    http: &reqwest::Client,
    name: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> (reqwest::Response, Duration) {
    let mut req = http
        .post(d.url("/karajo/api/auth/login"))
        .form(&[("name", name), ("password", password)]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let start = Instant::now();
    let res = req.send().await.expect("request");
    (res, start.elapsed())
}

async fn status_of(
    d: &TestDaemon,
    http: &reqwest::Client,
    name: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> u16 {
    api_login(d, http, name, password, headers)
        .await
        .0
        .status()
        .as_u16()
}

fn set_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn failed_logins_back_off_with_429_and_retry_after_and_no_password_check() {
    // Cost 10: a check takes a visible time (about 0.3 s in a debug build).
    let dir = with_users(10, "");
    let d = TestDaemon::start(&dir).await;
    let a = client_from([127, 0, 0, 2]);
    let b = client_from([127, 0, 0, 3]);
    let c = client_from([127, 0, 0, 4]);
    let mut check_time = Duration::ZERO;
    for i in 0..FREE {
        let (res, took) = api_login(&d, &a, "admin", &format!("wrong{i}"), &[]).await;
        assert_eq!(res.status(), 400, "failure {i} is free");
        check_time = check_time.max(took);
    }
    // Backed off: refused at once, even with the right password.
    let (res, took) = api_login(&d, &a, "admin", ADMIN_PASSWORD, &[]).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(set_cookie(&res).is_empty());
    let body = res.text().await.unwrap();
    assert_eq!(
        body,
        r#"{"message":"Too many failed logins. Try again in 1 second.","name":"ERR_AUTH_THROTTLED","code":429}"#
    );
    assert!(
        took < check_time / 4,
        "a refusal answers without bcrypt: {took:?} vs {check_time:?}"
    );
    // Twenty refusals take less than one password check.
    let start = Instant::now();
    for _ in 0..20 {
        assert_eq!(status_of(&d, &a, "admin", "wrong", &[]).await, 429);
    }
    assert!(
        start.elapsed() < check_time,
        "{:?} vs {check_time:?}",
        start.elapsed()
    );
    // The user name backs off from any client, and the client for any name...
    assert_eq!(status_of(&d, &b, "admin", ADMIN_PASSWORD, &[]).await, 429);
    assert_eq!(status_of(&d, &a, "bob", BOB_PASSWORD, &[]).await, 429);
    // ...but another client with another name logs in.
    assert_eq!(status_of(&d, &c, "bob", BOB_PASSWORD, &[]).await, 200);
    // After the back-off a success clears both counts: the next failures are free.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status_of(&d, &a, "admin", ADMIN_PASSWORD, &[]).await, 200);
    assert_eq!(status_of(&d, &a, "admin", "wrong", &[]).await, 400);
    assert_eq!(status_of(&d, &b, "admin", "wrong", &[]).await, 400);
    d.stop().await;
}

#[tokio::test]
async fn a_login_flood_does_not_delay_another_users_login() {
    let dir = with_users(10, "");
    let d = TestDaemon::start(&dir).await;
    let bob = client_from([127, 0, 3, 1]);
    // One password check, unloaded (the longer of two, on this shared machine).
    let mut check_time = Duration::ZERO;
    for _ in 0..2 {
        let (res, took) = api_login(&d, &bob, "bob", BOB_PASSWORD, &[]).await;
        assert_eq!(res.status(), 200);
        check_time = check_time.max(took);
    }
    // 20 wrong passwords for admin at once from one client, and 20 from 20 clients.
    let one = client_from([127, 0, 1, 1]);
    let many: Vec<reqwest::Client> = (1..=20).map(|i| client_from([127, 0, 2, i])).collect();
    let mut flood = Vec::new();
    for own in &many {
        for http in [one.clone(), own.clone()] {
            let req = http
                .post(d.url("/karajo/api/auth/login"))
                .form(&[("name", "admin"), ("password", "wrong")]);
            flood.push(tokio::spawn(async move {
                req.send().await.expect("request").status().as_u16()
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let (res, took) = api_login(&d, &bob, "bob", BOB_PASSWORD, &[]).await;
    assert_eq!(res.status(), 200);
    let mut statuses = Vec::new();
    for task in flood {
        statuses.push(task.await.unwrap());
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    let checked = statuses.iter().filter(|s| **s == 400).count();
    assert_eq!(refused + checked, 40, "{statuses:?}");
    assert!(
        refused >= 30,
        "one check per client and per name at a time: {statuses:?}"
    );
    // Waited for at most the one check in flight (plus sharing two cores).
    assert!(
        took < check_time * 3 + Duration::from_millis(300),
        "bob's login took {took:?}; one check takes {check_time:?}"
    );
    d.stop().await;
}

#[tokio::test]
async fn trusted_proxy_is_believed_only_from_its_address() {
    let dir = with_users(4, "trusted_proxy = 127.0.0.1, 10.0.0.0/8");
    let d = TestDaemon::start(&dir).await;
    let proxy = client_from([127, 0, 0, 1]);
    let stranger = client_from([127, 0, 0, 2]);
    // Through the proxy, the forwarded address is the client.
    let xff = |ip: &'static str| [("X-Forwarded-For", ip)];
    for i in 0..FREE {
        let name = format!("nobody{i}");
        let status = status_of(&d, &proxy, &name, "x", &xff("203.0.113.1")).await;
        assert_eq!(status, 400);
    }
    assert_eq!(
        status_of(&d, &proxy, "someone", "x", &xff("203.0.113.1")).await,
        429
    );
    // A client's own entries to the left of the proxy's are not believed.
    assert_eq!(
        status_of(
            &d,
            &proxy,
            "someone",
            "x",
            &xff("198.51.100.1, 203.0.113.1")
        )
        .await,
        429
    );
    // Another forwarded client, and the proxy's own address, are not affected.
    assert_eq!(
        status_of(&d, &proxy, "someone", "x", &xff("203.0.113.2")).await,
        400
    );
    assert_eq!(status_of(&d, &proxy, "someone2", "x", &[]).await, 400);
    // From an address not in the list, X-Forwarded-For is ignored: changing it does
    // not give a fresh start.
    for i in 0..FREE {
        let forged = format!("198.51.100.{}", i + 10);
        let name = format!("nobody{i}");
        let status = status_of(&d, &stranger, &name, "x", &[("X-Forwarded-For", &forged)]).await;
        assert_eq!(status, 400);
    }
    assert_eq!(
        status_of(&d, &stranger, "someone", "x", &xff("198.51.100.99")).await,
        429
    );
    // The Secure cookie: only when the proxy says HTTPS.
    let login = async |http: &reqwest::Client, header: (&str, &str)| {
        let (res, _) = api_login(&d, http, "admin", ADMIN_PASSWORD, &[header]).await;
        assert_eq!(res.status(), 200);
        set_cookie(&res)
    };
    let cookie = login(&proxy, ("X-Forwarded-Proto", "https")).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
    let cookie = login(&proxy, ("Forwarded", "for=203.0.113.5;proto=https")).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
    let cookie = login(&proxy, ("X-Forwarded-Proto", "http")).await;
    assert!(!cookie.contains("Secure"), "{cookie}");
    let other = client_from([127, 0, 0, 5]);
    let cookie = login(&other, ("X-Forwarded-Proto", "https")).await;
    assert!(!cookie.contains("Secure"), "{cookie}");
    let cookie = login(&other, ("Forwarded", "proto=https")).await;
    assert!(!cookie.contains("Secure"), "{cookie}");
    d.stop().await;
}

/// The login form's CSRF token in a page.
fn form_token(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    let end = page[at..].find('"').expect("end of the value") + at;
    page[at..end].to_string()
}

/// `karajo_login=<value>` from a response's cookies.
fn login_cookie(res: &reqwest::Response) -> String {
    let cookies = set_cookie(res);
    let line = cookies
        .lines()
        .find(|l| l.starts_with("karajo_login="))
        .unwrap_or_else(|| panic!("no karajo_login cookie: {cookies}"));
    for attr in ["Path=/karajo/login", "HttpOnly", "SameSite=Lax"] {
        assert!(line.contains(attr), "{line}");
    }
    line.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn the_login_form_needs_its_csrf_token_and_is_throttled_too() {
    let dir = with_users(4, "");
    let d = TestDaemon::start(&dir).await;
    let http = client_from([127, 0, 0, 1]);
    let res = http.get(d.url("/karajo/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cookie = login_cookie(&res);
    let page = res.text().await.unwrap();
    let token = form_token(&page);
    assert_eq!(token.len(), 64, "{token}");
    // The page again with the cookie: the same token, no new cookie.
    let res = http
        .get(d.url("/karajo/login"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&res).is_empty());
    assert_eq!(form_token(&res.text().await.unwrap()), token);
    // Another browser's pair.
    let res = http.get(d.url("/karajo/login")).send().await.unwrap();
    let other_cookie = login_cookie(&res);
    let other_token = form_token(&res.text().await.unwrap());
    assert_ne!(other_cookie, cookie);

    let post = |cookie: Option<&str>, token: Option<&str>, password: &str| {
        let mut form = vec![
            ("name", "admin".to_string()),
            ("password", password.to_string()),
            ("next", "/karajo/app/job/x".to_string()),
        ];
        if let Some(t) = token {
            form.push(("csrf", t.to_string()));
        }
        let mut req = http.post(d.url("/karajo/login")).form(&form);
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        req
    };
    for (what, req) in [
        ("no token", post(Some(&cookie), None, ADMIN_PASSWORD)),
        ("no cookie", post(None, Some(&token), ADMIN_PASSWORD)),
        (
            "a wrong token",
            post(Some(&cookie), Some("0123"), ADMIN_PASSWORD),
        ),
        (
            "another cookie's token",
            post(Some(&cookie), Some(&other_token), ADMIN_PASSWORD),
        ),
        (
            "a cross-site post",
            post(Some(&cookie), Some(&token), ADMIN_PASSWORD)
                .header("Sec-Fetch-Site", "cross-site"),
        ),
    ] {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403, "{what}");
        assert!(set_cookie(&res).is_empty(), "{what}");
        assert!(
            res.text().await.unwrap().contains("security token"),
            "{what}"
        );
    }
    // With both: logged in.
    let res = post(Some(&cookie), Some(&token), ADMIN_PASSWORD)
        .header("Sec-Fetch-Site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/karajo/app/job/x");
    assert!(
        set_cookie(&res).starts_with("karajo="),
        "{}",
        set_cookie(&res)
    );
    let res = post(Some(&other_cookie), Some(&other_token), ADMIN_PASSWORD)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    // The JSON API refuses browsers' cross-site posts, and takes everything else.
    let own_origin = d.base_url.clone();
    for (header, value, status) in [
        ("Origin", "http://evil.example", 403),
        ("Origin", "null", 403),
        ("Sec-Fetch-Site", "cross-site", 403),
        ("Sec-Fetch-Site", "same-site", 403),
        ("Origin", own_origin.as_str(), 200),
        ("Sec-Fetch-Site", "same-origin", 200),
        ("X-Other", "curl", 200),
    ] {
        let got = status_of(&d, &http, "admin", ADMIN_PASSWORD, &[(header, value)]).await;
        assert_eq!(got, status, "{header}: {value}");
    }

    // A wrong password: the form again with its token; then the throttle's page.
    for _ in 0..FREE {
        let res = post(Some(&cookie), Some(&token), "wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let page = res.text().await.unwrap();
        assert!(page.contains("Invalid user name and/or password."));
        assert_eq!(form_token(&page), token);
    }
    let res = post(Some(&cookie), Some(&token), ADMIN_PASSWORD)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(set_cookie(&res).is_empty());
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Too many failed logins. Try again in 1 second."),
        "{page}"
    );
    assert_eq!(form_token(&page), token);
    d.stop().await;
}
