//! The reliability suite (issue 6): runs the `karajo` binary as a real process on
//! 127.0.0.1 and checks that it survives what production throws at it: kill -9 while
//! 50 jobs run (no log lost, no counter reused, interrupted runs recorded), bad and
//! hostile requests (no run, no crash, bounded memory), cancels and timeouts of jobs
//! that fork process trees (no survivor), a soak at 50 triggers per second (flat
//! memory, bounded disk), a connection flood against a daemon limited to 256 file
//! descriptors (half-open requests and large unsigned bodies: the API keeps answering,
//! memory and descriptors stay bounded), and a libFuzzer-free fuzz loop over the INI
//! reader, the schedule parser and the signature check. Run it with `./scripts/reliability`
//! (`--short` for CI). It prints one line per check and ends with
//! `N passed, M failed`; the exit code is 1 when a check failed.

// Harness code driving a release binary from outside: a setup error (no binary, a port
// in use, a peer that never starts) ends the run with a panic naming what failed, which
// is the report wanted here, so the daemon's no-unwrap/no-expect rule does not apply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common.rs"]
mod common;
#[path = "../fuzz/targets.rs"]
mod targets;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;

const USAGE: &str = "usage: reliability [--short] [--only a,b,...] [--bin FILE] [--work DIR]
                   [--crash-iterations N] [--trees N] [--soak-seconds N] [--fuzz-seconds N]

Checks (for --only): crash, input, trees, soak, flood, fuzz.
  --short      CI sizes: 3 crash iterations, 10 cancels + 10 timeouts, 20 s soak, 10 s fuzz per target
  --bin FILE   the karajo binary (default target/release/karajo; target/debug/karajo with --short)";

#[derive(Debug, Clone)]
struct Opts {
    short: bool,
    only: Option<Vec<String>>,
    bin: PathBuf,
    work: PathBuf,
    crash_iterations: usize,
    trees: usize,
    soak: Duration,
    fuzz: Duration,
}

impl Opts {
    fn parse() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let short = args.iter().any(|a| a == "--short");
        let root = repo_root();
        let mut o = Self {
            short,
            only: None,
            bin: root.join(if short {
                "target/debug/karajo"
            } else {
                "target/release/karajo"
            }),
            work: root.join("target/reliability"),
            crash_iterations: if short { 3 } else { 20 },
            trees: if short { 10 } else { 100 },
            soak: Duration::from_secs(if short { 20 } else { 600 }),
            fuzz: Duration::from_secs(if short { 10 } else { 60 }),
        };
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .unwrap_or_else(|| usage_error(&format!("{name} needs a value")))
            };
            let number = |text: String, name: &str| -> u64 {
                text.parse()
                    .unwrap_or_else(|_| usage_error(&format!("{name} takes a number")))
            };
            match arg.as_str() {
                "--short" => {}
                "--only" => o.only = Some(value("--only").split(',').map(str::to_string).collect()),
                "--bin" => o.bin = PathBuf::from(value("--bin")),
                "--work" => o.work = PathBuf::from(value("--work")),
                "--crash-iterations" => {
                    o.crash_iterations = number(value(&arg), &arg) as usize;
                }
                "--trees" => o.trees = number(value(&arg), &arg) as usize,
                "--soak-seconds" => o.soak = Duration::from_secs(number(value(&arg), &arg)),
                "--fuzz-seconds" => o.fuzz = Duration::from_secs(number(value(&arg), &arg)),
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => usage_error(&format!("unknown argument {other:?}")),
            }
        }
        o
    }

    fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == name))
    }
}

fn usage_error(message: &str) -> ! {
    eprintln!("reliability: {message}\n\n{USAGE}");
    std::process::exit(2);
}

/// Results of the checks.
#[derive(Default)]
struct Report {
    passed: usize,
    failed: Vec<String>,
}

impl Report {
    fn check(&mut self, name: &str, ok: bool, detail: impl AsRef<str>) {
        if ok {
            self.passed += 1;
            println!("PASS {name}: {}", detail.as_ref());
        } else {
            self.failed.push(name.to_string());
            println!("FAIL {name}: {}", detail.as_ref());
        }
    }
}

fn main() {
    let opts = Opts::parse();
    if opts.wants("fuzz") && opts.only.is_some() && !opts.bin.exists() {
        // The fuzz loop alone needs no daemon.
    } else if !opts.bin.is_file() {
        usage_error(&format!(
            "{} is missing: build it first (./scripts/reliability does)",
            opts.bin.display()
        ));
    }
    fs::create_dir_all(&opts.work).expect("create the work directory");
    let started = Instant::now();
    let mut report = Report::default();
    type Check = fn(&Opts, &mut Report);
    let checks: [(&str, Check); 6] = [
        ("crash", crash_restart),
        ("input", bad_input),
        ("trees", process_trees),
        ("soak", soak),
        ("flood", flood),
        ("fuzz", fuzz),
    ];
    for (name, check) in checks {
        if opts.wants(name) {
            println!("== {name}");
            let t = Instant::now();
            check(&opts, &mut report);
            println!("== {name}: {:.1} s", t.elapsed().as_secs_f64());
        }
    }
    println!(
        "\nreliability ({}, {}): {:.0} s",
        if opts.short { "short" } else { "full" },
        opts.bin.display(),
        started.elapsed().as_secs_f64()
    );
    for name in &report.failed {
        println!("failed: {name}");
    }
    println!("{} passed, {} failed", report.passed, report.failed.len());
    if !report.failed.is_empty() {
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------
// Raw HTTP over std sockets: exact bytes, including ones no client library sends.

/// Sends `request` on a new connection and reads the answer until the server closes
/// it. Returns the status code (0 when the connection closed without a status line)
/// and the whole answer.
fn raw(port: u16, request: &[u8]) -> (u16, Vec<u8>) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, Vec::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(20)));
    let _ = s.write_all(request);
    read_answer(&mut s)
}

fn read_answer(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    (status_of(&answer), answer)
}

