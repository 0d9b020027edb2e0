//! The benchmark harness (issue 6): runs the release `karajo` binary as a real process
//! on 127.0.0.1 through six scenarios (web hook throughput against adnanh/webhook,
//! environment API latency, idle cost, schedule precision, large output against a
//! shell redirect, start-up with many logs), reports medians over rounds and the ratio
//! against the peer or baseline measured in the same run, prints a table and writes
//! `target/bench/results.json`. Run it with `./bench/run` (see the README); `--help`
//! lists the flags. Harness code: setup errors panic with a message.

// Harness code driving a release binary from outside: a setup error (no binary, a port
// in use, a peer that never starts) ends the run with a panic naming what failed, which
// is the report wanted here, so the daemon's no-unwrap/no-expect rule does not apply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common.rs"]
mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const USAGE: &str = "usage: bench [--rounds N] [--quick] [--only a,b,...] [--out FILE] [--work DIR] [--bin FILE] [--go FILE] [--base FILE]

Scenarios (for --only): throughput, aa, environment, idle, precision, output, startup, replay,
pings, services.
  --rounds N   rounds per scenario (default 3; 1 with --quick)
  --quick      smaller sizes and shorter windows, for a smoke run (figures not comparable)
  --out FILE   JSON result file (default target/bench/results.json)
  --work DIR   scratch directory (default target/bench/work)
  --bin FILE   the karajo binary (default target/release/karajo)
  --go FILE    the Go original, a peer (default ../shared/peers/karajo-go; skipped with a
               note when absent)
  --base FILE  the binary the `aa` scenario compares --bin with (default: --bin itself,
               which makes it an A/A run: the harness's own noise)
  --max-job-running N   karajo's max_job_running in the throughput scenario (default 16)";

/// Command-line options.
#[derive(Debug, Clone)]
struct Opts {
    rounds: usize,
    quick: bool,
    only: Option<Vec<String>>,
    out: PathBuf,
    work: PathBuf,
    bin: PathBuf,
    /// The Go original, when it is there.
    go: Option<PathBuf>,
    /// What `aa` compares `bin` with.
    base: PathBuf,
    max_job_running: usize,
}

impl Opts {
    fn parse() -> Self {
        let root = repo_root();
        let mut rounds = None;
        let mut quick = false;
        let mut only = None;
        let mut out = root.join("target/bench/results.json");
        let mut work = root.join("target/bench/work");
        let mut bin = root.join("target/release/karajo");
        let mut go = root.join("../shared/peers/karajo-go");
        let mut base = None;
        let mut max_job_running = TP_MAX_JOB_RUNNING;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .unwrap_or_else(|| fail(&format!("{name} needs a value")))
            };
            match arg.as_str() {
                "--rounds" => {
                    rounds = Some(
                        value("--rounds")
                            .parse()
                            .unwrap_or_else(|_| fail("--rounds takes a number")),
                    )
                }
                "--quick" => quick = true,
                "--only" => {
                    only = Some(
                        value("--only")
                            .split(',')
                            .map(str::to_string)
                            .collect::<Vec<_>>(),
                    )
                }
                "--out" => out = PathBuf::from(value("--out")),
                "--work" => work = PathBuf::from(value("--work")),
                "--bin" => bin = PathBuf::from(value("--bin")),
                "--go" => go = PathBuf::from(value("--go")),
                "--base" => base = Some(PathBuf::from(value("--base"))),
                "--max-job-running" => {
                    max_job_running = value("--max-job-running")
                        .parse()
                        .unwrap_or_else(|_| fail("--max-job-running takes a number"))
                }
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => fail(&format!("unknown argument {other:?}")),
            }
        }
        let rounds: usize = rounds.unwrap_or(if quick { 1 } else { 3 });
        Self {
            rounds: rounds.max(1),
            quick,
            only,
            out,
            work,
            base: base.unwrap_or_else(|| bin.clone()),
            bin,
            go: go.is_file().then_some(go),
            max_job_running,
        }
    }

    fn wants(&self, scenario: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == scenario))
    }

    fn base(&self, name: &str) -> Base {
        Base::new(self.work.join(name))
    }

    /// The note of a row whose Go peer is missing.
    fn no_go(&self) -> String {
        "the Go original (../shared/peers/karajo-go, or --go FILE) is not there: no Go peer"
            .to_string()
    }
}

/// Go's figures, when the Go original was run.
fn go_rows(values: &[f64]) -> Option<Vec<f64>> {
    (!values.is_empty()).then(|| values.to_vec())
}

fn fail(message: &str) -> ! {
    eprintln!("bench: {message}\n\n{USAGE}");
    std::process::exit(2);
}

/// How a measured value compares with its target.
#[derive(Debug, Clone, Copy)]
enum Target {
    AtMost(f64),
    RatioAtLeast(f64),
    RatioAtMost(f64),
    None,
}

/// One line of the result table.
#[derive(Debug, Clone)]
struct Row {
    scenario: &'static str,
    metric: String,
    unit: &'static str,
    /// karajo's value per round.
    karajo: Vec<f64>,
    /// The peer or baseline: its name and value per round.
    peer: Option<(&'static str, Vec<f64>)>,
    target: Target,
    note: String,
}

impl Row {
    fn new(scenario: &'static str, metric: &str, unit: &'static str, karajo: Vec<f64>) -> Self {
        Self {
            scenario,
            metric: metric.to_string(),
            unit,
            karajo,
            peer: None,
            target: Target::None,
            note: String::new(),
        }
    }

    fn peer(mut self, name: &'static str, values: Vec<f64>) -> Self {
        self.peer = Some((name, values));
        self
    }

    fn target(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    /// Adds a note (after any note the row has).
    fn note(mut self, note: impl Into<String>) -> Self {
        let note = note.into();
        if self.note.is_empty() {
            self.note = note;
        } else {
            self.note = format!("{}; {note}", self.note);
        }
        self
    }

    fn value(&self) -> f64 {
        median(&self.karajo)
    }

    fn peer_value(&self) -> Option<f64> {
        self.peer.as_ref().map(|(_, v)| median(v))
    }

    /// karajo / peer, from the medians.
    fn ratio(&self) -> Option<f64> {
        self.peer_value().map(|p| self.value() / p)
    }

    fn met(&self) -> Option<bool> {
        match self.target {
            Target::AtMost(t) => Some(self.value() <= t),
            Target::RatioAtLeast(t) => self.ratio().map(|r| r >= t),
            Target::RatioAtMost(t) => self.ratio().map(|r| r <= t),
            Target::None => None,
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            Target::AtMost(t) => format!("<= {} {}", fmt_num(t), self.unit),
            Target::RatioAtLeast(t) => format!("ratio >= {}", fmt_num(t)),
            Target::RatioAtMost(t) => format!("ratio <= {}", fmt_num(t)),
            Target::None => String::new(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "scenario": self.scenario,
            "metric": self.metric,
            "unit": self.unit,
            "karajo_median": self.value(),
            "karajo_rounds": self.karajo,
            "peer": self.peer.as_ref().map(|(name, _)| *name),
            "peer_median": self.peer_value(),
            "peer_rounds": self.peer.as_ref().map(|(_, v)| v.clone()),
            "ratio": self.ratio(),
            "target": self.target_text(),
            "met": self.met(),
            "note": self.note,
        })
    }
}

fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn print_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario | metric | karajo | peer / baseline | ratio | target | met |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for row in rows {
        let peer = match &row.peer {
            Some((name, _)) => format!(
                "{} {} ({name})",
                fmt_num(row.peer_value().unwrap_or(f64::NAN)),
                row.unit
            ),
            None => String::new(),
        };
        let ratio = row.ratio().map(|r| format!("{r:.2}")).unwrap_or_default();
        let met = match row.met() {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} {} | {} | {} | {} | {} |",
            row.scenario,
            row.metric,
            fmt_num(row.value()),
            row.unit,
            peer,
            ratio,
            row.target_text(),
            met
        );
    }
    out
}

