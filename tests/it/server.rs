//! The HTTP server's limits against misbehaving clients, over raw sockets: a half-sent
//! request header is dropped after `header_read_timeout`; a kept-alive connection is
//! closed after `header_read_timeout` (hyper's timer covers the wait for the next
//! request) or `idle_timeout`, whichever is shorter; a stalled body is dropped after
//! `idle_timeout` and a trickled one is answered `408` after `body_read_timeout`;
//! `max_connections` half-open connections delay a new client only until the header
//! timeout frees their slots, and leave no descriptor behind; live streams past
//! `max_sse_streams` get `503`, and a closed stream frees its slot.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::*;

/// A daemon whose `[karajo]` section also has `settings` (one `key = value` a line).
async fn daemon_with(settings: &str) -> (TestDir, TestDaemon) {
    let dir = TestDir::new("[job \"hello\"]\npath = /hello\ncommand = echo hello\n");
    let conf = std::fs::read_to_string(dir.config_file()).expect("read config");
    let conf = conf.replacen("[karajo]\n", &format!("[karajo]\n{settings}\n"), 1);
    dir.write("etc/karajo/karajo.conf", &conf);
    let d = TestDaemon::start(&dir).await;
    (dir, d)
}

async fn connect(d: &TestDaemon) -> TcpStream {
    let addr = d.daemon.as_ref().expect("running").local_addr();
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection (EOF or reset); returns how long that
/// took and what was read. Fails the test after `limit`.
async fn wait_closed(stream: &mut TcpStream, limit: Duration) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the connection open for {limit:?}; read {:?}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(Ok(0) | Err(_)) => return (start.elapsed(), seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response (head and a `Content-Length` body); returns its status line.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "closed before a response");
        seen.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a Content-Length");
    while seen.len() < head_end + length {
        let n = stream.read(&mut buf).await.expect("read body");
        assert!(n > 0, "closed in the body");
        seen.extend_from_slice(&buf[..n]);
    }
    head.lines().next().unwrap_or_default().to_string()
}

const GET_ENV: &[u8] = b"GET /karajo/api/environment HTTP/1.1\r\nHost: x\r\n\r\n";
const PARTIAL: &[u8] = b"GET /karajo/api/environment HTTP/1.1\r\nHost: x\r\nX-Slow: ";