fn status_of(answer: &[u8]) -> u16 {
    std::str::from_utf8(&answer[..answer.len().min(12)])
        .ok()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A request with `Connection: close` and a `Content-Length` for `body`.
fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A web hook signed with [`SECRET`] over `body`, sent to `target` as is.
fn signed_hook(port: u16, target: &str, body: &str) -> (u16, Vec<u8>) {
    let sign = sign(body.as_bytes());
    raw(
        port,
        &request("POST", target, &[("X-Karajo-Sign", &sign)], body.as_bytes()),
    )
}

fn hook(port: u16, id: &str) -> u16 {
    signed_hook(
        port,
        &format!("/karajo/api/job_exec/run/{id}"),
        &hook_body(0),
    )
    .0
}

/// pause, resume or cancel job `id`, signed with the global secret.
fn action(port: u16, what: &str, id: &str) -> u16 {
    let body = form_body(id);
    let sign = sign(body.as_bytes());
    raw(
        port,
        &request(
            "POST",
            &format!("/karajo/api/job_exec/{what}"),
            &[
                ("X-Karajo-Sign", &sign),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.as_bytes(),
        ),
    )
    .0
}

/// Waits until the environment answers 200; false after `limit`.
fn wait_ready(port: u16, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if raw(port, &request("GET", "/karajo/api/environment", &[], b"")).0 == 200 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The environment's JSON `data`.
fn environment_data(port: u16) -> Option<serde_json::Value> {
    let (status, answer) = raw(port, &request("GET", "/karajo/api/environment", &[], b""));
    if status != 200 {
        return None;
    }
    let at = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let v: serde_json::Value = serde_json::from_slice(&answer[at..]).ok()?;
    Some(v["data"].clone())
}

/// Polls `cond` every 20 ms for up to `limit`.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if t.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `(counter, status)` of every `<id>.<n>.<status>` log of job `id`.
fn logs_of(base: &Base, id: &str) -> Vec<(u64, String)> {
    base.log_names(id)
        .iter()
        .filter_map(|name| {
            let mut f = name.split('.');
            let (Some(first), Some(n), Some(status)) = (f.next(), f.next(), f.next()) else {
                return None;
            };
            (first == id).then(|| Some((n.parse().ok()?, status.to_string())))?
        })
        .collect()
}

/// Kills what a killed daemon's runs left behind (their process groups outlive a
/// SIGKILL of karajo); returns how many there were.
fn kill_leftovers(dir: &Path) -> usize {
    let pids = processes_below(dir);
    for pid in &pids {
        kill9(*pid);
    }
    pids.len()
}

// ---------------------------------------------------------------------------------
// Crash and restart.

const CRASH_JOBS: usize = 50;
const CRASH_QUICK_JOBS: usize = 10;

fn crash_restart(opts: &Opts, report: &mut Report) {
    let base = Base::new(opts.work.join("crash"));
    let mut jobs = jobs_text(
        "cr",
        CRASH_JOBS,
        "command = \"echo start $KARAJO_JOB_COUNTER; sleep 60\"\nlog_retention = 1000\nkill_grace = 1s",
    );
    jobs.push_str(&jobs_text(
        "qk",
        CRASH_QUICK_JOBS,
        "command = echo quick $KARAJO_JOB_COUNTER\nlog_retention = 1000",
    ));
    base.write_config("max_job_running = 100", &jobs);
    let long: Vec<String> = (0..CRASH_JOBS).map(|i| format!("cr{i:04}")).collect();
    let quick: Vec<String> = (0..CRASH_QUICK_JOBS).map(|i| format!("qk{i:04}")).collect();
    let mut accepted: BTreeMap<String, u64> = long
        .iter()
        .chain(&quick)
        .map(|id| (id.clone(), 0))
        .collect();
    let mut interrupted: Vec<(String, u64)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut survivors = 0;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for iteration in 0..=opts.crash_iterations {
        let mut daemon = Proc::karajo(&opts.bin, &base);
        if !wait_ready(base.port, Duration::from_secs(30)) {
            problems.push(format!("iteration {iteration}: no answer after restart"));
            break;
        }
        // The commands the killed daemon left running were stopped by this start.
        let left = kill_leftovers(&base.dir);
        if left > 0 {
            survivors += left;
            problems.push(format!(
                "iteration {iteration}: {left} commands of the killed daemon still ran after the restart"
            ));
        }
        problems.extend(
            verify_after_restart(&base, &accepted, &interrupted)
                .into_iter()
                .map(|p| format!("iteration {iteration}: {p}")),
        );
        interrupted.clear();
        if iteration == opts.crash_iterations {
            // The last start: one more run must take the next counter, then a clean stop.
            let id = &quick[0];
            let next = accepted[id] + 1;
            if hook(base.port, id) == 200 {
                accepted.insert(id.clone(), next);
                let done = base.log_dir(id).join(format!("{id}.{next}.success"));
                if !wait_until(Duration::from_secs(10), || done.exists()) {
                    problems.push(format!(
                        "after the last restart, {id}.{next}.success never appeared"
                    ));
                }
            } else {
                problems.push("after the last restart, a trigger was refused".into());
            }
            daemon.stop(Duration::from_secs(15));
            let status = daemon.child.wait().ok().and_then(|s| s.code());
            if status != Some(0) {
                problems.push(format!("SIGTERM exit status {status:?}, not 0"));
            }
            break;
        }
        for id in &long {
            match hook(base.port, id) {
                200 => {
                    let n = accepted[id] + 1;
                    accepted.insert(id.clone(), n);
                    interrupted.push((id.clone(), n));
                }
                other => problems.push(format!("iteration {iteration}: trigger {id}: {other}")),
            }
        }
        let all_running = wait_until(Duration::from_secs(20), || {
            interrupted
                .iter()
                .all(|(id, n)| base.log_dir(id).join(format!("{id}.{n}.running")).exists())
        });
        if !all_running {
            problems.push(format!("iteration {iteration}: not all 50 runs started"));
        }
        // Quick runs finishing while the kill lands: their logs may end either way.
        for id in &quick {
            if hook(base.port, id) == 200 {
                *accepted.get_mut(id).expect("known job") += 1;
            }
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 30));
        daemon.kill9();
    }
    let total: u64 = accepted.values().sum();
    report.check(
        "crash: kill -9 with 50 runs in progress, restart",
        problems.is_empty(),
        if problems.is_empty() {
            format!(
                "{} iterations, {total} runs: every log kept, counters 1..n without reuse, every interrupted run `.failed` with the interrupted line, state.json readable each time, the commands each killed daemon left running stopped by the next start ({survivors} survived), clean SIGTERM exit",
                opts.crash_iterations
            )
        } else {
            problems.join("; ")
        },
    );
    kill_leftovers(&base.dir);
    let _ = fs::remove_dir_all(&base.dir);
}

/// What must hold after every restart.
fn verify_after_restart(
    base: &Base,
    accepted: &BTreeMap<String, u64>,
    interrupted: &[(String, u64)],
) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, n) in accepted {
        let logs = logs_of(base, id);
        let counters: Vec<u64> = logs.iter().map(|(c, _)| *c).collect();
        let unique: BTreeSet<u64> = counters.iter().copied().collect();
        if unique.len() != counters.len() {
            problems.push(format!("{id}: a counter has two logs: {counters:?}"));
        }
        let expected: BTreeSet<u64> = (1..=*n).collect();
        if unique != expected {
            problems.push(format!(
                "{id}: logs {:?}, expected 1..={n}",
                unique.iter().collect::<Vec<_>>()
            ));
        }
        if let Some((c, _)) = logs.iter().find(|(_, s)| s == "running") {
            problems.push(format!("{id}.{c} still .running after restart"));
        }
    }
    for (id, n) in interrupted {
        let path = base.log_dir(id).join(format!("{id}.{n}.failed"));
        match fs::read_to_string(&path) {
            Ok(text)
                if text.contains("interrupted: karajo stopped before the run finished")
                    && text.contains("start ") => {}
            Ok(text) => problems.push(format!(
                "{}: no interrupted line or lost output: {text:?}",
                path.display()
            )),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    // The API agrees with the files.
    match environment_data(base.port) {
        Some(env) => {
            for (id, n) in accepted {
                let newest = env["jobs"][id.as_str()]["logs"]
                    .as_array()
                    .and_then(|logs| logs.iter().filter_map(|l| l["counter"].as_u64()).max())
                    .unwrap_or(0);
                if newest != *n {
                    problems.push(format!("{id}: the API's newest log is {newest}, not {n}"));
                }
            }
        }
        None => problems.push("the environment is unreadable".into()),
    }
    let state = base.dir.join("var/lib/karajo/state.json");
    if state.exists() {
        match fs::read(&state).map(|b| serde_json::from_slice::<serde_json::Value>(&b)) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => problems.push(format!("state.json is not JSON: {e}")),
            Err(e) => problems.push(format!("state.json unreadable: {e}")),
        }
    }
    problems
}

// ---------------------------------------------------------------------------------
// Bad input.

fn bad_input(opts: &Opts, report: &mut Report) {
    let base = Base::new(opts.work.join("input"));
    base.write_config(
        "",
        "[job \"victim\"]\npath = /victim\ncommand = echo ran\n\n\
         [job \"gh\"]\npath = /gh\nauth_kind = github\ncommand = echo ran\n\n\
         [job \"srht\"]\npath = /srht\nauth_kind = sourcehut\ncommand = echo ran\n",
    );
    let mut daemon = Proc::karajo(&opts.bin, &base);
    if !wait_ready(base.port, Duration::from_secs(30)) {
        report.check("input: daemon starts", false, "no answer");
        return;
    }
    let port = base.port;
    let rss_start = daemon.rss_mib();
    let body = hook_body(1);
    let good = sign(body.as_bytes());
    let run = "/karajo/api/job_exec/run/victim";
    let mut outcomes: Vec<(String, u16, bool)> = Vec::new();
    let mut expect = |name: &str, answer: (u16, Vec<u8>), ok: &dyn Fn(u16) -> bool| {
        let leaked = String::from_utf8_lossy(&answer.1).contains("root:x:0:0");
        outcomes.push((name.to_string(), answer.0, ok(answer.0) && !leaked));
    };
    let refused = |s: u16| (400..500).contains(&s);
    let refused_or_closed = |s: u16| s == 0 || (400..500).contains(&s);
    let post = |target: &str, headers: &[(&str, &str)], body: &[u8]| {
        raw(port, &request("POST", target, headers, body))
    };

    // Signatures.
    expect("no signature", post(run, &[], body.as_bytes()), &|s| {
        s == 403
    });
    expect(
        "empty signature",
        post(run, &[("X-Karajo-Sign", "")], body.as_bytes()),
        &|s| s == 403,
    );
    expect(
        "malformed hex",
        post(run, &[("X-Karajo-Sign", "zz-not-hex")], body.as_bytes()),
        &|s| s == 403,
    );
    expect(
        "upper-case hex",
        post(
            run,
            &[("X-Karajo-Sign", &good.to_uppercase())],
            body.as_bytes(),
        ),
        &|s| s == 403,
    );
    expect(
        "truncated signature",
        post(run, &[("X-Karajo-Sign", &good[..32])], body.as_bytes()),
        &|s| s == 403,
    );
    expect(
        "signature of another body",
        post(run, &[("X-Karajo-Sign", &good)], hook_body(2).as_bytes()),
        &|s| s == 403,
    );
    expect(
        "wrong secret",
        post(
            run,
            &[(
                "X-Karajo-Sign",
                &karajo::auth::sign_hmac_sha256(b"wrong", body.as_bytes()),
            )],
            body.as_bytes(),
        ),
        &|s| s == 403,
    );
    let stale = "{\"_karajo_epoch\":1000}";
    expect(
        "stale _karajo_epoch",
        post(
            run,
            &[("X-Karajo-Sign", &sign(stale.as_bytes()))],
            stale.as_bytes(),
        ),
        &|s| s == 403,
    );
    // A body without `_karajo_epoch` is refused (GitHub's payloads, which have none,
    // name their delivery instead), and so is one whose epoch cannot be read.
    let unstamped = "{\"seq\":1}";
    expect(
        "no _karajo_epoch",
        post(
            run,
            &[("X-Karajo-Sign", &sign(unstamped.as_bytes()))],
            unstamped.as_bytes(),
        ),
        &|s| s == 403,
    );
    let nan = "{\"_karajo_epoch\":\"soon\"}";
    expect(
        "_karajo_epoch that is not a number",
        post(
            run,
            &[("X-Karajo-Sign", &sign(nan.as_bytes()))],
            nan.as_bytes(),
        ),
        &|s| s == 403,
    );
    // Wrong auth kinds.
    expect(
        "X-Karajo-Sign on a github job",
        post(
            "/karajo/api/job_exec/run/gh",
            &[("X-Karajo-Sign", &good)],
            body.as_bytes(),
        ),
        &|s| s == 403,
    );
    expect(
        "github sha256 with the wrong secret",
        post(
            "/karajo/api/job_exec/run/gh",
            &[(
                "X-Hub-Signature-256",
                &format!(
                    "sha256={}",
                    karajo::auth::sign_hmac_sha256(b"wrong", body.as_bytes())
                ),
            )],
            body.as_bytes(),
        ),
        &|s| s == 403,
    );
    expect(
        "X-Karajo-Sign on a sourcehut job",
        post(
            "/karajo/api/job_exec/run/srht",
            &[("X-Karajo-Sign", &good)],
            body.as_bytes(),
        ),
        &|s| s == 403,
    );
    expect(
        "sourcehut signature that is not base64",
        post(
            "/karajo/api/job_exec/run/srht",
            &[
                ("X-Payload-Signature", "!!!not base64!!!"),
                ("X-Payload-Nonce", "1"),
            ],
            body.as_bytes(),
        ),
        &|s| s == 403,
    );
    for what in ["pause", "resume", "cancel"] {
        let form = form_body("victim");
        expect(
            &format!("{what} with a web hook's signature kind missing"),
            post(
                &format!("/karajo/api/job_exec/{what}"),
                &[],
                form.as_bytes(),
            ),
            &refused,
        );
        expect(
            &format!("GET {what}"),
            raw(
                port,
                &request("GET", &format!("/karajo/api/job_exec/{what}"), &[], b""),
            ),
            &refused,
        );
    }
    // Encoding.
    expect(
        "invalid UTF-8 bytes in the path",
        raw(
            port,
            &[
                b"POST /karajo/api/job_exec/run/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                    .as_slice(),
            ]
            .concat(),
        ),
        &refused_or_closed,
    );
    for target in [
        "/karajo/api/job_exec/run/%ff%fe",
        "/karajo/api/job_exec/run/%zz",
        "/karajo/api/job_exec/run/vic%tim",
        "/karajo/api/job_exec/run/%00victim",
    ] {
        expect(
            &format!("signed hook to {target}"),
            signed_hook(port, target, &body),
            &refused_or_closed,
        );
    }
    for query in [
        "id=%ff&counter=1",
        "id=%zz&counter=%%",
        "id=victim&counter=%ff",
        "id=victim&counter=-1",
        "id=victim&counter=99999999999999999999999",
    ] {
        let answer = raw(
            port,
            &request(
                "GET",
                &format!("/karajo/api/job_exec/log?{query}"),
                &[],
                b"",
            ),
        );
        let found = String::from_utf8_lossy(&answer.1).contains("\"code\":200");
        expect(&format!("log ?{query}"), answer, &|s| !found && s != 500);
    }
    // Path traversal against the log endpoint and the run path (validly signed, so only
    // the path decides).
    fs::write(
        base.dir.join("var/log/karajo/outside.1.success"),
        "SECRET LOG",
    )
    .expect("write bait");
    for query in [
        "id=../../etc&counter=1",
        "id=..%2F..%2F..%2Fetc%2Fpasswd&counter=1",
        "id=../outside&counter=1",
        "id=victim/../../outside&counter=1",
        "id=victim&counter=../1",
        "id=%2e%2e&counter=1",
    ] {
        let answer = raw(
            port,
            &request(
                "GET",
                &format!("/karajo/api/job_exec/log?{query}"),
                &[],
                b"",
            ),
        );
        let text = String::from_utf8_lossy(&answer.1).to_string();
        let leaked = text.contains("\"code\":200") || text.contains("U0VDUkVU");
        expect(&format!("traversal log ?{query}"), answer, &|s| {
            !leaked && s != 500
        });
    }
    for target in [
        "/karajo/api/job_exec/run/../../../etc/passwd",
        "/karajo/api/job_exec/run/..%2F..%2Fvictim",
        "/karajo/api/job_exec/run/%2e%2e/victim",
        "/karajo/api/job_exec/run/victim/../victim",
        "/karajo/api/job_exec/run/./victim",
        "/karajo/api/job_exec/run/victim%2F..",
        "/karajo/api/job_exec/../job_exec/run/victim",
    ] {
        expect(
            &format!("traversal run {target}"),
            signed_hook(port, target, &body),
            &refused_or_closed,
        );
    }
    // Oversized headers.
    let huge = "a".repeat(1024 * 1024);
    expect(
        "one 1 MiB header (validly signed)",
        post(
            run,
            &[("X-Karajo-Sign", &good), ("X-Big", &huge)],
            body.as_bytes(),
        ),
        &refused_or_closed,
    );
    let many: Vec<(String, String)> = (0..2000)
        .map(|i| (format!("X-H{i}"), "v".to_string()))
        .collect();
    let many_refs: Vec<(&str, &str)> = many
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("X-Karajo-Sign", good.as_str())])
        .collect();
    expect(
        "2,000 headers (validly signed)",
        post(run, &many_refs, body.as_bytes()),
        &refused_or_closed,
    );

    let bad: Vec<String> = outcomes
        .iter()
        .filter(|(_, _, ok)| !ok)
        .map(|(name, status, _)| format!("{name} -> {status}"))
        .collect();
    report.check(
        "input: bad signatures, auth kinds, encodings, traversal, oversized headers",
        bad.is_empty(),
        if bad.is_empty() {
            format!("{} hostile requests refused", outcomes.len())
        } else {
            format!("accepted or mishandled: {}", bad.join("; "))
        },
    );

    // 100 MiB bodies, with a Content-Length and chunked, while watching the RSS.
    // A declared length is refused from the header; a chunked body can only be cut
    // at max_body_size (the whole body is needed to check its signature).
    for chunked in [false, true] {
        let (status, sent, peak) = stream_body(&daemon, port, run, &good, chunked);
        let grew = peak - rss_start;
        let (name, bound) = if chunked {
            (
                "input: 100 MiB chunked body, memory bounded by max_body_size",
                40.0,
            )
        } else {
            (
                "input: 100 MiB body with Content-Length, refused without buffering",
                4.0,
            )
        };
        report.check(
            name,
            refused_or_closed(status) && grew < bound,
            format!(
                "answer {status}, refused after {:.1} MiB sent, daemon RSS {rss_start:.1} -> peak {peak:.1} MiB (+{grew:.1} MiB; max_body_size is 25 MiB)",
                sent as f64 / (1 << 20) as f64
            ),
        );
    }

    let alive = daemon.alive() && wait_ready(port, Duration::from_secs(5));
    let runs: Vec<String> = ["victim", "gh", "srht"]
        .iter()
        .flat_map(|id| base.log_names(id))
        .collect();
    let rss_end = daemon.rss_mib();
    report.check(
        "input: no crash, no run, memory bounded",
        alive && runs.is_empty() && rss_end < rss_start + 64.0,
        format!("alive: {alive}, logs written: {runs:?}, RSS {rss_start:.1} -> {rss_end:.1} MiB"),
    );
    daemon.stop(Duration::from_secs(10));
    let _ = fs::remove_dir_all(&base.dir);
}

