//! The command line run as a process (assert_cmd): `--version`, `hash-password` with
//! the password on standard input, `check` on good and bad configurations, `sign`
//! against the README vector, `job` and `job-http` against a daemon started
//! in-process, `cluster status` against a single-node daemon and none, and
//! `--log-format json` of a served daemon.

use std::io::BufRead as _;
use std::process::{Output, Stdio};

use crate::helpers::*;

/// `karajo` with `args`, without the caller's KARAJO_* variables, run off the async
/// runtime so the in-process daemon keeps serving.
async fn karajo(args: Vec<String>, stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let stdin = stdin.map(str::to_string);
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("karajo");
        cmd.env_remove("KARAJO_SECRET")
            .env_remove("KARAJO_SERVER")
            .env("NO_COLOR", "1")
            .args(&args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(input) = stdin {
            cmd.write_stdin(input);
        }
        cmd.output().expect("karajo runs")
    })
    .await
    .expect("join")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn version_prints_the_version() {
    let out = karajo(args(&["version"]), None, &[]).await;
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("karajo version {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn the_version_flag_prints_name_and_version() {
    for flag in ["--version", "-V"] {
        let out = karajo(args(&[flag]), None, &[]).await;
        assert!(out.status.success(), "{flag}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            format!("karajo {}\n", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
}

#[tokio::test]
async fn hash_password_prints_a_bcrypt_hash_of_the_line_on_stdin() {
    let out = karajo(
        args(&["hash-password", "--cost", "4"]),
        Some("s3cret\n"),
        &[],
    )
    .await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = text(&out.stdout);
    let hash = stdout.strip_suffix('\n').expect("one line");
    assert!(!hash.contains('\n'), "stdout is the hash alone: {stdout:?}");
    assert!(hash.starts_with("$2b$04$"), "{hash}");
    assert!(bcrypt::verify("s3cret", hash).unwrap());
    assert!(!bcrypt::verify("s3cre", hash).unwrap());
    assert!(
        stderr.contains(&format!(
            "add to user.conf:\n[user \"NAME\"]\npassword = {hash}\n"
        )),
        "{stderr}"
    );

    // The default cost is 10, as the original's users have.
    let out = karajo(args(&["hash-password", "--user", "admin"]), Some("pw"), &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hash = text(&out.stdout).trim().to_string();
    assert!(hash.starts_with("$2b$10$"), "{hash}");
    assert!(bcrypt::verify("pw", &hash).unwrap());
    assert!(text(&out.stderr).contains("[user \"admin\"]"));
}

#[tokio::test]
async fn hash_password_refuses_an_empty_password() {
    for input in ["", "\n", "   \n"] {
        let out = karajo(args(&["hash-password"]), Some(input), &[]).await;
        assert_eq!(out.status.code(), Some(1), "{input:?}");
        assert!(out.stdout.is_empty(), "{input:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("empty password"), "{input:?}: {stderr}");
    }
    let out = karajo(args(&["hash-password", "--cost", "3"]), Some("pw\n"), &[]).await;
    assert_eq!(out.status.code(), Some(2), "clap refuses a cost below 4");
}

#[tokio::test]
async fn check_a_good_configuration_shows_the_next_five_runs() {
    let dir = TestDir::new(
        r#"
[job "nightly"]
schedule = daily@03:00
command = echo night

[job "hello"]
interval = 5m
path = /hello
command = echo hi
"#,
    );
    let file = dir.config_file().display().to_string();
    let out = karajo(args(&["check", "-config", &file]), None, &[]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(
            "job \"hello\" (hello):\n  every 5m after the previous run ends\n  on web hook /hello\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("schedule \"daily@03:00\": every day at 03:00 (UTC)"),
        "{stdout}"
    );
    let runs: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("    ") && l.ends_with(" 03:00:00 UTC"))
        .collect();
    assert_eq!(runs.len(), 5, "{stdout}");
    assert!(
        stdout.ends_with(&format!("{file}: 2 jobs, 0 HTTP jobs: OK\n")),
        "{stdout}"
    );
}

#[tokio::test]
async fn check_a_bad_configuration_names_file_and_line_and_exits_1() {
    let dir =
        TestDir::new("[job \"bad\"]\nschedule = weekly@funday\ncommand = true\nwhat = ever\n");
    let file = dir.config_file().display().to_string();
    // The [karajo] section written by TestDir takes lines 1 to 5, then an empty line.
    let out = karajo(args(&["--config", &file, "check"]), None, &[]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("error: {file}:8: ")), "{stdout}");
    assert!(stdout.contains("funday"), "{stdout}");
    assert!(
        stdout.contains(&format!("warning: {file}:10: ")),
        "{stdout}"
    );
    assert!(stdout.ends_with("1 error, 1 warning\n"), "{stdout}");
}

/// The issue's "first hour": mistakes spread over every file the daemon reads, each of
/// which used to hide the next. One run must report them all, in reading order.
#[tokio::test]
async fn check_reports_every_mistake_of_every_file_in_one_run_with_hints() {
    // The [karajo] section written by TestDir takes lines 1 to 5, then an empty line.
    let dir = TestDir::new(
        r#"[job "grep"]
command = grep -E "\d+" /var/log/syslog
schedul = daily
[jobs "backup"]
command = tar czf /tmp/b.tgz /etc
[job "broken"
command = true
[job "empty"]
interval = 5m
"#,
    );
    dir.write(
        "etc/karajo/job.d/nightly.conf",
        "[job \"nightly\"]\nschedule = 0 25 * * *\ncommand = echo night\n\
         [job \"report\"]\nschedule = dayly@10:00\ncommand = true\n",
    );
    dir.write(
        "etc/karajo/user.conf",
        "[user \"admin\"]\npassword = s3cret\n",
    );
    let file = dir.config_file().display().to_string();
    let etc = dir.base().join("etc/karajo").display().to_string();
    let out = karajo(args(&["check", "-config", &file]), None, &[]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let known = "karajo reads [karajo], [job \"NAME\"], [job.http \"NAME\"], \
                 [monitor \"NAME\"], [service \"NAME\"], [notif \"NAME\"], [watchtower] and [cluster] \
                 from the main file, [job \"NAME\"], [monitor \"NAME\"] and [service \"NAME\"] \
                 from job.d/*.conf, [job.http \"NAME\"] from job_http.d/*.conf and \
                 [user \"NAME\"] from user.conf";
    let expected = [
        format!(
            "error: {file}:8: invalid escape \"\\d\" in value (only \\\\ \\\" \\n \\t \\b are allowed)"
        ),
        format!(
            "error: {file}:10: unknown section [jobs \"backup\"] (did you mean [job \"backup\"]?); {known}"
        ),
        format!("error: {file}:12: invalid section header: missing closing ]"),
        format!(
            "error: {file}:14: job \"empty\" has no command: add a line such as command = echo hello"
        ),
        format!(
            "error: {etc}/user.conf:2: the password of user \"admin\" is not a bcrypt hash \
             ($2a$, $2b$ or $2y$, a cost and 53 characters), so nobody can log in as \"admin\"; \
             user.conf keeps hashes, not passwords: run karajo hash-password and put its output \
             here as password = $2..."
        ),
        format!(
            "error: {etc}/job.d/nightly.conf:2: schedule = \"0 25 * * *\": hour 25 is out of range 0-23"
        ),
        format!(
            "error: {etc}/job.d/nightly.conf:5: schedule = \"dayly@10:00\": unknown schedule kind \
             \"dayly\" (did you mean \"daily\"?); use minutely, hourly, daily, weekly or monthly \
             (see the README) or a cron expression such as \"0 10 * * *\""
        ),
        format!(
            "warning: {file}:9: unknown key \"schedul\" in [job], ignored; did you mean \"schedule\"?"
        ),
        format!("{file}: 7 errors, 1 warning"),
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, expected, "{stdout}");
    assert!(!stdout.contains("s3cret"), "{stdout}");
}

#[tokio::test]
async fn sign_prints_the_header_of_the_readme_vector() {
    let payload = r#"{"_karajo_epoch":1677350854}"#;
    let hex = "fef16cabebdcbdcc7fdbfb9bd5a01c00803af7568a05054e87b2239f84f38c54";
    let out = karajo(args(&["sign", "--secret", "s3cret"]), Some(payload), &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("X-Karajo-Sign: {hex}\n"));

    let out = karajo(
        args(&["sign", "--kind", "github"]),
        Some(payload),
        &[("KARAJO_SECRET", "s3cret")],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("X-Hub-Signature-256: sha256={hex}\n")
    );

    let out = karajo(
        args(&["sign", "--secret", "s3cret", "--header", "X-Sign"]),
        Some(payload),
        &[],
    )
    .await;
    assert_eq!(text(&out.stdout), format!("X-Sign: {hex}\n"));

    // No secret at all: a usage error.
    let out = karajo(args(&["sign"]), Some(payload), &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--secret"),
        "{}",
        text(&out.stderr)
    );
}

const JOBS: &str = r#"
[job "Test job success"]
path = /test-job-success
command = echo "Counter is $KARAJO_JOB_COUNTER"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_run_pause_and_log_against_a_daemon() {
    let dir = TestDir::new(JOBS);
    let d = TestDaemon::start(&dir).await;
    let server = d.base_url.clone();
    let job = |list: &[&str]| {
        let mut all = vec!["job".to_string()];
        all.extend(args(list));
        all.extend(args(&["--server", &server]));
        all
    };
    let secret = [("KARAJO_SECRET", SECRET)];

    let out = karajo(job(&["run", "/test-job-success"]), None, &secret).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("id:       test_job_success\nname:     Test job success\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("web hook: /test-job-success (hmac-sha256)\n"),
        "{stdout}"
    );
    let log = dir.wait_log("test_job_success", 1, "success").await;

    let out = karajo(job(&["log", "test_job_success", "1"]), None, &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), log);
    assert!(log.contains("Counter is 1"), "{log}");
    // Without a counter: the newest log.
    let out = karajo(job(&["log", "test_job_success"]), None, &[]).await;
    assert_eq!(text(&out.stdout), log);
    let out = karajo(job(&["log", "test_job_success", "1", "--json"]), None, &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["name"], "test_job_success.1.success");
    assert_eq!(json["counter"], 1);

    let out = karajo(job(&["pause", "test_job_success"]), None, &secret).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("status:   paused\n"), "{stdout}");
    assert!(
        stdout.contains("  #1     success   test_job_success.1.success\n"),
        "{stdout}"
    );

    let out = karajo(job(&["run", "/test-job-success"]), None, &secret).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "karajo: job is paused (code 412, ERR_JOB_PAUSED)\n"
    );

    let out = karajo(
        job(&["resume", "test_job_success", "--json"]),
        None,
        &secret,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["id"], "test_job_success");
    assert_ne!(json["status"], "paused");

    let out = karajo(job(&["list"]), None, &[]).await;
    assert!(
        text(&out.stdout).starts_with("test_job_success "),
        "{}",
        text(&out.stdout)
    );

    // Signed calls need the secret; a wrong one is the server's 401.
    let out = karajo(job(&["pause", "test_job_success"]), None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("give --secret or set KARAJO_SECRET"));
    let out = karajo(
        job(&["pause", "test_job_success", "--secret", "wrong"]),
        None,
        &[],
    )
    .await;
    assert_eq!(
        text(&out.stderr),
        "karajo: empty or invalid signature (code 401)\n"
    );
    let out = karajo(job(&["run", "/nope"]), None, &secret).await;
    assert_eq!(text(&out.stderr), "karajo: job not found: /nope\n");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_http_get_pause_and_resume_against_a_daemon() {
    let dir = TestDir::new(
        r#"
[job.http "Test success"]
http_url = /karajo/api/environment
interval = 1h
"#,
    );
    let d = TestDaemon::start(&dir).await;
    let server = d.base_url.clone();
    let call = |list: &[&str]| {
        let mut all = vec!["job-http".to_string()];
        all.extend(args(list));
        all.extend(args(&["--server", &server, "--secret", SECRET]));
        all
    };
    let out = karajo(call(&["get", "test_success"]), None, &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("request:  GET /karajo/api/environment\n"));
    // The job runs once at start-up; a job shows `running` while it runs, paused or not.
    d.wait_http_status("test_success", "success").await;
    let out = karajo(call(&["pause", "test_success"]), None, &[]).await;
    assert!(
        text(&out.stdout).contains("status:   paused\n"),
        "{}",
        text(&out.stdout)
    );
    let out = karajo(call(&["resume", "test_success", "--json"]), None, &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Resumed, it is `started` (or `running`), no longer paused.
    assert_eq!(json["id"], "test_success");
    assert_ne!(json["status"], "paused");
    d.stop().await;
}

#[tokio::test]
async fn log_format_json_writes_one_json_object_per_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TestDir::new(&format!("[karajo]\nlisten_address = 127.0.0.1:{port}\n"));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("karajo"))
        .args(["-config", &dir.config_file().display().to_string()])
        .args(["--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let done = line.contains("listening");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    let lines = tokio::time::timeout(TIMEOUT, reader).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let lines = lines.expect("the daemon logs that it listens").unwrap();
    assert!(
        lines.last().is_some_and(|l| l.contains("listening")),
        "{lines:?}"
    );
    for line in &lines {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(event["level"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn reads_against_a_server_with_users_work_signed_or_logged_in() {
    let dir = TestDir::new("[job \"hello\"]\npath = /hello\ncommand = echo hello\n");
    let hash = bcrypt::hash("pw", 4).expect("hash");
    dir.write(
        "etc/karajo/user.conf",
        &format!("[user \"admin\"]\npassword = {hash}\n"),
    );
    let d = TestDaemon::start(&dir).await;
    let server = d.url("");
    let get = |extra: &[&str]| {
        let mut list = vec!["job", "get", "hello", "--server", server.as_str()];
        list.extend_from_slice(extra);
        args(&list)
    };
    // Neither a secret nor a user: the server's refusal.
    let out = karajo(get(&[]), None, &[]).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    // Signed with the secret.
    let out = karajo(get(&[]), None, &[("KARAJO_SECRET", SECRET)]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("id:       hello"),
        "{}",
        text(&out.stdout)
    );
    // Logged in, the password from the environment or standard input.
    let out = karajo(
        get(&["--user", "admin"]),
        None,
        &[("KARAJO_PASSWORD", "pw")],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = karajo(get(&["--user", "admin"]), Some("pw\n"), &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A wrong password is the server's answer.
    let out = karajo(get(&["--user", "admin"]), Some("nope\n"), &[]).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("400"), "{}", text(&out.stderr));
    d.stop().await;
}

#[cfg(feature = "cluster-nats")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_says_when_the_daemon_is_single_node_or_unreachable() {
    let dir = TestDir::new("[job \"hello\"]\npath = /hello\ncommand = echo hello\n");
    let hash = bcrypt::hash("pw", 4).expect("hash");
    dir.write(
        "etc/karajo/user.conf",
        &format!("[user \"admin\"]\npassword = {hash}\n"),
    );
    let d = TestDaemon::start(&dir).await;
    let server = d.url("");
    let status = |server: &str| args(&["cluster", "status", "--server", server]);
    // The read is signed (the daemon has a user), and the daemon is not in cluster mode.
    let out = karajo(status(&server), None, &[("KARAJO_SECRET", SECRET)]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stderr),
        format!(
            "karajo: cluster mode is off on the karajo daemon at {server} ([cluster] enabled = false)\n"
        )
    );
    d.stop().await;

    // Nothing listens there any more.
    let out = karajo(status(&server), None, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "karajo: cannot reach the karajo daemon at {server}: "
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn job_run_by_id_with_params_and_their_refusal() {
    let dir = TestDir::new(
        "[job \"deploy\"]\nparam = ENV\nparam = TAG=latest\n\
         command = \"printf '%s|%s\\n' \\\"$KARAJO_PARAM_ENV\\\" \\\"$KARAJO_PARAM_TAG\\\" > out.$KARAJO_JOB_COUNTER\"\n\
         [job \"hook\"]\npath = /hook\nparam = ENV\n\
         command = \"printf '%s\\n' \\\"$KARAJO_PARAM_ENV\\\" > out.$KARAJO_JOB_COUNTER\"\n",
    );
    let d = TestDaemon::start(&dir).await;
    let server = d.base_url.clone();
    let job = |list: &[&str]| {
        let mut all = vec!["job".to_string()];
        all.extend(args(list));
        all.extend(args(&["--server", &server]));
        all
    };
    let secret = [("KARAJO_SECRET", SECRET)];
    let out_file = |id: &str, n: u64| {
        std::fs::read_to_string(dir.base().join(format!("var/lib/karajo/job/{id}/out.{n}")))
            .unwrap()
    };

    // By id (no web hook needed), a value with spaces and shell syntax.
    let out = karajo(
        job(&[
            "run",
            "deploy",
            "--param",
            "ENV=a b; $(x)",
            "--param",
            "tag=v9",
        ]),
        None,
        &secret,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("id:       deploy\n"),
        "{}",
        text(&out.stdout)
    );
    dir.wait_log("deploy", 1, "success").await;
    assert_eq!(out_file("deploy", 1), "a b; $(x)|v9\n");
    let out = karajo(job(&["get", "deploy"]), None, &[]).await;
    assert!(
        text(&out.stdout).contains("params:   ENV (required), TAG=latest\n"),
        "{}",
        text(&out.stdout)
    );

    // Through the web hook path.
    let out = karajo(
        job(&["run", "/hook", "--param", "ENV=via-hook"]),
        None,
        &secret,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir.wait_log("hook", 1, "success").await;
    assert_eq!(out_file("hook", 1), "via-hook\n");

    // Refusals name the parameters and exit 1.
    let out = karajo(job(&["run", "deploy", "--param", "HOST=x"]), None, &secret).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("undeclared parameter: HOST"), "{err}");
    assert!(err.contains("code 400"), "{err}");
    let out = karajo(job(&["run", "deploy"]), None, &secret).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("missing parameter: ENV"),
        "{}",
        text(&out.stderr)
    );
    let out = karajo(job(&["run", "deploy", "--param", "novalue"]), None, &secret).await;
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(
        text(&out.stderr).contains("give NAME=VALUE"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(dir.log_names("deploy").len(), 1);
    d.stop().await;
}