fn main() {
    let opts = Opts::parse();
    if !opts.bin.is_file() {
        fail(&format!(
            "{} is missing: build it with `cargo build --release` (./bench/run does)",
            opts.bin.display()
        ));
    }
    fs::create_dir_all(&opts.work).expect("create the work directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let mut rows = Vec::new();
    type Scenario = fn(&Opts, &tokio::runtime::Runtime) -> Vec<Row>;
    let scenarios: [(&str, Scenario); 10] = [
        ("throughput", throughput),
        ("aa", aa),
        ("environment", environment_latency),
        ("idle", idle),
        ("precision", precision),
        ("output", large_output),
        ("startup", startup),
        ("replay", replay_cost),
        ("pings", pings),
        ("services", services),
    ];
    for (name, scenario) in scenarios {
        if opts.wants(name) {
            eprintln!("== {name}");
            let t = Instant::now();
            rows.extend(scenario(&opts, &runtime));
            eprintln!("== {name}: {:.0} s", t.elapsed().as_secs_f64());
        }
    }
    let table = print_table(&rows);
    println!(
        "\nkarajo bench: {} round(s){}, medians; ratio = karajo / peer, measured in the same run\n",
        opts.rounds,
        if opts.quick { ", --quick sizes" } else { "" }
    );
    print!("{table}");
    println!(
        "\npeers: karajo-go {}; webhook {}",
        opts.go
            .as_ref()
            .map_or("absent (rows without it say so)".to_string(), |p| p
                .display()
                .to_string()),
        which("webhook").map_or("absent".to_string(), |p| p.display().to_string()),
    );
    for row in rows.iter().filter(|r| !r.note.is_empty()) {
        println!("- {} / {}: {}", row.scenario, row.metric, row.note);
    }
    let result = json!({
        "karajo_version": env!("CARGO_PKG_VERSION"),
        "git_commit": git_commit(),
        "rounds": opts.rounds,
        "karajo_go": opts.go.as_ref().map(|p| p.display().to_string()),
        "quick": opts.quick,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "duration_s": started.elapsed().as_secs_f64(),
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "table": table,
    });
    if let Some(parent) = opts.out.parent() {
        fs::create_dir_all(parent).expect("create the output directory");
    }
    let text = serde_json::to_string_pretty(&result).expect("JSON");
    fs::write(&opts.out, text)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", opts.out.display()));
    println!("\nwrote {}", opts.out.display());
}

fn git_commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------
// 1. Web hook throughput and trigger-to-start latency, karajo against adnanh/webhook.

/// Jobs in the throughput scenario.
const TP_JOBS: usize = 100;
/// Concurrent clients.
const TP_CLIENTS: usize = 32;
/// karajo's `max_job_running` in the throughput scenario (`--max-job-running`).
const TP_MAX_JOB_RUNNING: usize = 16;

/// What one throughput run measured.
#[derive(Debug, Clone, Copy)]
struct Throughput {
    runs_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Answer time of accepted triggers, p99 (ms).
    answer_p99_ms: f64,
    rejected: u64,
    /// CPU ms per run spent by the daemon itself, and by the commands it reaped.
    daemon_cpu_ms: f64,
    commands_cpu_ms: f64,
}

fn throughput(opts: &Opts, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let triggers = if opts.quick { 2_000 } else { 10_000 };
    let webhook = which("webhook");
    let mut k = Vec::new();
    let mut g = Vec::new();
    let mut w = Vec::new();
    for round in 0..opts.rounds {
        // Rotate who goes first, so nobody always gets the cooler machine.
        for turn in 0..3 {
            match (round + turn) % 3 {
                0 => {
                    let r = rt.block_on(throughput_karajo(
                        opts, &opts.bin, "karajo", round, triggers,
                    ));
                    eprintln!("   round {round} karajo: {r:?}");
                    k.push(r);
                }
                1 => {
                    if let Some(go) = &opts.go {
                        let r = rt.block_on(throughput_karajo(opts, go, "go", round, triggers));
                        eprintln!("   round {round} karajo-go: {r:?}");
                        g.push(r);
                    }
                }
                _ => {
                    if let Some(bin) = &webhook {
                        let r = rt.block_on(throughput_webhook(opts, bin, round, triggers));
                        eprintln!("   round {round} webhook: {r:?}");
                        w.push(r);
                    }
                }
            }
        }
    }
    let karajo = |f: fn(&Throughput) -> f64| -> Vec<f64> { k.iter().map(f).collect() };
    let of = |peers: &[Throughput], f: fn(&Throughput) -> f64| -> Option<Vec<f64>> {
        (!peers.is_empty()).then(|| peers.iter().map(f).collect())
    };
    let with_go = |row: Row, values: Option<Vec<f64>>| match values {
        Some(v) => row.peer("karajo-go", v),
        None => row.note(opts.no_go()),
    };
    let with_webhook = |row: Row, values: Option<Vec<f64>>| match values {
        Some(v) => row.peer("webhook", v),
        None => row.note("adnanh/webhook not installed: no peer"),
    };
    let rejected: Vec<f64> = k.iter().map(|r| r.rejected as f64).collect();
    let runs = format!(
        "completed runs/s ({triggers} signed triggers, {TP_JOBS} jobs, {TP_CLIENTS} clients)"
    );
    vec![
        with_go(
            Row::new("webhook", &runs, "runs/s", karajo(|r| r.runs_per_sec))
                .target(Target::RatioAtLeast(1.2)),
            of(&g, |r| r.runs_per_sec),
        )
        .note(format!(
            "karajo and the Go original: max_job_running = {}, log_retention = 5, default logging; 429 answers retried on the next job (karajo's median {} per round, not counted); all run `/bin/sh -c 'date +%s%N >> starts/<job>'` per trigger",
            opts.max_job_running,
            fmt_num(median(&rejected))
        )),
        with_webhook(
            Row::new("webhook", &runs, "runs/s", karajo(|r| r.runs_per_sec))
                .target(Target::RatioAtLeast(1.0)),
            of(&w, |r| r.runs_per_sec),
        ),
        with_go(
            Row::new("webhook", "answer time of an accepted trigger, p99", "ms", karajo(|r| r.answer_p99_ms)),
            of(&g, |r| r.answer_p99_ms),
        )
        .note("from sending the request to the end of its 200 answer"),
        with_webhook(
            Row::new("webhook", "answer time of an accepted trigger, p99", "ms", karajo(|r| r.answer_p99_ms)),
            of(&w, |r| r.answer_p99_ms),
        )
        .note("webhook answers after its command ran (include-command-output-in-response)"),
        with_go(
            Row::new("webhook", "request to command start, p50", "ms", karajo(|r| r.p50_ms)),
            of(&g, |r| r.p50_ms),
        ),
        with_go(
            Row::new("webhook", "request to command start, p99", "ms", karajo(|r| r.p99_ms)),
            of(&g, |r| r.p99_ms),
        ),
        with_webhook(
            Row::new("webhook", "request to command start, p99", "ms", karajo(|r| r.p99_ms)),
            of(&w, |r| r.p99_ms),
        )
        .note("per job, the k-th accepted request (by send time) is paired with the k-th timestamp its command wrote; karajo's includes the wait behind the job's previous run and for a max_job_running slot; webhook runs with include-command-output-in-response (it answers after the command, so its 32 clients are its back-pressure: asynchronous, it ran out of file descriptors at 10,000 triggers and dropped commands it had answered 200 for)"),
        with_go(
            Row::new("webhook", "daemon's own CPU per run", "ms", karajo(|r| r.daemon_cpu_ms)),
            of(&g, |r| r.daemon_cpu_ms),
        ),
        with_webhook(
            Row::new("webhook", "daemon's own CPU per run", "ms", karajo(|r| r.daemon_cpu_ms)),
            of(&w, |r| r.daemon_cpu_ms),
        )
        .note("utime+stime of the daemon process over the load, divided by the runs; karajo's includes the 429 answers"),
        with_webhook(
            Row::new("webhook", "commands' CPU per run (reaped children)", "ms", karajo(|r| r.commands_cpu_ms)),
            of(&w, |r| r.commands_cpu_ms),
        ),
    ]
}

/// The harness's own noise (an A/A run), or a before/after comparison: the throughput
/// scenario with `--bin` against `--base` (the same binary unless given), alternating
/// who goes first. With one binary, the ratios' distance from 1 is the noise any other
/// ratio of this run must exceed before it means something.
fn aa(opts: &Opts, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let triggers = if opts.quick { 2_000 } else { 10_000 };
    let same = opts.base == opts.bin;
    let label: &'static str = if same {
        "karajo (A/A)"
    } else {
        "karajo (--base)"
    };
    let mut a = Vec::new();
    let mut b = Vec::new();
    for round in 0..opts.rounds {
        for turn in 0..2 {
            if (round + turn) % 2 == 0 {
                let r = rt.block_on(throughput_karajo(opts, &opts.bin, "a", round, triggers));
                eprintln!("   round {round} A: {r:?}");
                a.push(r);
            } else {
                let r = rt.block_on(throughput_karajo(opts, &opts.base, "b", round, triggers));
                eprintln!("   round {round} B: {r:?}");
                b.push(r);
            }
        }
    }
    let per_round: Vec<String> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| format!("{:.3}", x.runs_per_sec / y.runs_per_sec))
        .collect();
    let col =
        |v: &[Throughput], f: fn(&Throughput) -> f64| -> Vec<f64> { v.iter().map(f).collect() };
    let what = if same {
        "the same binary twice: an A/A run, |1 - ratio| is the harness's noise".to_string()
    } else {
        format!("--bin against --base {}", opts.base.display())
    };
    vec![
        Row::new(
            "aa",
            "completed runs/s",
            "runs/s",
            col(&a, |r| r.runs_per_sec),
        )
        .peer(label, col(&b, |r| r.runs_per_sec))
        .note(format!(
            "the throughput scenario, {what}; per-round ratios {}",
            per_round.join(", ")
        )),
        Row::new(
            "aa",
            "answer time of an accepted trigger, p99",
            "ms",
            col(&a, |r| r.answer_p99_ms),
        )
        .peer(label, col(&b, |r| r.answer_p99_ms)),
        Row::new(
            "aa",
            "request to command start, p99",
            "ms",
            col(&a, |r| r.p99_ms),
        )
        .peer(label, col(&b, |r| r.p99_ms)),
        Row::new(
            "aa",
            "daemon's own CPU per run",
            "ms",
            col(&a, |r| r.daemon_cpu_ms),
        )
        .peer(label, col(&b, |r| r.daemon_cpu_ms)),
    ]
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// The command both systems run per trigger: append a start timestamp.
fn stamp_command(starts: &Path, id: &str) -> String {
    format!("date +%s%N >> {}/{id}", starts.display())
}