/// Streams 100 MiB to `target` (fast, 64 KiB writes) and samples the daemon's RSS
/// meanwhile. Returns the status (0: closed without one), bytes sent, peak RSS (MiB).
fn stream_body(
    daemon: &Proc,
    port: u16,
    target: &str,
    sign: &str,
    chunked: bool,
) -> (u16, u64, f64) {
    const TOTAL: u64 = 100 << 20;
    let pid = daemon.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(proc_status_kib(pid, "VmRSS").unwrap_or(0)));
    let sampler = {
        let stop = stop.clone();
        let peak = peak.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let rss = proc_status_kib(pid, "VmRSS").unwrap_or(0);
                peak.fetch_max(rss, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut sent = 0u64;
    let mut status = 0;
    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
        let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let length = if chunked {
            "Transfer-Encoding: chunked".to_string()
        } else {
            format!("Content-Length: {TOTAL}")
        };
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Karajo-Sign: {sign}\r\n{length}\r\n\r\n"
        );
        let chunk = vec![b'x'; 64 * 1024];
        let mut ok = s.write_all(head.as_bytes()).is_ok();
        while ok && sent < TOTAL {
            ok = if chunked {
                s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .and_then(|()| s.write_all(&chunk))
                    .and_then(|()| s.write_all(b"\r\n"))
                    .is_ok()
            } else {
                s.write_all(&chunk).is_ok()
            };
            if ok {
                sent += chunk.len() as u64;
            }
        }
        if ok && chunked {
            let _ = s.write_all(b"0\r\n\r\n");
        }
        status = read_answer(&mut s).0;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    peak.fetch_max(
        proc_status_kib(pid, "VmRSS").unwrap_or(0),
        Ordering::Relaxed,
    );
    (status, sent, peak.load(Ordering::Relaxed) as f64 / 1024.0)
}

