//! Large logs in bounded memory: the log API streams its JSON (the same bytes as a
//! whole answer; the base64 content decodes to the file) while the daemon's memory
//! stays flat through concurrent reads; the raw download is the file; the log page
//! shows only the end of a long log, with a note and the raw link, and the live
//! stream of a long running log goes on from the part the page shows.

use std::io::{BufWriter, Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use karajo::job::{JobId, JobKey, Trigger};

use crate::helpers::*;

const JOBS: &str = r#"
[job "big"]
path = /big
command = echo not run

[job.http "big http"]
http_url = /karajo/api/environment
"#;

/// Size of the large log: 50 MB.
const BIG: u64 = 50_000_000;

/// Line `i` of the large log, with karajo's time prefix.
fn line(id: &str, i: u64) -> String {
    format!(
        "2026-01-01 00:{:02}:{:02} UTC job: {id}: line {i:08} the quick brown fox jumps over the lazy dog\n",
        (i / 60) % 60,
        i % 60
    )
}

/// Writes a log of about `size` bytes of numbered lines; returns the last line.
fn write_log(path: &Path, id: &str, size: u64) -> String {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    let (mut written, mut i, mut last) = (0, 0, String::new());
    while written < size {
        i += 1;
        last = line(id, i);
        out.write_all(last.as_bytes()).unwrap();
        written += last.len() as u64;
    }
    out.flush().unwrap();
    last
}

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Samples [`rss`] every few milliseconds until dropped; the highest seen.
struct RssPeak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssPeak {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss()));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// Reads a log API answer chunk by chunk: checks its head, decodes the base64 as it
/// comes and compares it with the file, then checks the tail. Never holds the whole.
async fn check_log_answer(mut res: reqwest::Response, head: &str, file: &Path) {
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let file_len = std::fs::metadata(file).unwrap().len();
    let want_len = head.len() as u64 + file_len.div_ceil(3) * 4 + 3;
    assert_eq!(res.content_length(), Some(want_len));
    let mut expected = std::io::BufReader::new(std::fs::File::open(file).unwrap());
    let mut pending: Vec<u8> = Vec::new();
    let mut head_seen = false;
    let mut compared = 0u64;
    let mut total = 0u64;
    let mut want = Vec::new();
    while let Some(chunk) = res.chunk().await.unwrap() {
        total += chunk.len() as u64;
        pending.extend_from_slice(&chunk);
        if !head_seen {
            if pending.len() < head.len() {
                continue;
            }
            assert_eq!(&pending[..head.len()], head.as_bytes());
            pending.drain(..head.len());
            head_seen = true;
        }
        // Decode whole groups of 4, keeping back what may be the tail.
        let usable = pending.len().saturating_sub(2) / 4 * 4;
        if usable == 0 {
            continue;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&pending[..usable])
            .unwrap();
        want.resize(decoded.len(), 0);
        expected.read_exact(&mut want).unwrap();
        assert!(decoded == want, "content differs near byte {compared}");
        compared += decoded.len() as u64;
        pending.drain(..usable);
    }
    assert!(head_seen);
    assert_eq!(pending, b"\"}}", "the tail");
    assert_eq!(compared, file_len);
    assert_eq!(total, want_len);
}