#[tokio::test]
async fn a_half_sent_header_is_dropped_after_header_read_timeout() {
    let (_dir, d) = daemon_with("header_read_timeout = 1s").await;
    let mut s = connect(&d).await;
    s.write_all(PARTIAL).await.unwrap();
    let (after, answer) = wait_closed(&mut s, Duration::from_secs(5)).await;
    assert!(
        after >= Duration::from_millis(800),
        "closed after {after:?}"
    );
    // Nothing but possibly a 408 from hyper; never a 200.
    assert!(!String::from_utf8_lossy(&answer).contains(" 200 "));
    d.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_header_read_timeout() {
    // hyper 1.x restarts its header timer when a connection goes idle, so the wait
    // for the next request is bounded by header_read_timeout too.
    let (_dir, d) = daemon_with("header_read_timeout = 1s\nidle_timeout = 1m").await;
    let mut s = connect(&d).await;
    s.write_all(GET_ENV).await.unwrap();
    assert_eq!(read_response(&mut s).await, "http/1.1 200 ok");
    let (after, rest) = wait_closed(&mut s, Duration::from_secs(5)).await;
    assert!(
        after >= Duration::from_millis(800),
        "closed after {after:?}"
    );
    assert!(rest.is_empty() || String::from_utf8_lossy(&rest).contains("408"));
    d.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_idle_timeout() {
    let (_dir, d) = daemon_with("header_read_timeout = 1m\nidle_timeout = 1s").await;
    let mut s = connect(&d).await;
    s.write_all(GET_ENV).await.unwrap();
    assert_eq!(read_response(&mut s).await, "http/1.1 200 ok");
    // Still usable within the idle timeout.
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.write_all(GET_ENV).await.unwrap();
    assert_eq!(read_response(&mut s).await, "http/1.1 200 ok");
    let (after, rest) = wait_closed(&mut s, Duration::from_secs(5)).await;
    assert!(
        after >= Duration::from_millis(800),
        "closed after {after:?}"
    );
    assert!(rest.is_empty(), "{rest:?}");
    d.stop().await;
}

#[tokio::test]
async fn a_stalled_body_is_dropped_after_idle_timeout() {
    // Signed (wrongly) for an existing job, so the server must read the body.
    let (_dir, d) = daemon_with("idle_timeout = 1s\nbody_read_timeout = 1m").await;
    let mut s = connect(&d).await;
    s.write_all(
        b"POST /karajo/api/job_exec/run/hello HTTP/1.1\r\nHost: x\r\nX-Karajo-Sign: 00\r\n\
          Content-Length: 100\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    let (after, _) = wait_closed(&mut s, Duration::from_secs(5)).await;
    assert!(
        after >= Duration::from_millis(800),
        "closed after {after:?}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_trickled_body_gets_408_after_body_read_timeout() {
    // Signed (wrongly), so the server must read the body to check it.
    let (_dir, d) = daemon_with("idle_timeout = 1m\nbody_read_timeout = 1s").await;
    let mut s = connect(&d).await;
    s.write_all(
        b"POST /karajo/api/job_exec/pause HTTP/1.1\r\nHost: x\r\nX-Karajo-Sign: 00\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n",
    )
    .await
    .unwrap();
    let start = Instant::now();
    // One byte every 100 ms: never idle, never done.
    let answer = loop {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no answer to a trickled body"
        );
        if s.write_all(b"a").await.is_err() {
            break wait_closed(&mut s, Duration::from_secs(5)).await.1;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(n)) if n > 0 => {
                let mut seen = buf[..n].to_vec();
                seen.extend(wait_closed(&mut s, Duration::from_secs(5)).await.1);
                break seen;
            }
            Ok(_) => break Vec::new(),
        }
    };
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_read_timeout"), "{text}");
    assert!(start.elapsed() >= Duration::from_millis(800));
    d.stop().await;
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |rd| rd.count())
}

#[tokio::test]
async fn half_open_connections_past_max_connections_delay_a_client_only_until_the_header_timeout() {
    const SLOTS: usize = 4;
    let (_dir, d) = daemon_with(&format!(
        "max_connections = {SLOTS}\nheader_read_timeout = 2s"
    ))
    .await;
    let before = open_descriptors();
    let mut half_open = Vec::new();
    for _ in 0..SLOTS {
        let mut s = connect(&d).await;
        s.write_all(PARTIAL).await.unwrap();
        half_open.push(s);
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let opened = Instant::now();
    let http = reqwest::Client::new();
    let res = tokio::time::timeout(
        Duration::from_secs(10),
        http.get(d.url("/karajo/api/environment")).send(),
    )
    .await
    .expect("answered once the header timeout freed the slots")
    .expect("request");
    let waited = opened.elapsed();
    assert_eq!(res.status(), 200);
    // It waited for a slot: the cap held, and freed slots were reused.
    assert!(
        waited >= Duration::from_millis(1000),
        "answered after {waited:?}: the cap did not hold"
    );
    assert!(waited < Duration::from_secs(6), "answered after {waited:?}");
    for mut s in half_open {
        wait_closed(&mut s, Duration::from_secs(5)).await;
    }
    drop(res);
    drop(http);
    // Every descriptor the flood used is given back.
    wait_for("the descriptors to be closed", || async {
        (open_descriptors() <= before).then_some(())
    })
    .await;
    d.stop().await;
}

/// Opens `/karajo/events` and waits for its first event.
async fn open_stream(d: &TestDaemon, http: &reqwest::Client) -> reqwest::Response {
    let mut res = http.get(d.url("/karajo/events")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let chunk = tokio::time::timeout(TIMEOUT, res.chunk())
        .await
        .expect("first event")
        .unwrap()
        .expect("stream goes on");
    assert!(String::from_utf8_lossy(&chunk).contains("event: update"));
    res
}

#[tokio::test]
async fn live_streams_past_max_sse_streams_get_503_until_one_ends() {
    let (_dir, d) = daemon_with("max_sse_streams = 2").await;
    let http = reqwest::Client::new();
    let first = open_stream(&d, &http).await;
    let _second = open_stream(&d, &http).await;
    let refused = http.get(d.url("/karajo/events")).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(
        refused.text().await.unwrap().contains("max_sse_streams"),
        "the 503 says why"
    );
    // The log stream shares the cap.
    let refused = http
        .get(d.url("/karajo/app/job/hello/log/1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    // A stream whose client went away frees its slot.
    drop(first);
    wait_for("a slot to be freed", || async {
        let res = http.get(d.url("/karajo/events")).send().await.ok()?;
        (res.status() == 200).then_some(())
    })
    .await;
    d.stop().await;
}