// ---------------------------------------------------------------------------------
// Process trees.

/// Forks children, grandchildren in nested subshells and one that ignores SIGTERM, and
/// writes every pid to `pids.<counter>` in the work directory.
const TREE_SCRIPT: &str = r#"out="$PWD/pids.$KARAJO_JOB_COUNTER"
echo $$ >> "$out"
( sleep 300 & echo $! >> "$out"; ( trap '' TERM; sleep 300 & echo $! >> "$out"; wait ) & echo $! >> "$out"; wait ) &
echo $! >> "$out"
sleep 300 &
echo $! >> "$out"
wait
"#;

/// Lines `TREE_SCRIPT` writes.
const TREE_PIDS: usize = 6;

fn process_trees(opts: &Opts, report: &mut Report) {
    let base = Base::new(opts.work.join("trees"));
    let script = base.dir.join("tree.sh");
    fs::write(&script, TREE_SCRIPT).expect("write tree.sh");
    let batch = 10.min(opts.trees.max(1));
    let command = format!("command = sh {}\nkill_grace = 300ms", script.display());
    let mut jobs = jobs_text("tc", batch, &command);
    jobs.push_str(&jobs_text("tt", batch, &format!("{command}\ntimeout = 1s")));
    base.write_config("max_job_running = 32", &jobs);
    let mut daemon = Proc::karajo(&opts.bin, &base);
    if !wait_ready(base.port, Duration::from_secs(30)) {
        report.check("trees: daemon starts", false, "no answer");
        return;
    }
    for (prefix, how) in [("tc", "cancel"), ("tt", "timeout")] {
        let mut problems = Vec::new();
        let mut stopped = 0;
        let mut checked_pids = 0;
        let mut counters = vec![0u64; batch];
        while stopped < opts.trees {
            let ids: Vec<String> = (0..batch.min(opts.trees - stopped))
                .map(|i| format!("{prefix}{i:04}"))
                .collect();
            for (i, id) in ids.iter().enumerate() {
                match hook(base.port, id) {
                    200 => counters[i] += 1,
                    other => problems.push(format!("trigger {id}: {other}")),
                }
            }
            let pid_file = |i: usize| {
                base.dir
                    .join("var/lib/karajo/job")
                    .join(&ids[i])
                    .join(format!("pids.{}", counters[i]))
            };
            let ready = wait_until(Duration::from_secs(20), || {
                (0..ids.len()).all(|i| {
                    fs::read_to_string(pid_file(i))
                        .map(|t| t.lines().count() >= TREE_PIDS)
                        .unwrap_or(false)
                })
            });
            if !ready {
                problems.push("the process trees did not all start".into());
            }
            if how == "cancel" {
                for id in &ids {
                    if action(base.port, "cancel", id) != 200 {
                        problems.push(format!("cancel {id} refused"));
                    }
                }
            }
            let status = if how == "cancel" {
                "canceled"
            } else {
                "failed"
            };
            for (i, id) in ids.iter().enumerate() {
                let log = base
                    .log_dir(id)
                    .join(format!("{id}.{}.{status}", counters[i]));
                if !wait_until(Duration::from_secs(20), || log.exists()) {
                    problems.push(format!("{} never appeared", log.display()));
                    continue;
                }
                let text = fs::read_to_string(&log).unwrap_or_default();
                let says = if how == "cancel" {
                    "CANCELED"
                } else {
                    "timed out"
                };
                if !text.contains(says) {
                    problems.push(format!("{}: no {says:?} line", log.display()));
                }
                let pids: Vec<u32> = fs::read_to_string(pid_file(i))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect();
                checked_pids += pids.len();
                // The run is recorded only after its group got SIGKILL; allow the kernel
                // a moment to finish delivering it.
                if !wait_until(Duration::from_secs(2), || pids.iter().all(|p| is_dead(*p))) {
                    let alive: Vec<u32> = pids.iter().copied().filter(|p| !is_dead(*p)).collect();
                    problems.push(format!("{id} run {}: survivors {alive:?}", counters[i]));
                    for p in alive {
                        kill9(p);
                    }
                }
            }
            stopped += ids.len();
        }
        let name = format!(
            "trees: {} {how}s of runs that fork grandchildren",
            opts.trees
        );
        report.check(
            &name,
            problems.is_empty(),
            if problems.is_empty() {
                format!("{checked_pids} processes, 0 survivors (dead or zombie), each log says why it stopped")
            } else {
                problems.join("; ")
            },
        );
    }
    daemon.stop(Duration::from_secs(10));
    kill_leftovers(&base.dir);
    let _ = fs::remove_dir_all(&base.dir);
}