#[tokio::test]
async fn a_large_log_is_streamed_by_the_api_in_bounded_memory() {
    let dir = TestDir::new(JOBS);
    let path = dir.log_dir("big").join("big.1.success");
    write_log(&path, "big", BIG);
    let http_path = dir
        .base()
        .join("var/log/karajo/job_http/big_http/big_http.1.failed");
    write_log(&http_path, "big_http", 100_000);
    let d = TestDaemon::start(&dir).await;
    let head = r#"{"code":200,"data":{"job_id":"big","name":"big.1.success","status":"success","counter":1,"content":""#;
    // Warm up (the first request allocates the server's own buffers and pools).
    let res = d
        .http
        .get(d.url("/karajo/api/job_http/log?id=big_http&counter=1"))
        .send()
        .await
        .unwrap();
    let http_head = r#"{"code":200,"data":{"job_id":"big_http","name":"big_http.1.failed","status":"failed","counter":1,"content":""#;
    check_log_answer(res, http_head, &http_path).await;

    let before = rss();
    let peak = RssPeak::start();
    let reads = (0..4).map(|_| {
        let req = d
            .http
            .get(d.url("/karajo/api/job_exec/log?id=big&counter=1"));
        let path = path.clone();
        async move { check_log_answer(req.send().await.unwrap(), head, &path).await }
    });
    futures_util::future::join_all(reads).await;
    let peak = peak.finish();
    let grew = peak.saturating_sub(before) / (1024 * 1024);
    // Reading the whole log into memory took 4 × (50 MB + 67 MB of base64 + the
    // JSON) here; streamed, a few chunks per request.
    assert!(
        grew < 40,
        "RSS grew by {grew} MiB during 4 reads of a 50 MB log"
    );

    // Compressed on request, and still the same JSON.
    let res = d
        .http
        .get(d.url("/karajo/api/job_http/log?id=big_http&counter=1"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let packed = res.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_string(&mut text)
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let content = base64::engine::general_purpose::STANDARD
        .decode(json["data"]["content"].as_str().unwrap())
        .unwrap();
    assert_eq!(content, std::fs::read(&http_path).unwrap());
    d.stop().await;
}

#[tokio::test]
async fn the_log_page_of_a_large_log_shows_its_end_and_links_the_raw_file() {
    let dir = TestDir::new(JOBS);
    let path = dir.log_dir("big").join("big.1.success");
    let last = write_log(&path, "big", BIG);
    let d = TestDaemon::start(&dir).await;
    let res = d
        .http
        .get(d.url("/karajo/app/job/big/log/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.len() < 1024 * 1024,
        "the page has {} bytes",
        page.len()
    );
    assert!(page.contains("id=\"log-cut\""), "the note");
    assert!(page.contains("This log has 47.7 MiB; only its last 256 KiB are shown"));
    assert!(page.contains("href=\"/karajo/app/job/big/log/1/raw\""));
    assert!(page.contains(last.trim_end()), "the last line");
    assert!(!page.contains(&line("big", 1)[..40]), "not the first line");
    // From the start of a line.
    let log = &page[page.find("<pre id=\"log\"").unwrap()..];
    let log = &log[log.find('>').unwrap() + 1..];
    assert!(log.starts_with("2026-01-01 00:"), "{}", &log[..80]);
    // The start time is the first line's, the duration runs to the last line.
    assert!(page.contains("datetime=\"2026-01-01T00:00:01Z\""), "start");

    // The raw download is the whole file, streamed.
    let mut res = d
        .http
        .get(d.url("/karajo/app/job/big/log/1/raw"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.content_length(),
        Some(std::fs::metadata(&path).unwrap().len())
    );
    let mut expected = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
    let mut want = Vec::new();
    let mut got = 0;
    while let Some(chunk) = res.chunk().await.unwrap() {
        want.resize(chunk.len(), 0);
        expected.read_exact(&mut want).unwrap();
        assert!(chunk[..] == want[..], "raw content differs near byte {got}");
        got += chunk.len() as u64;
    }
    assert_eq!(got, std::fs::metadata(&path).unwrap().len());
    d.stop().await;
}

#[tokio::test]
async fn a_long_running_log_is_followed_from_the_part_its_page_shows() {
    let dir = TestDir::new(
        r#"
[job "chatty"]
path = /chatty
command = "seq 1 30000; printf '\\033[32m'; x=here; echo green from $x"
command = "while [ ! -f go ]; do sleep 0.05; done"
command = "printf '%s green\\033[0m\\n' still; e=end; echo the $e"
"#,
    );
    let d = TestDaemon::start(&dir).await;
    let scheduler = d.daemon.as_ref().unwrap().scheduler().clone();
    scheduler
        .trigger(JobKey::exec(JobId::from_raw("chatty")), Trigger::Api, None)
        .await
        .unwrap();
    let running = dir.log_dir("chatty").join("chatty.1.running");
    wait_for("the green line", || async {
        let text = std::fs::read_to_string(&running).ok()?;
        text.contains("green from here").then_some(())
    })
    .await;
    let page = d
        .http
        .get(d.url("/karajo/app/job/chatty/log/1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let size = std::fs::metadata(&running).map(|m| m.len()).unwrap_or(0);
    assert!(
        page.contains("id=\"log-cut\""),
        "the log is over 256 KiB: {size} bytes\n{}",
        &page[page.len().saturating_sub(1500)..]
    );
    assert!(page.contains("green from here"));
    let at = page.find("data-follow=\"").expect("followed") + 13;
    let follow = page[at..at + page[at..].find('"').unwrap()]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(follow.contains("&from="), "{follow}");
    let mut res = d.http.get(d.url(&follow)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    std::fs::write(dir.base().join("var/lib/karajo/job/chatty/go"), "").unwrap();
    let mut seen = String::new();
    tokio::time::timeout(TIMEOUT, async {
        while !seen.contains("event: end") {
            let chunk = res.chunk().await.unwrap().expect("stream goes on");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no end event: {seen}"));
    assert!(seen.contains("the end"), "{seen}");
    // The colour set in the part the page shows is still on for the new lines.
    let still = seen.find("still green").expect("the new line");
    let before = &seen[..still];
    assert!(
        before.rfind("<span class=\"f2\"").is_some(),
        "green continues: {seen}"
    );
    assert!(!seen.contains("green from here"), "no line twice: {seen}");
    d.stop().await;
}