/// Shared state of the load generator.
struct Load {
    remaining: AtomicI64,
    cursor: AtomicUsize,
    rejected: AtomicU64,
    errors: AtomicU64,
    /// Per job: wall-clock send times (ns) of accepted triggers.
    sends: Mutex<Vec<Vec<i128>>>,
    /// Answer times (ms) of accepted triggers.
    answers: Mutex<Vec<f64>>,
    /// Per job: no trigger before this instant (ns since the load began) after a 429.
    blocked_until: Vec<AtomicU64>,
    t0: Instant,
}

/// How long a client leaves a job alone after it answered 429 (its run and its queued
/// run must both end first: with 100 jobs, a job finishes a run every few hundred ms).
const TP_BACKOFF: Duration = Duration::from_millis(50);

/// Sends `triggers` accepted requests from [`TP_CLIENTS`] clients, round-robin over the
/// jobs; a 429 is retried on the next job after a short pause. `send` posts one
/// trigger for job index `j` and returns the HTTP status.
async fn load<F, Fut>(triggers: usize, send: F) -> Arc<Load>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let load = Arc::new(Load {
        remaining: AtomicI64::new(triggers as i64),
        cursor: AtomicUsize::new(0),
        rejected: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        sends: Mutex::new(vec![Vec::new(); TP_JOBS]),
        answers: Mutex::new(Vec::with_capacity(triggers)),
        blocked_until: (0..TP_JOBS).map(|_| AtomicU64::new(0)).collect(),
        t0: Instant::now(),
    });
    let send = Arc::new(send);
    let mut tasks = Vec::new();
    for _ in 0..TP_CLIENTS {
        let load = load.clone();
        let send = send.clone();
        tasks.push(tokio::spawn(async move {
            let mut seq = 0u64;
            while load.remaining.fetch_sub(1, Ordering::SeqCst) > 0 {
                let mut skipped = 0;
                loop {
                    let j = load.cursor.fetch_add(1, Ordering::Relaxed) % TP_JOBS;
                    let now = load.t0.elapsed().as_nanos() as u64;
                    if load.blocked_until[j].load(Ordering::Relaxed) > now {
                        skipped += 1;
                        if skipped % TP_JOBS == 0 {
                            // Every job is busy: wait a little instead of spinning.
                            tokio::time::sleep(Duration::from_micros(500)).await;
                        }
                        continue;
                    }
                    seq += 1;
                    let sent = now_ns();
                    let asked = Instant::now();
                    match send(j, seq).await {
                        200 => {
                            let took = asked.elapsed().as_secs_f64() * 1e3;
                            load.answers.lock().expect("lock").push(took);
                            load.sends.lock().expect("lock")[j].push(sent);
                            break;
                        }
                        429 => {
                            load.rejected.fetch_add(1, Ordering::Relaxed);
                            let until = load.t0.elapsed() + TP_BACKOFF;
                            load.blocked_until[j].store(until.as_nanos() as u64, Ordering::Relaxed);
                        }
                        other => {
                            let errors = load.errors.fetch_add(1, Ordering::Relaxed);
                            assert!(errors < 100, "too many failed triggers (last: {other})");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    load
}

/// Pairs send times with start stamps per job; returns latencies in ms.
fn latencies(sends: &[Vec<i128>], starts: &Path, ids: &[String]) -> Vec<f64> {
    let mut all = Vec::new();
    for (j, id) in ids.iter().enumerate() {
        let mut sent = sends[j].clone();
        sent.sort();
        let mut stamps = read_stamps(&starts.join(id));
        stamps.sort();
        assert_eq!(
            sent.len(),
            stamps.len(),
            "job {id}: {} accepted triggers but {} command starts",
            sent.len(),
            stamps.len()
        );
        all.extend(sent.iter().zip(&stamps).map(|(s, t)| (t - s) as f64 / 1e6));
    }
    sorted(all)
}

fn read_stamps(path: &Path) -> Vec<i128> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn count_lines(path: &Path) -> usize {
    fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

/// One throughput run of karajo, or of the Go original (`bin`, which reads the same
/// configuration and writes the same log names); `name` names its work directory.
async fn throughput_karajo(
    opts: &Opts,
    bin: &Path,
    name: &str,
    round: usize,
    triggers: usize,
) -> Throughput {
    let base = opts.base(&format!("tp-{name}-{round}"));
    let starts = base.dir.join("starts");
    fs::create_dir_all(&starts).expect("starts dir");
    let ids: Vec<String> = (0..TP_JOBS).map(|i| format!("tp{i:04}")).collect();
    let mut jobs = String::new();
    for id in &ids {
        let _ = writeln!(
            jobs,
            "[job \"{id}\"]\npath = /{id}\ncommand = {}\n",
            stamp_command(&starts, id)
        );
    }
    base.write_config(
        &format!("max_job_running = {}", opts.max_job_running),
        &jobs,
    );
    let daemon = Proc::karajo(bin, &base);
    let client = http_client();
    wait_http_ok(
        &client,
        &base.url("/karajo/api/environment"),
        daemon.started,
        Duration::from_secs(30),
    )
    .await;
    let urls: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|id| base.url(&format!("/karajo/api/job_exec/run/{id}")))
            .collect(),
    );
    let cpu0 = daemon.cpu_split();
    let t0 = Instant::now();
    let c = client.clone();
    let load = load(triggers, move |j, seq| {
        let c = c.clone();
        let urls = urls.clone();
        async move { post_signed(&c, &urls[j], "application/json", hook_body(seq)).await }
    })
    .await;
    // Completed: each job's last accepted run has its final log.
    let expected: Vec<usize> = load
        .sends
        .lock()
        .expect("lock")
        .iter()
        .map(Vec::len)
        .collect();
    let mut pending: Vec<usize> = (0..TP_JOBS).filter(|j| expected[*j] > 0).collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !pending.is_empty() {
        pending.retain(|j| {
            let dir = base.log_dir(&ids[*j]);
            let n = expected[*j];
            !(dir.join(format!("{}.{n}.success", ids[*j])).exists()
                || dir.join(format!("{}.{n}.failed", ids[*j])).exists())
        });
        assert!(Instant::now() < deadline, "karajo runs did not complete");
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = daemon.cpu_split();
    let lat = latencies(&load.sends.lock().expect("lock"), &starts, &ids);
    let mut daemon = daemon;
    daemon.stop(Duration::from_secs(10));
    let _ = fs::remove_dir_all(&base.dir);
    Throughput {
        runs_per_sec: triggers as f64 / elapsed,
        p50_ms: quantile(&lat, 0.50),
        p99_ms: quantile(&lat, 0.99),
        answer_p99_ms: quantile(&sorted(load.answers.lock().expect("lock").clone()), 0.99),
        rejected: load.rejected.load(Ordering::Relaxed),
        daemon_cpu_ms: (cpu1.0 - cpu0.0) * 1e3 / triggers as f64,
        commands_cpu_ms: (cpu1.1 - cpu0.1) * 1e3 / triggers as f64,
    }
}

async fn throughput_webhook(opts: &Opts, bin: &Path, round: usize, triggers: usize) -> Throughput {
    let base = opts.base(&format!("tp-webhook-{round}"));
    let starts = base.dir.join("starts");
    fs::create_dir_all(&starts).expect("starts dir");
    let ids: Vec<String> = (0..TP_JOBS).map(|i| format!("tp{i:04}")).collect();
    let hooks: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            json!({
                "id": id,
                "execute-command": "/bin/sh",
                "command-working-directory": base.dir.display().to_string(),
                "pass-arguments-to-command": [
                    {"source": "string", "name": "-c"},
                    {"source": "string", "name": stamp_command(&starts, id)},
                ],
                "trigger-rule-mismatch-http-response-code": 403,
                // Answer after the command ran: back-pressure through the 32 clients.
                // In its default asynchronous mode webhook starts every command at once;
                // at 10,000 triggers it ran out of file descriptors and dropped commands
                // after answering 200.
                "include-command-output-in-response": true,
                "trigger-rule": {"match": {
                    "type": "payload-hmac-sha256",
                    "secret": SECRET,
                    "parameter": {"source": "header", "name": "X-Karajo-Sign"},
                }},
            })
        })
        .collect();
    let hooks_file = base.dir.join("hooks.json");
    fs::write(
        &hooks_file,
        serde_json::to_string_pretty(&hooks).expect("JSON"),
    )
    .expect("write hooks.json");
    let port = base.port.to_string();
    let mut daemon = Proc::spawn(
        bin,
        &[
            "-hooks",
            hooks_file.to_str().expect("UTF-8 path"),
            "-ip",
            "127.0.0.1",
            "-port",
            &port,
        ],
        &base.dir.join("daemon.log"),
        &[],
    );
    let client = http_client();
    // Any answer means it listens (an unsigned GET is refused by the rule).
    let since = Instant::now();
    while client.get(base.url("/hooks/tp0000")).send().await.is_err() {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "webhook did not start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let urls: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|id| base.url(&format!("/hooks/{id}")))
            .collect(),
    );
    let cpu0 = daemon.cpu_split();
    let t0 = Instant::now();
    let c = client.clone();
    let load = load(triggers, move |j, seq| {
        let c = c.clone();
        let urls = urls.clone();
        async move { post_signed(&c, &urls[j], "application/json", hook_body(seq)).await }
    })
    .await;
    let expected: Vec<usize> = load
        .sends
        .lock()
        .expect("lock")
        .iter()
        .map(Vec::len)
        .collect();
    let mut pending: Vec<usize> = (0..TP_JOBS).filter(|j| expected[*j] > 0).collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !pending.is_empty() {
        pending.retain(|j| count_lines(&starts.join(&ids[*j])) < expected[*j]);
        assert!(
            Instant::now() < deadline,
            "webhook commands did not complete"
        );
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = daemon.cpu_split();
    let lat = latencies(&load.sends.lock().expect("lock"), &starts, &ids);
    daemon.stop(Duration::from_secs(10));
    let _ = fs::remove_dir_all(&base.dir);
    Throughput {
        runs_per_sec: triggers as f64 / elapsed,
        p50_ms: quantile(&lat, 0.50),
        p99_ms: quantile(&lat, 0.99),
        answer_p99_ms: quantile(&sorted(load.answers.lock().expect("lock").clone()), 0.99),
        rejected: load.rejected.load(Ordering::Relaxed),
        daemon_cpu_ms: (cpu1.0 - cpu0.0) * 1e3 / triggers as f64,
        commands_cpu_ms: (cpu1.1 - cpu0.1) * 1e3 / triggers as f64,
    }
}

// ---------------------------------------------------------------------------------
// 2. Environment API latency with 1,000 jobs of 5 logs each.

/// Writes `logs` finished log files for each of `jobs` jobs `<prefix>NNNN`.
fn seed_logs(base: &Base, prefix: &str, jobs: usize, logs: usize) {
    for i in 0..jobs {
        let id = format!("{prefix}{i:04}");
        let dir = base.log_dir(&id);
        fs::create_dir_all(&dir).expect("log dir");
        for n in 1..=logs {
            let text = format!(
                "2026-01-01 00:00:00 UTC job: {id}: === BEGIN\n2026-01-01 00:00:00 UTC job: {id}: \n2026-01-01 00:00:00 UTC job: {id}: --- Execute  0: true\n2026-01-01 00:00:00 UTC job: {id}: === DONE\n2026-01-01 00:00:00 UTC job: {id}: === job: {id}: finished.\n"
            );
            fs::write(dir.join(format!("{id}.{n}.success")), text).expect("write log");
        }
    }
}

fn environment_latency(opts: &Opts, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let jobs = 1000;
    let per_client = if opts.quick { 20 } else { 100 };
    let base = opts.base("environment");
    base.write_config(
        "",
        &jobs_text("env", jobs, "command = true\nlog_retention = 5"),
    );
    seed_logs(&base, "env", jobs, 5);
    let mut daemon = Proc::karajo(&opts.bin, &base);
    let client = http_client();
    let url = base.url("/karajo/api/environment");
    rt.block_on(wait_http_ok(
        &client,
        &url,
        daemon.started,
        Duration::from_secs(60),
    ));
    let mut plain_p50 = Vec::new();
    let mut plain_p99 = Vec::new();
    let mut gzip_p50 = Vec::new();
    let mut gzip_p99 = Vec::new();
    let mut sizes = (0usize, 0usize);
    for round in 0..opts.rounds {
        for gzip in [false, true] {
            let (lat, size) = rt.block_on(hammer(&client, &url, gzip, per_client));
            eprintln!(
                "   round {round} gzip={gzip}: p50 {:.2} ms p99 {:.2} ms, {size} bytes",
                quantile(&lat, 0.5),
                quantile(&lat, 0.99)
            );
            if gzip {
                gzip_p50.push(quantile(&lat, 0.5));
                gzip_p99.push(quantile(&lat, 0.99));
                sizes.1 = size;
            } else {
                plain_p50.push(quantile(&lat, 0.5));
                plain_p99.push(quantile(&lat, 0.99));
                sizes.0 = size;
            }
        }
    }
    let rss = daemon.hwm_mib();
    daemon.stop(Duration::from_secs(10));
    let _ = fs::remove_dir_all(&base.dir);
    let load = format!("{TP_CLIENTS} clients x {per_client} requests");
    vec![
        Row::new("environment", "GET, no gzip, p50", "ms", plain_p50),
        Row::new("environment", "GET, no gzip, p99", "ms", plain_p99)
            .target(Target::AtMost(20.0))
            .note(format!(
                "1,000 jobs x 5 logs, {load} per round; answer {} bytes plain, {} bytes gzip; daemon peak RSS {} MiB",
                sizes.0,
                sizes.1,
                fmt_num(rss)
            )),
        Row::new("environment", "GET, Accept-Encoding: gzip, p50", "ms", gzip_p50),
        Row::new("environment", "GET, Accept-Encoding: gzip, p99", "ms", gzip_p99)
            .target(Target::AtMost(20.0)),
    ]
}

/// The replay guard's cost per signed request, in-process: spending a fresh signature
/// (the stamp read from the body, the lock, the map) in a guard that is empty and in one
/// that is full (forgetting the oldest on every insert), against the HMAC check every
/// signed request pays anyway.
fn replay_cost(opts: &Opts, _rt: &tokio::runtime::Runtime) -> Vec<Row> {
    use karajo::auth::{ReplayGuard, SignatureId, StampRules, verify_global};
    let n: usize = if opts.quick { 20_000 } else { 200_000 };
    let capacity = karajo::auth::replay::DEFAULT_REPLAY_CAPACITY;
    let rules = StampRules::default();
    let now = jiff::Timestamp::now();
    let bodies: Vec<String> = (0..n).map(|i| form_body(&format!("job{i}"))).collect();
    let signatures: Vec<String> = bodies.iter().map(|b| sign(b.as_bytes())).collect();
    let ids: Vec<SignatureId> = signatures
        .iter()
        .map(|s| SignatureId::of_hex(s).expect("hex"))
        .collect();
    let per_request_ns = |t: Instant, count: usize| t.elapsed().as_nanos() as f64 / count as f64;
    let (mut empty, mut full, mut hmac) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..opts.rounds {
        let t = Instant::now();
        for (body, signature) in bodies.iter().zip(&signatures) {
            verify_global(SECRET.as_bytes(), Some(signature), body.as_bytes()).expect("verifies");
        }
        hmac.push(per_request_ns(t, n));
        // Empty: the first `capacity` fresh signatures.
        let guard = ReplayGuard::new(capacity, Duration::from_secs(3600));
        let first = n.min(capacity);
        let t = Instant::now();
        for (body, id) in bodies.iter().zip(&ids).take(first) {
            guard
                .accept_signed(*id, body.as_bytes(), &rules, now)
                .expect("fresh");
        }
        empty.push(per_request_ns(t, first));
        // Full: every further insert forgets the oldest.
        let rest = n - first;
        if rest > 0 {
            let t = Instant::now();
            for (body, id) in bodies.iter().zip(&ids).skip(first) {
                let _ = guard.accept_signed(*id, body.as_bytes(), &rules, now);
            }
            full.push(per_request_ns(t, rest));
        }
    }
    eprintln!("   {n} signatures, capacity {capacity}");
    let mut rows = vec![
        Row::new(
            "replay",
            "spend a signature, guard filling, per request",
            "ns",
            empty,
        )
        .peer("HMAC check", hmac.clone())
        .note(format!("in-process, {n} distinct signed forms per round")),
    ];
    if !full.is_empty() {
        rows.push(
            Row::new(
                "replay",
                "spend a signature, guard full, per request",
                "ns",
                full,
            )
            .peer("HMAC check", hmac),
        );
    }
    rows
}

/// [`TP_CLIENTS`] clients each send `per_client` GETs back to back; returns the sorted
/// latencies in ms and the size of one answer.
async fn hammer(
    client: &reqwest::Client,
    url: &str,
    gzip: bool,
    per_client: usize,
) -> (Vec<f64>, usize) {
    let size = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..TP_CLIENTS {
        let client = client.clone();
        let url = url.to_string();
        let size = size.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                let mut req = client.get(&url);
                if gzip {
                    req = req.header("Accept-Encoding", "gzip");
                }
                let res = req.send().await.expect("GET environment");
                assert_eq!(res.status(), 200);
                let body = res.bytes().await.expect("body");
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                size.store(body.len(), Ordering::Relaxed);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    (sorted(all), size.load(Ordering::Relaxed))
}

/// Heartbeat pings: GETs with a token to two monitors, one that writes a log file per
/// check-in (`log_success = true`, the default, 20 logs kept) and one that only updates
/// its state (`log_success = false`), from 32 clients; check-ins per second, the answer
/// time and the daemon's CPU per ping.
fn pings(opts: &Opts, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let per_client = if opts.quick { 50 } else { 500 };
    let base = opts.base("pings");
    let token = "bench-token-0123456789";
    base.write_config(
        "",
        &format!(
            "[monitor \"logged\"]\nperiod = 1h\ntoken = {token}\n\n\
             [monitor \"quiet\"]\nperiod = 1h\ntoken = {token}\nlog_success = false\n"
        ),
    );
    let mut daemon = Proc::karajo(&opts.bin, &base);
    let client = http_client();
    rt.block_on(wait_http_ok(
        &client,
        &base.url("/karajo/api/environment"),
        daemon.started,
        Duration::from_secs(60),
    ));
    let mut rows = Vec::new();
    for (monitor, label) in [("logged", "log_success on"), ("quiet", "log_success off")] {
        let url = base.url(&format!("/karajo/api/monitor/ping/{monitor}?token={token}"));
        let (mut rate, mut p99, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..opts.rounds {
            let c0 = daemon.cpu_secs();
            let t = Instant::now();
            let (lat, _) = rt.block_on(hammer(&client, &url, false, per_client));
            let secs = t.elapsed().as_secs_f64();
            let n = lat.len() as f64;
            let cpu_ms = (daemon.cpu_secs() - c0) * 1e3 / n;
            eprintln!(
                "   round {round} {label}: {:.0} pings/s, p99 {:.2} ms, {cpu_ms:.3} ms CPU per ping",
                n / secs,
                quantile(&lat, 0.99)
            );
            rate.push(n / secs);
            p99.push(quantile(&lat, 0.99));
            cpu.push(cpu_ms);
        }
        rows.push(
            Row::new("pings", &format!("check-ins/s, {label}"), "pings/s", rate).note(format!(
                "{TP_CLIENTS} clients x {per_client} GET pings with a token per round"
            )),
        );
        rows.push(Row::new(
            "pings",
            &format!("answer p99, {label}"),
            "ms",
            p99,
        ));
        rows.push(Row::new(
            "pings",
            &format!("daemon CPU per ping, {label}"),
            "ms",
            cpu,
        ));
    }
    daemon.stop(Duration::from_secs(10));
    let _ = fs::remove_dir_all(&base.dir);
    rows
}

// ---------------------------------------------------------------------------------
// Supervised services: 100 idle services, and a SIGKILLed instance replaced.

fn services(opts: &Opts, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let count = 100;
    let window = Duration::from_secs(if opts.quick { 10 } else { 30 });
    let base = opts.base("services");
    // A marker unique to this run, to find (and clean up) the instances.
    let marker = 200_000 + (now_secs() % 100_000);
    let mut text = String::new();
    for i in 0..count {
        let _ = writeln!(
            text,
            "[service \"svc{i:03}\"]\ncommand = exec sleep {marker}\nrestart_delay = 100ms\nstart_seconds = 0s\n"
        );
    }
    base.write_config("", &text);
    let mut daemon = Proc::karajo(&opts.bin, &base);
    let client = http_client();
    rt.block_on(wait_http_ok(
        &client,
        &base.url("/karajo/api/environment"),
        daemon.started,
        Duration::from_secs(60),
    ));
    let service = |id: &str| -> Option<serde_json::Value> {
        let url = base.url(&format!("/karajo/api/service?id={id}"));
        rt.block_on(async {
            let answer: serde_json::Value =
                client.get(&url).send().await.ok()?.json().await.ok()?;
            Some(answer["data"].clone())
        })
    };
    let running_pid = |id: &str| -> Option<u64> {
        let s = service(id)?;
        (s["status"] == "running")
            .then(|| s["pid"].as_u64())
            .flatten()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..count).any(|i| running_pid(&format!("svc{i:03}")).is_none()) {
        assert!(Instant::now() < deadline, "the services did not all start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let (mut rss, mut cpu, mut replaced) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..opts.rounds {
        let c0 = daemon.cpu_secs();
        let t0 = Instant::now();
        let mut samples = Vec::new();
        while t0.elapsed() < window {
            std::thread::sleep(Duration::from_secs(1));
            samples.push(daemon.rss_mib());
        }
        let pct = (daemon.cpu_secs() - c0) / t0.elapsed().as_secs_f64() * 100.0;
        let r = samples.iter().copied().fold(0.0, f64::max);
        // A SIGKILLed instance: from the kill to its replacement being ready.
        let id = format!("svc{:03}", round % count);
        let old = running_pid(&id).expect("a running instance");
        let killed = Instant::now();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &old.to_string()])
            .status();
        let took = loop {
            if running_pid(&id).is_some_and(|pid| pid != old) {
                break killed.elapsed().as_secs_f64() * 1e3;
            }
            assert!(killed.elapsed() < Duration::from_secs(30), "no replacement");
            std::thread::sleep(Duration::from_millis(5));
        };
        eprintln!("   round {round}: RSS max {r:.1} MiB, CPU {pct:.3} %, replaced in {took:.0} ms");
        rss.push(r);
        cpu.push(pct);
        replaced.push(took);
    }
    assert!(daemon.alive(), "karajo exited");
    daemon.stop(Duration::from_secs(30));
    let _ = std::process::Command::new("pkill")
        .args(["-f", &format!("sleep {marker}")])
        .status();
    let _ = fs::remove_dir_all(&base.dir);
    vec![
        Row::new("services", "karajo resident memory, 100 idle services", "MiB", rss)
            .note(format!(
                "100 services `exec sleep`, all running; max VmRSS of karajo over {} s",
                window.as_secs()
            )),
        Row::new(
            "services",
            &format!("karajo CPU over {} s, 100 idle services", window.as_secs()),
            "% of a core",
            cpu,
        ),
        Row::new(
            "services",
            "SIGKILLed instance to its replacement ready",
            "ms",
            replaced,
        )
        .note("restart_delay = 100ms, start_seconds = 0s (ready at spawn); polled every 5 ms through the API"),
    ]
}

// ---------------------------------------------------------------------------------
// 3. Idle cost with 1,000 jobs on hourly schedules.

fn idle(opts: &Opts, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let jobs = 1000;
    let window = Duration::from_secs(if opts.quick { 10 } else { 60 });
    let (mut rss, mut hwm, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    let (mut go_rss, mut go_cpu) = (Vec::new(), Vec::new());
    let base = opts.base("idle");
    // Hourly at minutes that stay clear of the measured windows: from 20 minutes ahead
    // on, so no job runs while measuring (an idle daemon, not a busy one).
    let minute_now = (now_secs() / 60) % 60;
    let mut text = String::new();
    for i in 0..jobs {
        let minute = (minute_now + 20 + (i as u64 % 30)) % 60;
        let _ = writeln!(
            text,
            "[job \"idle{i:04}\"]\nschedule = hourly@{minute}\ncommand = true\n"
        );
    }
    base.write_config("", &text);
    let mut daemon = Proc::karajo(&opts.bin, &base);
    // The Go original idles beside it, measured in the same windows (both idle).
    let go_base = opts.base("idle-go");
    go_base.write_config("", &text);
    let mut go = opts.go.as_ref().map(|go| Proc::karajo(go, &go_base));
    let client = http_client();
    rt.block_on(wait_http_ok(
        &client,
        &base.url("/karajo/api/environment"),
        daemon.started,
        Duration::from_secs(60),
    ));
    if let Some(go) = &go {
        rt.block_on(wait_http_ok(
            &client,
            &go_base.url("/karajo/api/environment"),
            go.started,
            Duration::from_secs(60),
        ));
    }
    drop(client);
    std::thread::sleep(Duration::from_secs(2));
    for round in 0..opts.rounds {
        let c0 = daemon.cpu_secs();
        let g0 = go.as_ref().map_or(0.0, Proc::cpu_secs);
        let t0 = Instant::now();
        let (mut samples, mut go_samples) = (Vec::new(), Vec::new());
        while t0.elapsed() < window {
            std::thread::sleep(Duration::from_secs(1));
            samples.push(daemon.rss_mib());
            if let Some(go) = &go {
                go_samples.push(go.rss_mib());
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let pct = (daemon.cpu_secs() - c0) / secs * 100.0;
        let r = samples.iter().copied().fold(0.0, f64::max);
        eprintln!("   round {round}: RSS max {r:.1} MiB, CPU {pct:.3} %");
        rss.push(r);
        cpu.push(pct);
        hwm.push(daemon.hwm_mib());
        if let Some(go) = &go {
            let gr = go_samples.iter().copied().fold(0.0, f64::max);
            let gp = (go.cpu_secs() - g0) / secs * 100.0;
            eprintln!("   round {round} karajo-go: RSS max {gr:.1} MiB, CPU {gp:.3} %");
            go_rss.push(gr);
            go_cpu.push(gp);
        }
    }
    assert!(daemon.alive(), "karajo exited while idle");
    daemon.stop(Duration::from_secs(10));
    if let Some(go) = &mut go {
        go.stop(Duration::from_secs(10));
    }
    let _ = fs::remove_dir_all(&base.dir);
    let _ = fs::remove_dir_all(&go_base.dir);
    let rss_row = Row::new("idle", "resident memory (max VmRSS in window)", "MiB", rss)
        .note(format!(
            "1,000 jobs on hourly@M schedules, none due in the {} s windows; CPU from utime+stime in /proc/<pid>/stat (10 ms ticks); the Go original idles with the same jobs beside karajo, in the same windows",
            window.as_secs()
        ));
    let cpu_row = Row::new(
        "idle",
        &format!("CPU over {} s", window.as_secs()),
        "% of a core",
        cpu,
    )
    .target(Target::AtMost(0.0));
    let (rss_row, cpu_row) = match go_rows(&go_rss) {
        Some(v) => (
            rss_row
                .peer("karajo-go", v)
                .target(Target::RatioAtMost(0.5)),
            cpu_row.peer("karajo-go", go_cpu),
        ),
        None => (
            rss_row.target(Target::AtMost(30.0)).note(opts.no_go()),
            cpu_row,
        ),
    };
    vec![
        rss_row,
        Row::new(
            "idle",
            "peak resident memory (VmHWM, incl. start-up)",
            "MiB",
            hwm,
        ),
        cpu_row,
    ]
}

// ---------------------------------------------------------------------------------
// 4. Schedule precision: 200 jobs due at the same instant.

/// Seconds between due instants (`*/20 * * * * *`).
const PRECISION_PERIOD: i128 = 20;

fn precision(opts: &Opts, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let jobs = 200;
    let base = opts.base("precision");
    let starts = base.dir.join("starts");
    let baseline = base.dir.join("baseline");
    fs::create_dir_all(&starts).expect("starts dir");
    fs::create_dir_all(&baseline).expect("baseline dir");
    let mut text = String::new();
    for i in 0..jobs {
        let id = format!("due{i:04}");
        let _ = writeln!(
            text,
            "[job \"{id}\"]\nschedule = \"*/20 * * * * *\"\ncommand = {}\n",
            stamp_command(&starts, &id)
        );
    }
    base.write_config("max_job_running = 256", &text);
    let mut daemon = Proc::karajo(&opts.bin, &base);
    let client = http_client();
    rt.block_on(wait_http_ok(
        &client,
        &base.url("/karajo/api/environment"),
        daemon.started,
        Duration::from_secs(60),
    ));
    let ready = now_ns();
    let period_ns = PRECISION_PERIOD * 1_000_000_000;
    // Karajo's slots are multiples of 20 s; the baseline fires half-way between them.
    let first_slot = (ready / period_ns + 1) * period_ns;
    let mut baseline_rounds = Vec::new();
    for r in 0..opts.rounds {
        let due = first_slot + r as i128 * period_ns + period_ns / 2;
        baseline_rounds.push(spawn_burst(&baseline, jobs, due));
    }
    // Let karajo's slot after the last baseline burst pass too, then stop.
    let end = first_slot + opts.rounds as i128 * period_ns + 3_000_000_000;
    while now_ns() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.stop(Duration::from_secs(10));
    // Group karajo's stamps by slot; keep complete slots after start-up.
    let mut slots: BTreeMap<i128, Vec<f64>> = BTreeMap::new();
    for i in 0..jobs {
        for t in read_stamps(&starts.join(format!("due{i:04}"))) {
            let slot = t / period_ns * period_ns;
            slots.entry(slot).or_default().push((t - slot) as f64 / 1e6);
        }
    }
    let complete: Vec<Vec<f64>> = slots
        .into_iter()
        .filter(|(slot, v)| *slot >= first_slot && v.len() == jobs)
        .map(|(_, v)| sorted(v))
        .take(opts.rounds)
        .collect();
    assert!(
        !complete.is_empty(),
        "no complete slot of 200 runs was seen"
    );
    let baseline_rounds: Vec<Vec<f64>> = baseline_rounds.into_iter().map(sorted).collect();
    let q = |rounds: &[Vec<f64>], p: f64| -> Vec<f64> {
        rounds.iter().map(|v| quantile(v, p)).collect()
    };
    for (i, v) in complete.iter().enumerate() {
        eprintln!(
            "   karajo slot {i}: p50 {:.1} p99 {:.1} max {:.1} ms",
            quantile(v, 0.5),
            quantile(v, 0.99),
            quantile(v, 1.0)
        );
    }
    let _ = fs::remove_dir_all(&base.dir);
    let go_rounds = match &opts.go {
        Some(go) => precision_go(opts, go, jobs),
        None => Vec::new(),
    };
    let with_go = |row: Row, p: f64| {
        if go_rounds.is_empty() {
            row.note(opts.no_go())
        } else {
            row.peer("karajo-go", q(&go_rounds, p))
        }
    };
    vec![
        Row::new("precision", "lateness of the first command start", "ms", q(&complete, 0.0))
            .peer("spawn burst", q(&baseline_rounds, 0.0)),
        Row::new("precision", "lateness of command start, p50", "ms", q(&complete, 0.5))
            .peer("spawn burst", q(&baseline_rounds, 0.5))
            .note("200 jobs on `*/20 * * * * *`, max_job_running = 256; lateness = `date +%s%N` written by the command minus the due instant; baseline: the harness itself spawns the same 200 `/bin/sh -c` commands from one thread at a due instant 10 s later"),
        with_go(
            Row::new("precision", "lateness of command start, p50", "ms", q(&complete, 0.5)),
            0.5,
        ),
        Row::new("precision", "lateness of command start, p99", "ms", q(&complete, 0.99))
            .peer("spawn burst", q(&baseline_rounds, 0.99))
            .target(Target::RatioAtMost(1.0)),
        with_go(
            Row::new("precision", "lateness of command start, p99", "ms", q(&complete, 0.99))
                .target(Target::RatioAtMost(0.6)),
            0.99,
        )
        .note("the Go original has no seconds in its schedules: its 200 jobs are `minutely`, one slot a minute, in a daemon of its own after karajo's"),
        Row::new("precision", "lateness of command start, max", "ms", q(&complete, 1.0))
            .peer("spawn burst", q(&baseline_rounds, 1.0)),
    ]
}

/// The Go original's precision: 200 `minutely` jobs (it has no seconds in schedules),
/// `rounds` complete minute slots; per slot the sorted lateness in ms.
fn precision_go(opts: &Opts, go: &Path, jobs: usize) -> Vec<Vec<f64>> {
    let base = opts.base("precision-go");
    let starts = base.dir.join("starts");
    fs::create_dir_all(&starts).expect("starts dir");
    let mut text = String::new();
    for i in 0..jobs {
        let id = format!("due{i:04}");
        let _ = writeln!(
            text,
            "[job \"{id}\"]\nschedule = minutely\ncommand = {}\n",
            stamp_command(&starts, &id)
        );
    }
    base.write_config("max_job_running = 256", &text);
    let mut daemon = Proc::karajo(go, &base);
    let client = http_client();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(wait_http_ok(
        &client,
        &base.url("/karajo/api/environment"),
        daemon.started,
        Duration::from_secs(60),
    ));
    let period_ns: i128 = 60 * 1_000_000_000;
    let first_slot = (now_ns() / period_ns + 1) * period_ns;
    let end = first_slot + (opts.rounds as i128 - 1) * period_ns + 5_000_000_000;
    while now_ns() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.stop(Duration::from_secs(10));
    let mut slots: BTreeMap<i128, Vec<f64>> = BTreeMap::new();
    for i in 0..jobs {
        for t in read_stamps(&starts.join(format!("due{i:04}"))) {
            let slot = t / period_ns * period_ns;
            slots.entry(slot).or_default().push((t - slot) as f64 / 1e6);
        }
    }
    let complete: Vec<Vec<f64>> = slots
        .into_iter()
        .filter(|(slot, v)| *slot >= first_slot && v.len() == jobs)
        .map(|(_, v)| sorted(v))
        .take(opts.rounds)
        .collect();
    for (i, v) in complete.iter().enumerate() {
        eprintln!(
            "   karajo-go slot {i}: p50 {:.1} p99 {:.1} max {:.1} ms",
            quantile(v, 0.5),
            quantile(v, 0.99),
            quantile(v, 1.0)
        );
    }
    let _ = fs::remove_dir_all(&base.dir);
    complete
}

/// Spawns `count` `/bin/sh -c 'date +%s%N >> dir/N'` at wall-clock instant `due_ns`
/// (slept to, then spun for the last 2 ms) and returns their lateness in ms.
fn spawn_burst(dir: &Path, count: usize, due_ns: i128) -> Vec<f64> {
    loop {
        let left = due_ns - now_ns();
        if left <= 0 {
            break;
        }
        if left > 2_000_000 {
            std::thread::sleep(Duration::from_nanos((left - 2_000_000) as u64));
        }
    }
    let mut children = Vec::with_capacity(count);
    for i in 0..count {
        let cmd = stamp_command(dir, &format!("b{i:04}"));
        let child = Command::new("/bin/sh")
            .args(["-c", &cmd])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn /bin/sh");
        children.push(child);
    }
    for mut c in children {
        let _ = c.wait();
    }
    let mut lat = Vec::new();
    for i in 0..count {
        for t in read_stamps(&dir.join(format!("b{i:04}"))) {
            if t >= due_ns && t < due_ns + PRECISION_PERIOD * 1_000_000_000 / 2 {
                lat.push((t - due_ns) as f64 / 1e6);
            }
        }
    }
    lat
}

use std::os::unix::process::CommandExt as _;

// ---------------------------------------------------------------------------------
// 5. Large output: one run writing 1 GiB of 100-byte lines.

fn large_output(opts: &Opts, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let sizes: &[u64] = if opts.quick {
        &[128 << 20]
    } else {
        &[256 << 20, 1 << 30]
    };
    sizes
        .iter()
        .flat_map(|bytes| large_output_of(opts, rt, *bytes))
        .collect()
}

/// The large output scenario with `bytes` of output.
fn large_output_of(opts: &Opts, rt: &tokio::runtime::Runtime, bytes: u64) -> Vec<Row> {
    let line = "a".repeat(99);
    let producer = format!("yes {line} | head -c {bytes}");
    let mut k_tp = Vec::new();
    let mut k_written = Vec::new();
    let mut k_hwm = Vec::new();
    let mut b_tp = Vec::new();
    let mut s_tp = Vec::new();
    for round in 0..opts.rounds {
        let karajo_first = round % 2 == 0;
        for turn in 0..2 {
            if (turn == 0) == karajo_first {
                let (secs, written, hwm) = rt.block_on(output_karajo(opts, &producer, round));
                eprintln!(
                    "   round {round} karajo: {secs:.2} s, {written} bytes written, VmHWM {hwm:.1} MiB"
                );
                k_tp.push(bytes as f64 / secs / (1 << 20) as f64);
                k_written.push(written as f64 / (1 << 20) as f64);
                k_hwm.push(hwm);
            } else {
                let dir = opts.work.join(format!("output-baseline-{round}"));
                let _ = fs::remove_dir_all(&dir);
                fs::create_dir_all(&dir).expect("baseline dir");
                let file = dir.join("out");
                let plain = time_shell(&format!("{producer} > {}", file.display()));
                let _ = fs::remove_file(&file);
                let synced =
                    time_shell(&format!("{producer} > {f} && sync {f}", f = file.display()));
                let _ = fs::remove_dir_all(&dir);
                eprintln!("   round {round} baseline: {plain:.2} s, with fsync {synced:.2} s");
                b_tp.push(bytes as f64 / plain / (1 << 20) as f64);
                s_tp.push(bytes as f64 / synced / (1 << 20) as f64);
            }
        }
    }
    let size = format!("{} MiB", bytes >> 20);
    vec![
        Row::new(
            "output",
            &format!("input throughput, {size} of 100-byte lines"),
            "MiB/s",
            k_tp.clone(),
        )
        .peer("sh -c 'CMD > file'", b_tp)
        .target(Target::RatioAtLeast(0.9))
        .note("CMD = `yes <99 x a> | head -c N`; karajo's time is from the trigger to the log renamed .success (it fsyncs the log at the end); the baseline does not fsync"),
        Row::new(
            "output",
            &format!("input throughput vs. a baseline that fsyncs, {size}"),
            "MiB/s",
            k_tp,
        )
        .peer("sh -c 'CMD > file && sync file'", s_tp),
        Row::new(
            "output",
            &format!("log bytes written (36-byte prefix per line), {size}"),
            "MiB",
            k_written,
        ),
        Row::new("output", &format!("peak resident memory (VmHWM), {size}"), "MiB", k_hwm)
            .target(Target::AtMost(32.0)),
    ]
}

/// Runs `/bin/sh -c script` and returns its wall time in seconds.
fn time_shell(script: &str) -> f64 {
    let t = Instant::now();
    let status = Command::new("/bin/sh")
        .args(["-c", script])
        .status()
        .expect("run /bin/sh");
    assert!(status.success(), "{script} failed");
    t.elapsed().as_secs_f64()
}

/// One karajo run of `producer`: seconds from trigger to final log, log size, VmHWM.
async fn output_karajo(opts: &Opts, producer: &str, round: usize) -> (f64, u64, f64) {
    let base = opts.base(&format!("output-karajo-{round}"));
    // The id "large" makes the prefix `YYYY-MM-DD hh:mm:ss UTC job: large: ` 36 bytes.
    base.write_config(
        "",
        &format!("[job \"large\"]\npath = /large\nlog_retention = 1\ncommand = \"{producer}\"\n"),
    );
    let mut daemon = Proc::karajo(&opts.bin, &base);
    let client = http_client();
    wait_http_ok(
        &client,
        &base.url("/karajo/api/environment"),
        daemon.started,
        Duration::from_secs(30),
    )
    .await;
    let t0 = Instant::now();
    assert_eq!(trigger(&client, &base, "large", 1).await, 200);
    let done = base.log_dir("large").join("large.1.success");
    let failed = base.log_dir("large").join("large.1.failed");
    while !done.exists() {
        assert!(!failed.exists(), "the large output run failed");
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "large output run hung"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let written = fs::metadata(&done).map(|m| m.len()).unwrap_or(0);
    let hwm = daemon.hwm_mib();
    daemon.stop(Duration::from_secs(10));
    let _ = fs::remove_dir_all(&base.dir);
    (secs, written, hwm)
}

// ---------------------------------------------------------------------------------
// 6. Start-up with 1,000 jobs of 100 logs each.

fn startup(opts: &Opts, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let jobs = 1000;
    let logs = 100;
    let conf = jobs_text(
        "st",
        jobs,
        &format!("command = true\nlog_retention = {logs}"),
    );
    let base = opts.base("startup");
    base.write_config("", &conf);
    let t = Instant::now();
    seed_logs(&base, "st", jobs, logs);
    eprintln!(
        "   wrote {} log files in {:.1} s",
        jobs * logs,
        t.elapsed().as_secs_f64()
    );
    // The Go original starts on a copy of its own (the same jobs and logs).
    let go_base = opts.go.as_ref().map(|_| {
        let go_base = opts.base("startup-go");
        go_base.write_config("", &conf);
        seed_logs(&go_base, "st", jobs, logs);
        go_base
    });
    let client = http_client();
    let mut times = Vec::new();
    let mut hwm = Vec::new();
    let mut go_times = Vec::new();
    let mut go_hwm = Vec::new();
    let start = |bin: &Path, base: &Base| -> (f64, f64) {
        let mut daemon = Proc::karajo(bin, base);
        let took = rt.block_on(wait_http_ok(
            &client,
            &base.url("/karajo/api/environment"),
            daemon.started,
            Duration::from_secs(120),
        ));
        let hwm = daemon.hwm_mib();
        daemon.stop(Duration::from_secs(10));
        (took.as_secs_f64() * 1e3, hwm)
    };
    for round in 0..opts.rounds {
        for turn in 0..2 {
            if (round + turn) % 2 == 0 {
                let (took, peak) = start(&opts.bin, &base);
                eprintln!("   round {round}: API answered after {:.3} s", took / 1e3);
                times.push(took);
                hwm.push(peak);
            } else if let (Some(go), Some(go_base)) = (&opts.go, &go_base) {
                let (took, peak) = start(go, go_base);
                eprintln!(
                    "   round {round} karajo-go: API answered after {:.3} s",
                    took / 1e3
                );
                go_times.push(took);
                go_hwm.push(peak);
            }
        }
    }
    let (_, files) = tree_size(&base.dir.join("var/log"));
    assert_eq!(
        files as usize,
        jobs * logs,
        "start-up deleted or added logs"
    );
    let _ = fs::remove_dir_all(&base.dir);
    if let Some(go_base) = &go_base {
        let _ = fs::remove_dir_all(&go_base.dir);
    }
    let time_row = Row::new("startup", "spawn to first 200 of GET /environment", "ms", times)
        .note("1,000 jobs x 100 logs (log_retention = 100, so nothing is pruned); warm page cache; the first answer lists all 100,000 logs");
    let hwm_row = Row::new("startup", "peak resident memory (VmHWM)", "MiB", hwm);
    match go_rows(&go_times) {
        Some(v) => vec![
            time_row
                .peer("karajo-go", v)
                .target(Target::RatioAtMost(0.5)),
            hwm_row.peer("karajo-go", go_hwm),
        ],
        None => vec![
            time_row.target(Target::AtMost(1000.0)).note(opts.no_go()),
            hwm_row,
        ],
    }
}