// ---------------------------------------------------------------------------------
// Soak.

const SOAK_JOBS: usize = 50;
const SOAK_RATE: u64 = 50;
const SOAK_RETENTION: usize = 5;

fn soak(opts: &Opts, report: &mut Report) {
    let base = Base::new(opts.work.join("soak"));
    base.write_config(
        "max_job_running = 8",
        &jobs_text(
            "sk",
            SOAK_JOBS,
            &format!("command = echo soak $KARAJO_JOB_COUNTER\nlog_retention = {SOAK_RETENTION}"),
        ),
    );
    let mut daemon = Proc::karajo(&opts.bin, &base);
    if !wait_ready(base.port, Duration::from_secs(30)) {
        report.check("soak: daemon starts", false, "no answer");
        return;
    }
    let ids: Vec<String> = (0..SOAK_JOBS).map(|i| format!("sk{i:04}")).collect();
    // A warm-up (not measured) lets the allocator and the runtime reach their working
    // size: a tenth of the soak, at least 5 s.
    let warmup = (opts.soak / 10).max(Duration::from_secs(5));
    let period = Duration::from_micros(1_000_000 / SOAK_RATE);
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut rss = Vec::new();
    let mut fds = Vec::new();
    let fd_count = |pid: u32| {
        fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let start = Instant::now();
    let mut next = start;
    let mut next_sample = start + warmup;
    let mut k = 0usize;
    let mut max_disk = (0u64, 0u64);
    while start.elapsed() < warmup + opts.soak {
        let status = hook(base.port, &ids[k % SOAK_JOBS]);
        k += 1;
        if start.elapsed() >= warmup {
            *statuses.entry(status).or_default() += 1;
        }
        let now = Instant::now();
        if now >= next_sample {
            rss.push(daemon.rss_mib());
            fds.push(fd_count(daemon.pid()));
            let disk = tree_size(&base.dir.join("var/log"));
            max_disk = (max_disk.0.max(disk.0), max_disk.1.max(disk.1));
            next_sample += Duration::from_secs(1);
        }
        next += period;
        if let Some(left) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
    }
    let achieved = statuses.values().sum::<u64>() as f64 / opts.soak.as_secs_f64();
    let settled = wait_until(Duration::from_secs(20), || {
        ids.iter()
            .all(|id| logs_of(&base, id).iter().all(|(_, s)| s != "running"))
    });
    let half = rss.len() / 2;
    let first = median(&rss[..half.max(1)]);
    let second = median(&rss[half..]);
    let accepted = statuses.get(&200).copied().unwrap_or(0);
    let others: u64 = statuses
        .iter()
        .filter(|(s, _)| **s != 200)
        .map(|(_, n)| n)
        .sum();
    report.check(
        &format!("soak: {} s at {SOAK_RATE} triggers/s, resident memory flat", opts.soak.as_secs()),
        second <= first * 1.10 && daemon.alive(),
        format!(
            "{accepted} accepted, {others} refused ({statuses:?}), {achieved:.1}/s; median RSS first half {first:.2} MiB, second half {second:.2} MiB ({:+.1} %), after a {} s warm-up",
            (second / first - 1.0) * 100.0,
            warmup.as_secs()
        ),
    );
    let over: Vec<String> = ids
        .iter()
        .filter(|id| logs_of(&base, id).len() > SOAK_RETENTION)
        .cloned()
        .collect();
    let requests_left = fs::read_dir(base.dir.join("var/lib/karajo/request"))
        .map(|d| d.count())
        .unwrap_or(0);
    let (disk_bytes, disk_files) = tree_size(&base.dir.join("var/log"));
    report.check(
        "soak: disk bounded by log_retention, no leaked files or descriptors",
        settled
            && over.is_empty()
            && requests_left == 0
            && max_disk.1 as usize <= SOAK_JOBS * (SOAK_RETENTION + 1)
            && fds.last().copied().unwrap_or(0) <= fds.first().copied().unwrap_or(0) + 4,
        format!(
            "logs at the end: {disk_files} files, {disk_bytes} bytes (max seen {} files, {} bytes; retention {SOAK_RETENTION} x {SOAK_JOBS} jobs); jobs over retention: {over:?}; request bodies left: {requests_left}; open fds {} -> {}",
            max_disk.1,
            max_disk.0,
            fds.first().copied().unwrap_or(0),
            fds.last().copied().unwrap_or(0)
        ),
    );
    daemon.stop(Duration::from_secs(10));
    let _ = fs::remove_dir_all(&base.dir);
}

// ---------------------------------------------------------------------------------
// Connection flood.

/// The daemon's descriptor limit (soft and hard) in the flood.
const FLOOD_NOFILE: u32 = 256;
/// Connections that send half a request header and then nothing.
const FLOOD_HALF_OPEN: usize = 300;
/// Concurrent unsigned web hooks with a large declared body.
const FLOOD_BODIES: usize = 16;
const FLOOD_BODY_SIZE: u64 = 24 << 20;
/// `header_read_timeout` of the flooded daemon: short, so the run stays short.
const FLOOD_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// What the API must answer within on a connection it already serves.
const FLOOD_LATENCY: Duration = Duration::from_millis(100);
const FLOOD_RSS_MIB: f64 = 64.0;

/// A daemon started with `ulimit -n 256`; 300 connections send half a request header
/// and stop, and 16 clients POST 24 MiB unsigned bodies to a web hook, while a client
/// on an established keep-alive connection asks for the environment every 50 ms. The
/// environment must answer within 100 ms throughout, the resident memory stay under
/// 64 MiB (an unsigned body must be refused before it is read, and its connection
/// closed), the descriptors stay under the limit and return to where they were, and
/// a new client must be served once the header timeout has freed the slots.
fn flood(opts: &Opts, report: &mut Report) {
    let base = Base::new(opts.work.join("flood"));
    base.write_config(
        &format!("header_read_timeout = {}s", FLOOD_HEADER_TIMEOUT.as_secs()),
        "[job \"victim\"]\npath = /victim\ncommand = echo ran\n",
    );
    let config = base.config_file();
    let bin = opts.bin.to_string_lossy().to_string();
    let mut daemon = Proc::spawn(
        Path::new("/bin/sh"),
        &[
            "-c",
            &format!("ulimit -n {FLOOD_NOFILE} && exec \"$0\" -config \"$1\""),
            &bin,
            config.to_str().expect("UTF-8 path"),
        ],
        &base.dir.join("daemon.log"),
        &[("RUST_LOG", "karajo=info")],
    );
    let port = base.port;
    if !wait_ready(port, Duration::from_secs(30)) {
        report.check("flood: daemon starts", false, "no answer");
        return;
    }
    let pid = daemon.pid();
    let fd_count = move || {
        fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let fds_before = fd_count();
    let nofile = open_file_limit(pid);
    let Some(mut probe) = KeepAlive::connect(port) else {
        report.check("flood: probe connects", false, "no connection");
        return;
    };
    let first = probe.environment();

    // Sample the memory and the descriptors, and probe the API, until `done`.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut rss, mut fds) = (0u64, 0usize);
            while !done.load(Ordering::Relaxed) {
                rss = rss.max(proc_status_kib(pid, "VmRSS").unwrap_or(0));
                fds = fds.max(fd_count());
                std::thread::sleep(Duration::from_millis(5));
            }
            (rss, fds)
        })
    };
    let prober = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                latencies.push(probe.environment());
                std::thread::sleep(Duration::from_millis(50));
            }
            latencies
        })
    };

    let flood_start = Instant::now();
    let bodies: Vec<_> = (0..FLOOD_BODIES)
        .map(|_| std::thread::spawn(move || unsigned_body(port)))
        .collect();
    let mut half_open = Vec::new();
    for _ in 0..FLOOD_HALF_OPEN {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /karajo/api/environment HTTP/1.1\r\nHost: x\r\nX-Slow: ");
            half_open.push(s);
        }
    }
    // A new client, behind the half-open ones in the accept queue.
    let fresh = std::thread::spawn(move || {
        let t = Instant::now();
        let ok = wait_ready(port, Duration::from_secs(20));
        (ok, t.elapsed())
    });
    let bodies: Vec<BodyOutcome> = bodies
        .into_iter()
        .map(|t| t.join().unwrap_or_default())
        .collect();
    let (fresh_ok, fresh_after) = fresh.join().unwrap_or((false, Duration::ZERO));
    // Every half-open connection is closed by the server.
    let closed_by_server = half_open
        .iter()
        .filter(|s| {
            let mut s: &TcpStream = s;
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut buf = [0u8; 512];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return true,
                    Ok(_) => continue,
                    Err(e) => {
                        return !matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        );
                    }
                }
            }
        })
        .count();
    let flood_time = flood_start.elapsed();
    drop(half_open);
    done.store(true, Ordering::Relaxed);
    let (peak_kib, peak_fds) = sampler.join().unwrap_or((0, 0));
    let latencies = prober.join().unwrap_or_default();
    let fds_settled = wait_until(Duration::from_secs(5), || fd_count() <= fds_before);
    let fds_after = fd_count();
    let hwm = daemon.hwm_mib();
    let peak = (peak_kib as f64 / 1024.0).max(hwm);

    let probes: Vec<f64> = latencies
        .iter()
        .map(|l| l.map_or(f64::INFINITY, |d| d.as_secs_f64() * 1000.0))
        .collect();
    let worst = probes.iter().copied().fold(0.0, f64::max);
    let failed = probes.iter().filter(|l| l.is_infinite()).count();
    report.check(
        "flood: the API answers an established client within 100 ms throughout",
        first.is_some()
            && !probes.is_empty()
            && failed == 0
            && worst < FLOOD_LATENCY.as_secs_f64() * 1000.0,
        format!(
            "{} probes over {:.1} s, slowest {worst:.1} ms, {failed} unanswered",
            probes.len(),
            flood_time.as_secs_f64()
        ),
    );
    let limit = FLOOD_HEADER_TIMEOUT * (FLOOD_HALF_OPEN as u32 / 64 + 2);
    report.check(
        "flood: half-open connections are closed after header_read_timeout; a new client is served",
        closed_by_server == FLOOD_HALF_OPEN && fresh_ok && fresh_after < limit,
        format!(
            "{closed_by_server}/{FLOOD_HALF_OPEN} closed by the server; a new client was answered after {:.1} s (header_read_timeout {} s, limit {:.0} s)",
            fresh_after.as_secs_f64(),
            FLOOD_HEADER_TIMEOUT.as_secs(),
            limit.as_secs_f64()
        ),
    );
    let refused = bodies
        .iter()
        .filter(|b| b.status == 0 || (400..500).contains(&b.status))
        .count();
    let unread = bodies.iter().filter(|b| b.sent < FLOOD_BODY_SIZE).count();
    let statuses: BTreeMap<u16, usize> = bodies.iter().fold(BTreeMap::new(), |mut m, b| {
        *m.entry(b.status).or_default() += 1;
        m
    });
    report.check(
        "flood: unsigned 24 MiB bodies refused before they are read, memory bounded",
        refused == FLOOD_BODIES && unread == FLOOD_BODIES && peak < FLOOD_RSS_MIB,
        format!(
            "answers {statuses:?} (0: closed), {unread}/{FLOOD_BODIES} refused before the whole body was sent (most sent {:.1} MiB); daemon peak RSS {peak:.1} MiB (limit {FLOOD_RSS_MIB} MiB)",
            bodies.iter().map(|b| b.sent).max().unwrap_or(0) as f64 / (1 << 20) as f64
        ),
    );
    let log = fs::read_to_string(base.dir.join("daemon.log")).unwrap_or_default();
    let emfile = log.contains("Too many open files");
    report.check(
        "flood: descriptors stay under the limit and are all given back",
        daemon.alive()
            && nofile == Some(u64::from(FLOOD_NOFILE))
            && (peak_fds as u32) < FLOOD_NOFILE
            && fds_settled
            && !emfile,
        format!(
            "limit {nofile:?}, open fds {fds_before} -> peak {peak_fds} -> {fds_after}; 'Too many open files' in the log: {emfile}"
        ),
    );
    daemon.stop(Duration::from_secs(10));
    let _ = fs::remove_dir_all(&base.dir);
}

/// The soft open-file limit of process `pid`, from `/proc/<pid>/limits`.
fn open_file_limit(pid: u32) -> Option<u64> {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A client that keeps one connection open and measures each answer.
struct KeepAlive {
    stream: TcpStream,
}

impl KeepAlive {
    fn connect(port: u16) -> Option<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        Some(Self { stream })
    }

    /// `GET /karajo/api/environment`; the time to a complete `200`, `None` on failure.
    fn environment(&mut self) -> Option<Duration> {
        let t = Instant::now();
        self.stream
            .write_all(b"GET /karajo/api/environment HTTP/1.1\r\nHost: x\r\n\r\n")
            .ok()?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let head_end = loop {
            if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = self.stream.read(&mut buf).ok().filter(|n| *n > 0)?;
            seen.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())?;
        while seen.len() < head_end + length {
            let n = self.stream.read(&mut buf).ok().filter(|n| *n > 0)?;
            seen.extend_from_slice(&buf[..n]);
        }
        (status_of(&seen) == 200).then(|| t.elapsed())
    }
}

/// What one large unsigned POST got.
#[derive(Debug, Default)]
struct BodyOutcome {
    /// The answer's status; 0 when the connection closed without one.
    status: u16,
    /// Body bytes written before the answer came or the connection broke.
    sent: u64,
}

/// POSTs a 24 MiB body without a signature to the web hook, as fast as the socket
/// takes it, reading the answer on the side; stops writing once it came.
fn unsigned_body(port: u16) -> BodyOutcome {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return BodyOutcome::default();
    };
    let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(mut reader) = s.try_clone() else {
        return BodyOutcome::default();
    };
    let _ = reader.set_read_timeout(Some(Duration::from_secs(20)));
    let answered = Arc::new(AtomicBool::new(false));
    let answer = {
        let answered = answered.clone();
        std::thread::spawn(move || {
            let (status, _) = read_answer(&mut reader);
            answered.store(true, Ordering::Relaxed);
            status
        })
    };
    let head = format!(
        "POST /karajo/api/job_exec/run/victim HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {FLOOD_BODY_SIZE}\r\n\r\n"
    );
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0u64;
    let mut ok = s.write_all(head.as_bytes()).is_ok();
    while ok && sent < FLOOD_BODY_SIZE && !answered.load(Ordering::Relaxed) {
        ok = s.write_all(&chunk).is_ok();
        if ok {
            sent += chunk.len() as u64;
        }
    }
    let status = answer.join().unwrap_or(0);
    BodyOutcome { status, sent }
}

// ---------------------------------------------------------------------------------
// Fuzz loop (libFuzzer-free; see fuzz/ and scripts/fuzz for the coverage-guided one).

/// xorshift64*: a small, seedable generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens the mutator splices in: the grammar's punctuation and keywords.
const DICTIONARY: &[&str] = &[
    "[",
    "]",
    "\"",
    "\\",
    "=",
    "#",
    ";",
    "\n",
    "\r\n",
    " ",
    "\t",
    "@",
    ",",
    "*",
    "/",
    "-",
    ":",
    ".",
    "job",
    "karajo",
    "[job \"",
    "\"]",
    "command = ",
    "schedule = ",
    "interval = ",
    "\\\n",
    "minutely",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
    "@hourly",
    "mon",
    "sun",
    "fri",
    "00:00",
    "23:59",
    "24:00",
    "31",
    "29",
    "60",
    "0",
    "99999999999999999999",
    "*/",
    "1-5",
    "L",
    "#2",
    "?",
    "x-karajo-sign:",
    "x-hub-signature-256: sha256=",
    "x-hub-signature: sha1=",
    "x-payload-signature:",
    "x-payload-nonce:",
    "\u{ff}",
    "\u{feff}",
    "é",
    "\0",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 => {
                let token = DICTIONARY[rng.below(DICTIONARY.len())].as_bytes();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, token.iter().copied());
            }
            3 if !input.is_empty() => {
                let a = rng.below(input.len());
                let b = (a + rng.below(16)).min(input.len());
                input.drain(a..b);
            }
            4 if !input.is_empty() => {
                let a = rng.below(input.len());
                let b = (a + rng.below(32)).min(input.len());
                let piece = input[a..b].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, piece);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let at = rng.below(input.len() + 1);
                    input.splice(at..at, other[a..].iter().copied().take(64));
                }
            }
            _ => input.truncate(rng.below(input.len() + 1)),
        }
    }
    input.truncate(4096);
}

fn seeds_of(target: &str) -> Vec<Vec<u8>> {
    let dir = repo_root().join("fuzz/corpus").join(target);
    let mut seeds: Vec<Vec<u8>> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    seeds.push(Vec::new());
    seeds
}

fn fuzz(opts: &Opts, report: &mut Report) {
    let crashes = opts.work.join("fuzz-crashes");
    type Target = fn(&[u8]);
    let targets: [(&str, Target); 3] = [
        ("ini", targets::ini),
        ("schedule", targets::schedule),
        ("webhook", targets::webhook),
    ];
    // Panics are expected to be caught here; keep their messages short.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    for (name, target) in targets {
        let seeds = seeds_of(name);
        let mut rng = Rng(0x5eed ^ name.len() as u64 ^ now_secs());
        let t = Instant::now();
        let mut runs = 0u64;
        let mut failure = None;
        let mut input = Vec::new();
        let mut slowest = (Duration::ZERO, Vec::new());
        while t.elapsed() < opts.fuzz && failure.is_none() {
            if runs.is_multiple_of(64) {
                input = seeds[rng.below(seeds.len())].clone();
            }
            mutate(&mut rng, &seeds, &mut input);
            let data = input.clone();
            let one = Instant::now();
            let result = std::panic::catch_unwind(|| target(&data));
            let took = one.elapsed();
            if took > slowest.0 {
                slowest = (took, data.clone());
            }
            if result.is_err() {
                fs::create_dir_all(&crashes).expect("create crash directory");
                let path = crashes.join(format!("{name}-{runs}"));
                fs::write(&path, &data).expect("save crashing input");
                failure = Some(path);
            }
            runs += 1;
        }
        let secs = t.elapsed().as_secs_f64();
        if slowest.0 > Duration::from_millis(100) {
            fs::create_dir_all(&crashes).expect("create crash directory");
            let path = crashes.join(format!("{name}-slow"));
            fs::write(&path, &slowest.1).expect("save slow input");
            println!(
                "     slowest {name} input took {:.0} ms: {:?} (saved to {})",
                slowest.0.as_secs_f64() * 1e3,
                String::from_utf8_lossy(&slowest.1),
                path.display()
            );
        }
        report.check(
            &format!("fuzz loop: {name}"),
            failure.is_none(),
            match &failure {
                None => {
                    format!("{runs} inputs in {secs:.0} s without a panic or a broken property")
                }
                Some(path) => format!(
                    "panic after {runs} inputs; input saved to {}",
                    path.display()
                ),
            },
        );
    }
    let _ = std::panic::take_hook();
}
