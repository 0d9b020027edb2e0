//! Loading tests: whole configurations written into temporary directories. The
//! monitor and `[watchtower]` sections have their own file, [`monitors`], and the
//! service sections theirs, [`services`].

mod monitors;
mod services;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::model::DEFAULT_HTTP_TIMEOUT;
use super::*;
use crate::job::{AuthKind, JobKind};

/// A temporary `dir_base` with a main config file at its root.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn base(&self) -> &Path {
        self.dir.path()
    }

    fn main_file(&self) -> PathBuf {
        self.base().join("karajo.conf")
    }

    /// Writes the main file with `[karajo] dir_base = <tmp>` first, then `body`.
    fn main(&self, karajo_keys: &str, body: &str) -> &Self {
        let text = format!(
            "[karajo]\ndir_base = {}\n{karajo_keys}\n{body}",
            self.base().display()
        );
        fs::write(self.main_file(), text).unwrap();
        self
    }

    /// Writes a file below `etc/karajo/`.
    fn etc(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.base().join("etc/karajo").join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    fn load(&self) -> Result<Config, ConfigErrors> {
        load(&self.main_file())
    }

    fn load_ok(&self) -> Config {
        match self.load() {
            Ok(config) => config,
            Err(errors) => panic!("unexpected errors:\n{errors}"),
        }
    }

    fn load_err(&self) -> ConfigErrors {
        match self.load() {
            Ok(_) => panic!("expected errors"),
            Err(errors) => errors,
        }
    }
}

/// A job of one kind: its shared keys (reached through `Deref`) and its own (`kind`).
struct Job<'a, K> {
    common: &'a JobCommon,
    kind: &'a K,
}

impl<K> std::ops::Deref for Job<'_, K> {
    type Target = JobCommon;

    fn deref(&self) -> &JobCommon {
        self.common
    }
}

fn find<'a>(config: &'a Config, kind: JobKind, name: &str) -> &'a JobSpec {
    config
        .jobs_of(kind)
        .find(|j| j.common.name == name)
        .unwrap()
}

fn job<'a>(config: &'a Config, name: &str) -> Job<'a, ExecSpec> {
    let spec = find(config, JobKind::Exec, name);
    Job {
        common: &spec.common,
        kind: spec.kind.as_exec().unwrap(),
    }
}

fn http_job<'a>(config: &'a Config, name: &str) -> Job<'a, HttpSpec> {
    let spec = find(config, JobKind::Http, name);
    Job {
        common: &spec.common,
        kind: spec.kind.as_http().unwrap(),
    }
}

fn messages(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics.iter().map(ToString::to_string).collect()
}

fn any_contains(diagnostics: &[Diagnostic], needle: &str) -> bool {
    diagnostics.iter().any(|d| d.to_string().contains(needle))
}

const SPEC_EXAMPLE_JOBS: &str = r#"
[job "test success"]
path = /test-success
secret = s3cret
command = echo "Test job success"
command = echo "Counter is $KARAJO_JOB_COUNTER"

[job.http "Test success"]
description = The job to test ... \
 if its <i>success</i>.
secret = s3cret
interval = 20s
http_method = POST
http_url = /karajo/api/job_exec/run/test-success
http_request_type = json
http_header = X: Y
"#;

#[test]
fn spec_example_loads() {
    let fx = Fixture::new();
    let karajo = "name = My karajo\nlisten_address = 127.0.0.1:31937\nhttp_timeout = 5m0s\n\
                  secret = s3cret\nmax_job_running = 2\n";
    fx.main(karajo, SPEC_EXAMPLE_JOBS);
    let config = fx.load_ok();
    assert_eq!(config.name, "My karajo");
    assert_eq!(config.listen_address, "127.0.0.1:31937");
    assert_eq!(config.http_timeout, Some(Duration::from_secs(300)));
    assert_eq!(config.dir_base, fx.base());
    assert_eq!(
        (config.secret.as_str(), config.secret_generated),
        ("s3cret", false)
    );
    assert_eq!(config.max_job_running, 2);
    assert!(
        config.warnings.is_empty(),
        "{:?}",
        messages(&config.warnings)
    );

    let exec = job(&config, "test success");
    assert_eq!(exec.id.as_str(), "test_success");
    assert_eq!(exec.kind.path.as_deref(), Some("/test-success"));
    assert_eq!(exec.secret, "s3cret");
    assert_eq!(
        exec.kind.commands,
        [
            "echo Test job success",
            "echo Counter is $KARAJO_JOB_COUNTER"
        ]
    );
    assert_eq!(exec.kind.auth_kind, AuthKind::HmacSha256);
    assert_eq!(exec.header_sign, "X-Karajo-Sign");
    assert_eq!(exec.log_retention, 5);
    assert_eq!(exec.kind.kill_grace, Duration::from_secs(5));
    assert_eq!(exec.kind.timeout, None);
    assert_eq!((exec.schedule.is_none(), exec.interval), (true, None));

    let http = http_job(&config, "Test success");
    assert_eq!(http.id.as_str(), "test_success");
    assert_eq!(
        http.description,
        "The job to test ... if its <i>success</i>."
    );
    assert_eq!(http.interval, Some(Duration::from_secs(60)));
    assert_eq!(
        (http.kind.http_method, http.kind.http_method_text.as_str()),
        (HttpMethod::Post, "POST")
    );
    assert_eq!(http.kind.http_url, "/karajo/api/job_exec/run/test-success");
    assert_eq!(http.kind.http_request_type, HttpRequestType::Json);
    assert_eq!(http.kind.http_request_type_text, "json");
    assert_eq!(http.kind.http_headers, [("X".to_string(), "Y".to_string())]);
    assert_eq!(http.kind.http_header_lines, ["X: Y"]);
    assert_eq!(http.kind.http_timeout, Some(Duration::from_secs(300)));
    assert_eq!(http.secret, "s3cret");
}

#[test]
fn defaults_apply_to_an_almost_empty_file() {
    let fx = Fixture::new();
    fx.main("", "");
    let config = fx.load_ok();
    assert_eq!(config.name, "karajo");
    assert_eq!(config.listen_address, "127.0.0.1:31937");
    assert_eq!(config.dir_public, None);
    assert_eq!(config.http_timeout, Some(DEFAULT_HTTP_TIMEOUT));
    assert_eq!(config.max_job_running, 1);
    assert!(!config.is_development);
    assert_eq!(config.timezone, jiff::tz::TimeZone::UTC);
    assert_eq!(config.epoch_window, Duration::from_secs(300));
    assert_eq!(config.max_body_size, 26_214_400);
    assert_eq!(config.max_connections, None);
    assert_eq!(config.header_read_timeout, Duration::from_secs(10));
    assert_eq!(config.idle_timeout, Duration::from_secs(60));
    assert_eq!(config.body_read_timeout, Duration::from_secs(60));
    assert_eq!(config.max_sse_streams, 256);
    let key = fields::decode_key32(crate::auth::SOURCEHUT_PUBLIC_KEY_BASE64).unwrap();
    assert_eq!(config.sourcehut_public_key, key);
    assert!(config.jobs.is_empty() && config.users.is_empty());
}

#[test]
fn relative_dir_base_is_joined_to_the_current_directory() {
    let fx = Fixture::new();
    fs::write(fx.main_file(), "[karajo]\ndir_base = testdata\n").unwrap();
    let config = fx.load_ok();
    assert_eq!(
        config.dir_base,
        std::env::current_dir().unwrap().join("testdata")
    );
    fs::write(fx.main_file(), "[karajo]\n").unwrap();
    assert_eq!(fx.load_ok().dir_base, Path::new("/"));
}

#[test]
fn new_global_keys_are_read() {
    let fx = Fixture::new();
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let karajo = format!(
        "timezone = Asia/Jakarta\nepoch_window = 90s\nsourcehut_public_key = {key}\n\
         max_body_size = 1024\nis_development\ndir_public = /srv/karajo\n\
         http_timeout = -1s\nmax_job_running = -3\n"
    );
    fx.main(
        &karajo,
        "[job \"a\"]\nschedule = daily\n[job \"b\"]\ntimezone = Europe/Paris\n",
    );
    let config = fx.load_ok();
    assert_eq!(config.timezone.iana_name(), Some("Asia/Jakarta"));
    assert_eq!(config.epoch_window, Duration::from_secs(90));
    let want: Vec<u8> = (0..32).collect();
    assert_eq!(config.sourcehut_public_key.as_slice(), want.as_slice());
    assert_eq!(config.max_body_size, 1024);
    assert!(config.is_development);
    assert_eq!(config.dir_public.as_deref(), Some(Path::new("/srv/karajo")));
    assert_eq!(config.http_timeout, None);
    assert_eq!(config.max_job_running, 1);
    let a = job(&config, "a");
    assert_eq!(a.timezone.iana_name(), Some("Asia/Jakarta"));
    assert_eq!(a.schedule.as_ref().unwrap().as_str(), "daily");
    assert_eq!(a.kind.sourcehut_public_key.as_slice(), want.as_slice());
    assert_eq!(job(&config, "b").timezone.iana_name(), Some("Europe/Paris"));
}

#[test]
fn http_server_limits_are_read() {
    let fx = Fixture::new();
    fx.main(
        "max_connections = 8\nheader_read_timeout = 1500ms\nidle_timeout = 2m\n\
         body_read_timeout = 30s\nmax_sse_streams = 3\n",
        "",
    );
    let config = fx.load_ok();
    assert_eq!(config.max_connections, Some(8));
    assert_eq!(config.header_read_timeout, Duration::from_millis(1500));
    assert_eq!(config.idle_timeout, Duration::from_secs(120));
    assert_eq!(config.body_read_timeout, Duration::from_secs(30));
    assert_eq!(config.max_sse_streams, 3);
}

#[test]
fn bad_http_server_limits_are_errors_with_their_lines() {
    let fx = Fixture::new();
    fx.main(
        "max_connections = 0\nheader_read_timeout = 10\nidle_timeout = -1s\n\
         body_read_timeout = 0s\nmax_sse_streams = many\n",
        "",
    );
    let errors = fx.load_err();
    let file = fx.main_file().display().to_string();
    let want = [
        (
            3,
            "max_connections = \"0\" is invalid: it must be greater than zero",
        ),
        (
            4,
            "header_read_timeout = \"10\" is invalid: expected a duration",
        ),
        (
            5,
            "idle_timeout = \"-1s\" is invalid: it must be greater than zero",
        ),
        (
            6,
            "body_read_timeout = \"0s\" is invalid: it must be greater than zero",
        ),
        (
            7,
            "max_sse_streams = \"many\" is invalid: expected an integer",
        ),
    ];
    let got = messages(&errors.errors);
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (line, text) in want {
        let prefix = format!("{file}:{line}: {text}");
        assert!(
            got.iter().any(|m| m.starts_with(&prefix)),
            "{prefix} not in {got:#?}"
        );
    }
}

#[test]
fn bad_global_values_are_errors() {
    let fx = Fixture::new();
    let karajo = "timezone = Mars/Olympus\nsourcehut_public_key = AAAA\nepoch_window = 0s\n\
                  max_body_size = 0\nhttp_timeout = 60\nmax_job_running = two\n";
    fx.main(karajo, "");
    let errors = fx.load_err();
    let file = fx.main_file().display().to_string();
    let want = [
        (3, "timezone = \"Mars/Olympus\""),
        (4, "sourcehut_public_key = \"AAAA\""),
        (5, "epoch_window = \"0s\""),
        (6, "max_body_size = \"0\""),
        (7, "http_timeout = \"60\""),
        (8, "max_job_running = \"two\""),
    ];
    let got = messages(&errors.errors);
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (line, text) in want {
        let prefix = format!("{file}:{line}: {text}");
        assert!(
            got.iter().any(|m| m.starts_with(&prefix)),
            "{prefix} not in {got:#?}"
        );
    }
}

#[test]
fn missing_main_file_is_an_error() {
    let fx = Fixture::new();
    let errors = fx.load_err();
    assert_eq!(errors.errors.len(), 1);
    assert_eq!(errors.errors[0].line, 0);
    assert_eq!(errors.errors[0].file, fx.main_file());
    assert!(
        errors
            .to_string()
            .starts_with(&format!("{}: cannot read", fx.main_file().display()))
    );
    assert!(!fx.main_file().exists());
}

#[test]
fn ini_syntax_errors_carry_file_and_line() {
    let fx = Fixture::new();
    fx.main("", "[job \"x\"]\ncommand = grep -E \"\\d+\"\n");
    let errors = fx.load_err();
    assert_eq!(errors.errors[0].file, fx.main_file());
    assert_eq!(errors.errors[0].line, 5);
    assert!(errors.errors[0].message.contains("invalid escape"));
}

#[test]
fn job_d_files_override_in_name_order_and_follow_the_file_rules() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[job \"a\"]\ncommand = main\n[job \"main only\"]\ncommand = m\n",
    );
    fx.etc(
        "job.d/10-a.conf",
        "[job \"a\"]\ncommand = ten\ncommand = ten2\n",
    );
    let last = fx.etc(
        "job.d/20-a.conf",
        "# override\n[job \"a\"]\ncommand = twenty\n",
    );
    fx.etc("job.d/.30-a.conf", "[job \"a\"]\ncommand = hidden\n");
    fx.etc("job.d/40-a.txt", "[job \"a\"]\ncommand = txt\n");
    fx.etc("job.d/50-a.conf/inner.conf", "[job \"a\"]\ncommand = dir\n");
    std::os::unix::fs::symlink(
        fx.base().join("etc/karajo/job.d/10-a.conf"),
        fx.base().join("etc/karajo/job.d/60-a.conf"),
    )
    .unwrap();
    let config = fx.load_ok();
    let a = job(&config, "a");
    assert_eq!(a.kind.commands, ["twenty"]);
    assert_eq!((a.file.as_path(), a.line), (last.as_path(), 2));
    let names: Vec<&str> = config.jobs.iter().map(|j| j.common.name.as_str()).collect();
    assert_eq!(names, ["a", "main only"]);
}

#[test]
fn job_dirs_read_only_their_own_kind() {
    let fx = Fixture::new();
    fx.main("", "");
    let mixed = fx.etc(
        "job.d/x.conf",
        "[job.http \"h\"]\nhttp_url = /x\n[job \"e\"]\n[karajo]\n",
    );
    fx.etc(
        "job_http.d/y.conf",
        "[job \"e2\"]\n[job.http \"h\"]\nhttp_url = /y\n",
    );
    let config = fx.load_ok();
    let exec: Vec<&str> = config
        .jobs_of(JobKind::Exec)
        .map(|j| j.common.name.as_str())
        .collect();
    assert_eq!(exec, ["e"]);
    assert_eq!(http_job(&config, "h").kind.http_url, "/y");
    assert_eq!(config.jobs_of(JobKind::Http).count(), 1);
    let warned: Vec<(PathBuf, usize)> = config
        .warnings
        .iter()
        .map(|d| (d.file.clone(), d.line))
        .collect();
    assert!(warned.contains(&(mixed.clone(), 1)), "{warned:?}");
    assert!(warned.contains(&(mixed, 4)), "{warned:?}");
    assert_eq!(warned.len(), 3, "{:?}", messages(&config.warnings));
}

#[test]
fn errors_from_all_files_are_collected_with_file_and_line() {
    let fx = Fixture::new();
    fx.main("", "[job \"a\"]\ninterval = 60\n");
    let bad = fx.etc(
        "job.d/b.conf",
        "[job \"b\"]\ncommand = x\nlog_retention = many\n",
    );
    fx.etc(
        "job_http.d/c.conf",
        "[job.http \"c\"]\nhttp_method = PATCH\n",
    );
    let errors = fx.load_err();
    let got = messages(&errors.errors);
    assert!(
        got.contains(&format!(
            "{}:5: interval = \"60\" is invalid: expected a duration such as 30s, 5m or 1h30m",
            fx.main_file().display()
        )),
        "{got:#?}"
    );
    assert!(any_contains(
        &errors.errors,
        &format!("{}:3: log_retention = \"many\"", bad.display())
    ));
    assert!(any_contains(
        &errors.errors,
        "c.conf:2: http_method = \"PATCH\" is invalid"
    ));
    assert!(any_contains(
        &errors.errors,
        "c.conf:1: job.http \"c\" has no http_url"
    ));
    assert_eq!(got.len(), 4, "{got:#?}");
}

#[test]
fn colliding_ids_are_errors_within_a_kind_only() {
    let fx = Fixture::new();
    let body = "[job \"a b\"]\n[job \"A_B\"]\n[job.http \"a b\"]\nhttp_url = /x\n\
                [job.http \"x.y\"]\nhttp_url = /x\n[job.http \"x_y\"]\nhttp_url = /x\n";
    fx.main("", body);
    let errors = fx.load_err();
    let got = messages(&errors.errors);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].contains("job \"a b\" has the same id \"a_b\" as job \"A_B\""),
        "{got:#?}"
    );
    assert!(got[1].contains("job.http \"x_y\" has the same id \"x_y\" as job.http \"x.y\""));
}

#[test]
fn shared_webhook_paths_are_errors() {
    let fx = Fixture::new();
    fx.main("", "[job \"one\"]\npath = /Hello\n[job \"two\"]\npath = hello/\n[job \"three\"]\npath = /other\n");
    let errors = fx.load_err();
    let got = messages(&errors.errors);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].contains(":7: job \"two\" has the same path \"/hello\" as job \"one\""),
        "{got:#?}"
    );
}

#[test]
fn paths_are_normalised() {
    let fx = Fixture::new();
    fx.main("", "[job \"a\"]\npath = /hello\n[job \"b\"]\npath = hello2\n[job \"c\"]\npath = /hello3/\n[job \"d\"]\npath =\n");
    let config = fx.load_ok();
    let paths: Vec<Option<&str>> = config.jobs.iter().map(|j| j.kind.webhook_path()).collect();
    assert_eq!(
        paths,
        [Some("/hello"), Some("/hello2"), Some("/hello3"), None]
    );
}

#[test]
fn intervals_are_clamped_and_yield_to_schedules() {
    let fx = Fixture::new();
    let body = "[job \"short\"]\ninterval = 20s\n[job \"zero\"]\ninterval = 0\n\
                [job \"neg\"]\ninterval = -1s\n[job \"long\"]\ninterval = 1m30s\n\
                [job \"both\"]\nschedule = hourly\ninterval = 5m\n";
    fx.main("", body);
    let config = fx.load_ok();
    let interval = |name| job(&config, name).interval;
    assert_eq!(interval("short"), Some(Duration::from_secs(60)));
    assert_eq!(interval("zero"), None);
    assert_eq!(interval("neg"), None);
    assert_eq!(interval("long"), Some(Duration::from_secs(90)));
    assert_eq!(interval("both"), None);
    assert_eq!(
        job(&config, "both").schedule.as_ref().unwrap().as_str(),
        "hourly"
    );
    assert!(any_contains(
        &config.warnings,
        ":14: interval is ignored because a schedule is set"
    ));
}

#[test]
fn invalid_schedule_is_an_error_at_its_line() {
    let fx = Fixture::new();
    fx.main("", "[job \"a\"]\ndescription = d\nschedule = yearly\n");
    let errors = fx.load_err();
    assert_eq!(errors.errors.len(), 1);
    assert_eq!(errors.errors[0].line, 6);
    assert!(
        errors.errors[0]
            .message
            .starts_with("schedule = \"yearly\": unknown schedule kind \"yearly\""),
        "{errors}"
    );
}

#[test]
fn schedule_errors_name_the_field_and_what_is_accepted() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[job \"a\"]\nschedule = 0 25 * * *\n[job \"b\"]\nschedule = dayly@10:00\n\
         [job \"c\"]\nschedule = 0 0 * * 8\n",
    );
    let got: Vec<String> = fx
        .load_err()
        .errors
        .iter()
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(
        got,
        [
            "schedule = \"0 25 * * *\": hour 25 is out of range 0-23",
            "schedule = \"dayly@10:00\": unknown schedule kind \"dayly\" (did you mean \"daily\"?); \
             use minutely, hourly, daily, weekly or monthly (see the README) or a cron expression \
             such as \"0 10 * * *\"",
            "schedule = \"0 0 * * 8\": day of week 8 is out of range 0-7 (0 and 7 = Sunday)",
        ]
    );
}

#[test]
fn empty_secret_is_generated_and_inherited() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[job \"a\"]\nsecret =   \n[job \"b\"]\nsecret = own\n[job.http \"h\"]\nhttp_url = /x\n",
    );
    let config = fx.load_ok();
    assert!(config.secret_generated);
    assert_eq!(config.secret.len(), 32);
    assert!(config.secret.bytes().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(job(&config, "a").secret, config.secret);
    assert_eq!(job(&config, "b").secret, "own");
    assert_eq!(http_job(&config, "h").secret, config.secret);
}

#[test]
fn unknown_sections_are_errors_and_unknown_keys_warn() {
    let fx = Fixture::new();
    let body = "[job \"a\"]\ncommand = cd /tmp; ls\ncolour = red\n[jobs \"typo\"]\nx = 1\n\
                [job]\ncommand = y\n[job.http \"h\"]\nhttp_url = /x\nhttp_insecure = maybe\n\
                schedul = daily\n";
    fx.main("bogus = 1\n", body);
    let errors = fx.load_err();
    let file = fx.main_file().display().to_string();
    assert_eq!(
        messages(&errors.errors),
        [format!(
            "{file}:8: unknown section [jobs \"typo\"] (did you mean [job \"typo\"]?); \
             karajo reads [karajo], [job \"NAME\"], [job.http \"NAME\"], [monitor \"NAME\"], \
             [service \"NAME\"], [notif \"NAME\"], [watchtower] and [cluster] from the main file, \
             [job \"NAME\"], [monitor \"NAME\"] and [service \"NAME\"] from job.d/*.conf, \
             [job.http \"NAME\"] from job_http.d/*.conf and [user \"NAME\"] from user.conf"
        )]
    );
    let want = [
        format!("{file}:3: unknown key \"bogus\" in [karajo], ignored"),
        format!("{file}:6: the value of command was cut at an inline comment"),
        format!("{file}:7: unknown key \"colour\" in [job], ignored"),
        format!("{file}:10: section [job] needs a name"),
        format!("{file}:14: http_insecure = \"maybe\" is not a boolean"),
        format!(
            "{file}:15: unknown key \"schedul\" in [job.http], ignored; did you mean \"schedule\"?"
        ),
    ];
    let got = messages(&errors.warnings);
    for prefix in &want {
        assert!(
            got.iter().any(|m| m.starts_with(prefix.as_str())),
            "{prefix} not in {got:#?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
}

#[test]
fn misplaced_sections_warn_and_unknown_ones_are_errors_in_every_file() {
    let fx = Fixture::new();
    fx.main("", "[karajo \"x\"]\n[user \"bob\"]\n[notify \"n\"]\n");
    let job_d = fx.etc("job.d/a.conf", "[job.http \"h\"]\n[Jbo \"j\"]\n");
    let http_d = fx.etc("job_http.d/b.conf", "[http \"h\"]\n");
    let users = fx.etc("user.conf", "[job \"j\"]\n[usr \"al\"]\n[x]\n");
    let errors = fx.load_err();
    let main = fx.main_file().display().to_string();
    let located = |d: &Diagnostic| (d.file.clone(), d.line, d.message.clone());
    let got: Vec<_> = errors.errors.iter().map(located).collect();
    let starts = [
        (
            fx.main_file(),
            6,
            "unknown section [notify \"n\"] (did you mean [notif \"n\"]?); ",
        ),
        (
            job_d.clone(),
            2,
            "unknown section [jbo \"j\"] (did you mean [job \"j\"]?); ",
        ),
        (http_d, 1, "unknown section [http \"h\"]; karajo reads "),
        (
            users.clone(),
            2,
            "unknown section [usr \"al\"] (did you mean [user \"al\"]?); ",
        ),
        (users.clone(), 3, "unknown section [x]; "),
    ];
    assert_eq!(got.len(), starts.len(), "{got:#?}");
    for (file, line, start) in starts {
        assert!(
            got.iter()
                .any(|(f, l, m)| *f == file && *l == line && m.starts_with(start)),
            "{}:{line}: {start} not in {got:#?}",
            file.display()
        );
    }
    let warned = messages(&errors.warnings);
    let want = [
        format!("{main}:4: section [karajo \"x\"] takes no name (write [karajo]); ignored"),
        format!("{main}:5: section [user \"bob\"] is only read from user.conf; ignored"),
        format!(
            "{}:1: section [job \"j\"] is not read from user.conf (only [user \"NAME\"]); ignored",
            users.display()
        ),
        format!(
            "{}:1: section [job.http \"h\"] is not read from this directory \
             (only [job \"NAME\"], [monitor \"NAME\"] and [service \"NAME\"]); ignored",
            job_d.display()
        ),
    ];
    assert_eq!(warned, want);
}

#[test]
fn exec_job_keys_are_typed() {
    let fx = Fixture::new();
    let body = "[job \"a\"]\nauth_kind = GitHub\nheader_sign = X-Sig\nlog_retention = 0\n\
                timeout = 1h\nkill_grace = 0s\nnotif_on_success = n\nnotif_on_failed = n\n\
                notif_on_failed = m\nnotif_on_recover = m\n\
                [notif \"n\"]\nkind = email\nsmtp_server = smtp://h\nfrom = k@h\n\
                to = a@b\nto = c@d\n[notif \"m\"]\nkind = webhook\nurl = http://h/\n\
                [job \"no commands\"]\n[job \"b\"]\nlog_retention = 9\n";
    fx.main("", body);
    let config = fx.load_ok();
    let a = job(&config, "a");
    assert_eq!(a.kind.auth_kind, AuthKind::Github);
    assert_eq!(a.header_sign, "X-Sig");
    assert_eq!(a.log_retention, 5);
    assert_eq!(a.kind.timeout, Some(Duration::from_secs(3600)));
    assert_eq!(a.kind.kill_grace, Duration::ZERO);
    assert_eq!(a.notif_on_success, ["n"]);
    assert_eq!(a.notif_on_failed, ["n", "m"]);
    assert_eq!(a.notif_on_recover, ["m"]);
    assert!(job(&config, "no commands").kind.commands.is_empty());
    assert_eq!(job(&config, "b").log_retention, 9);
    let n = config.notifs.iter().find(|n| n.name == "n").unwrap();
    let NotifKind::Email(email) = &n.kind else {
        panic!("not email: {n:?}")
    };
    assert_eq!(email.to, ["a@b", "c@d"]);
    let m = config.notifs.iter().find(|n| n.name == "m").unwrap();
    assert_eq!(m.kind.as_str(), "webhook");
    assert!(
        config.warnings.is_empty(),
        "{:?}",
        messages(&config.warnings)
    );
}

#[test]
fn exec_job_bad_values_are_errors() {
    let fx = Fixture::new();
    let body = "[job \"a\"]\nauth_kind = bearer\nkill_grace = -1s\nsourcehut_public_key = !!\n\
                timezone = Nowhere/City\n";
    fx.main("", body);
    let got = messages(&fx.load_err().errors);
    assert_eq!(got.len(), 4, "{got:#?}");
    // In line order, whatever order the checks ran in.
    assert!(
        got[3].contains(":8: timezone = \"Nowhere/City\""),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|m| m.contains(":5: auth_kind = \"bearer\" is invalid"))
    );
    assert!(
        got.iter()
            .any(|m| m.contains(":6: kill_grace = \"-1s\" is invalid"))
    );
    assert!(
        got.iter()
            .any(|m| m.contains(":7: sourcehut_public_key = \"!!\" is invalid"))
    );
}

#[test]
fn http_job_keys_are_typed() {
    let fx = Fixture::new();
    let body = "[job.http \"a\"]\nhttp_url = https://example.org/x\nhttp_method = post\n\
                http_request_type = FORM\nhttp_header = X-A : 1:2 \nhttp_header = X-B:\n\
                http_header_secret = X-Tenant\nhttp_header_secret = x-other\n\
                http_timeout = 0\nhttp_insecure = yes\nsecret = own\nheader_sign = X-S\n\
                [job.http \"b\"]\nhttp_url = /x\nhttp_timeout = -5s\n\
                [job.http \"c\"]\nhttp_url = /x\nhttp_timeout = 10s\n";
    fx.main("http_timeout = 2m\n", body);
    let config = fx.load_ok();
    let a = http_job(&config, "a");
    assert_eq!(
        (a.kind.http_method, a.kind.http_method_text.as_str()),
        (HttpMethod::Post, "post")
    );
    assert_eq!(a.kind.http_request_type, HttpRequestType::Form);
    assert_eq!(a.kind.http_request_type_text, "FORM");
    let headers = [
        ("X-A".to_string(), "1:2".to_string()),
        ("X-B".to_string(), String::new()),
    ];
    assert_eq!(a.kind.http_headers, headers);
    assert_eq!(a.kind.http_header_lines, ["X-A : 1:2", "X-B:"]);
    assert_eq!(a.kind.http_header_secret, ["X-Tenant", "x-other"]);
    assert_eq!(a.kind.http_timeout, Some(Duration::from_secs(120)));
    assert!(a.kind.http_insecure);
    assert_eq!((a.secret.as_str(), a.header_sign.as_str()), ("own", "X-S"));
    let b = http_job(&config, "b");
    assert_eq!(
        (b.kind.http_method, b.kind.http_method_text.as_str()),
        (HttpMethod::Get, "GET")
    );
    assert_eq!(
        (
            b.kind.http_request_type,
            b.kind.http_request_type_text.as_str()
        ),
        (HttpRequestType::Query, "")
    );
    assert_eq!(b.kind.http_timeout, None);
    assert_eq!(
        http_job(&config, "c").kind.http_timeout,
        Some(Duration::from_secs(10))
    );
}

#[test]
fn http_job_bad_values_are_errors() {
    let fx = Fixture::new();
    let body = "[job.http \"a\"]\nhttp_request_type = xml\nhttp_header = NoColon\n\
                http_header_secret = X-Ok\nhttp_header_secret = \"Bad Name\"\n\
                http_header_secret = X:Y\n";
    fx.main("", body);
    let got = messages(&fx.load_err().errors);
    assert_eq!(got.len(), 5, "{got:#?}");
    assert!(
        got.iter()
            .any(|m| m.contains(":8: http_header_secret = \"Bad Name\" is not a valid header name")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|m| m.contains(":9: http_header_secret = \"X:Y\" is not a valid header name")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|m| m.contains(":4: job.http \"a\" has no http_url"))
    );
    assert!(
        got.iter()
            .any(|m| m.contains(":5: http_request_type = \"xml\" is invalid"))
    );
    assert!(
        got.iter()
            .any(|m| m.contains(":6: http_header = \"NoColon\" is invalid"))
    );
}

#[test]
fn users_are_read_from_user_conf() {
    let fx = Fixture::new();
    fx.main("", "");
    let hash = "$2a$10$9XMRfqpnzY2421fwYm5dd.CidJf7dHHWIESeeNGXuajHRf.Lqzy7a";
    let file = fx.etc(
        "user.conf",
        &format!("[user \"Bob\"]\npassword = {hash}\n[user \"al\"]\npassword =\n[job \"j\"]\n"),
    );
    let config = fx.load_ok();
    let users: Vec<(&str, &str)> = config
        .users
        .iter()
        .map(|u| (u.name.as_str(), u.password_hash.as_str()))
        .collect();
    assert_eq!(users, [("Bob", hash), ("al", "")]);
    assert!(config.jobs.is_empty());
    let warned: Vec<(&Path, usize)> = config
        .warnings
        .iter()
        .map(|d| (d.file.as_path(), d.line))
        .collect();
    assert_eq!(warned, [(file.as_path(), 3), (file.as_path(), 5)]);
}

#[test]
fn a_password_that_is_not_a_bcrypt_hash_is_an_error_that_does_not_show_it() {
    let fx = Fixture::new();
    fx.main("", "");
    let file = fx.etc(
        "user.conf",
        "# users\n[user \"admin\"]\npassword = s3cret\n[user \"ok\"]\n\
         password = $2b$12$9XMRfqpnzY2421fwYm5dd.CidJf7dHHWIESeeNGXuajHRf.Lqzy7a\n",
    );
    let errors = fx.load_err();
    assert_eq!(
        messages(&errors.errors),
        [format!(
            "{}:3: the password of user \"admin\" is not a bcrypt hash ($2a$, $2b$ or $2y$, \
             a cost and 53 characters), so nobody can log in as \"admin\"; user.conf keeps \
             hashes, not passwords: run karajo hash-password and put its output here as \
             password = $2...",
            file.display()
        )]
    );
    assert!(!errors.to_string().contains("s3cret"));
}

#[test]
fn cut_notif_values_warn() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[notif \"n\"]\nkind = email\nsmtp_server = smtp://h\nfrom = k@h\nto = a@h\n\
         smtp_password = abc;def\nsmtp_user = u\n",
    );
    let config = fx.load_ok();
    let NotifKind::Email(email) = &config.notifs[0].kind else {
        panic!("not email")
    };
    assert_eq!(email.password, "abc");
    assert_eq!(config.warnings.len(), 1);
    assert!(any_contains(
        &config.warnings,
        ":9: the value of smtp_password was cut"
    ));
}

#[test]
fn bad_notifs_and_public_url_are_errors_with_file_and_line() {
    let fx = Fixture::new();
    fx.main(
        "public_url = ftp://x\n",
        "[notif \"n\"]\nkind = sms\n[notif \"e\"]\nkind = email\nsmtp_server = smtps://h:x\n\
         from = k@h\nto = a@h\n",
    );
    let errors = fx.load_err();
    assert!(any_contains(&errors.errors, ":3: public_url"), "{errors}");
    assert!(
        any_contains(&errors.errors, ":6: notif \"n\": unknown kind \"sms\""),
        "{errors}"
    );
    assert!(
        any_contains(
            &errors.errors,
            ":9: smtp_server = \"smtps://h:x\" is invalid"
        ),
        "{errors}"
    );
    let fx = Fixture::new();
    fx.main("public_url = https://ci.example/\n", "");
    assert_eq!(
        fx.load_ok().public_url.as_deref(),
        Some("https://ci.example")
    );
}

#[test]
fn pushover_notifs_and_allow_target_load_with_file_and_line_errors() {
    let token = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";
    let user = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";
    let fx = Fixture::new();
    fx.main(
        "",
        &format!(
            "[monitor \"backup\"]\nperiod = 1h\ntoken = t0ken-t0ken-t0ken\nnotif_on_down = phone\n\
             notif_on_down = mail\n\
             [notif \"phone\"]\nkind = pushover\ntoken = {token}\nuser = {user}\n\
             priority = high\nsound = siren\nallow_target = true\n\
             [notif \"mail\"]\nkind = email\nsmtp_server = smtp://h\nfrom = k@h\nto = a@h\n"
        ),
    );
    let config = fx.load_ok();
    assert!(
        config.warnings.is_empty(),
        "{:?}",
        messages(&config.warnings)
    );
    let phone = config.notifs.iter().find(|n| n.name == "phone").unwrap();
    assert!(phone.allow_target);
    let NotifKind::Pushover(p) = &phone.kind else {
        panic!("not pushover: {phone:?}")
    };
    assert_eq!((p.priority, p.sound.as_deref()), (Some(1), Some("siren")));
    let mail = config.notifs.iter().find(|n| n.name == "mail").unwrap();
    assert!(!mail.allow_target);
    assert!(
        !format!("{config:?}").contains(token),
        "the token stays out of Debug"
    );

    let fx = Fixture::new();
    fx.main(
        "",
        "[notif \"phone\"]\nkind = pushover\nuser = nope\npriority = 5\nsoud = x\n",
    );
    let errors = fx.load_err();
    assert!(
        any_contains(
            &errors.errors,
            ":4: notif \"phone\": token (the Pushover application token) is required"
        ),
        "{errors}"
    );
    assert!(
        any_contains(
            &errors.errors,
            ":6: notif \"phone\": user is not a Pushover user or group key"
        ),
        "{errors}"
    );
    assert!(
        any_contains(&errors.errors, ":7: priority = \"5\" is invalid"),
        "{errors}"
    );
    assert!(
        any_contains(
            &errors.warnings,
            ":8: unknown key \"soud\" in [notif] of kind pushover, ignored; did you mean \"sound\"?"
        ),
        "{errors}"
    );
}

#[test]
fn unknown_notif_names_warn() {
    let fx = Fixture::new();
    fx.main("", "[job \"a\"]\nnotif_on_failed = ghost\n");
    let config = fx.load_ok();
    assert_eq!(messages(&config.warnings).len(), 1);
    assert!(any_contains(
        &config.warnings,
        ":5: notif_on_failed = \"ghost\": no [notif \"ghost\"]"
    ));
}

#[test]
fn karajo_sections_merge_and_job_sections_replace() {
    let fx = Fixture::new();
    let body =
        "[job \"a\"]\ncommand = first\n[karajo]\nname = second\n[job \"a\"]\ndescription = d\n";
    fx.main("name = first\nsecret = s\n", body);
    let config = fx.load_ok();
    assert_eq!(
        (config.name.as_str(), config.secret.as_str()),
        ("second", "s")
    );
    let a = job(&config, "a");
    assert!(a.kind.commands.is_empty());
    assert_eq!(a.description, "d");
}

#[test]
fn trusted_proxy_lists_addresses_and_blocks_and_names_bad_ones() {
    let fx = Fixture::new();
    fx.main("", "");
    assert!(fx.load_ok().trusted_proxy.is_empty());
    fx.main(
        "trusted_proxy = 127.0.0.1, 10.0.0.0/8\ntrusted_proxy = ::1 fd00::/8\n",
        "",
    );
    let nets: Vec<String> = fx
        .load_ok()
        .trusted_proxy
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, ["127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"]);
    fx.main(
        "trusted_proxy = 127.0.0.1\ntrusted_proxy = proxy.local, 10.0.0.1/8\n",
        "",
    );
    let errors = fx.load_err();
    let got = messages(&errors.errors);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(any_contains(
        &errors.errors,
        ":4: trusted_proxy = \"proxy.local\" is invalid: expected an IP address"
    ));
    assert!(any_contains(
        &errors.errors,
        ":4: trusted_proxy = \"10.0.0.1/8\" is invalid"
    ));
}

#[test]
fn load_with_reports_jobs_without_command_unless_a_function_is_registered() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[job \"a\"]\ninterval = 5m\n[job \"b\"]\ncommand = true\n",
    );
    assert!(fx.load().is_ok());
    let errors = load_with(&fx.main_file(), &|_| false).unwrap_err();
    assert_eq!(
        messages(&errors.errors),
        [format!(
            "{}:4: job \"a\" has no command: add a line such as command = echo hello",
            fx.main_file().display()
        )]
    );
    assert!(load_with(&fx.main_file(), &|name| name == "a").is_ok());
}

#[test]
fn a_cluster_job_is_warned_that_only_jitter_of_the_policies_applies_to_it() {
    let f = Fixture::new();
    f.main(
        "secret = s3cret-s3cret",
        "[cluster]\nenabled = true\nnode = n1\nnats_url = nats://127.0.0.1:1\n\n\
         [job \"shared\"]\ncommand = true\nretry = 2\njitter = 10s\n\n\
         [job \"here\"]\nrun_on = local\ncommand = true\nretry = 2\n",
    );
    let config = match f.load() {
        Ok(config) => config,
        // Without the NATS backend, enabled = true is itself refused.
        Err(_) if !crate::cluster::BUILT_WITH_NATS => return,
        Err(errors) => panic!("{errors}"),
    };
    let warnings = messages(&config.warnings);
    let about: Vec<&String> = warnings.iter().filter(|w| w.contains("ignores")).collect();
    assert_eq!(about.len(), 1, "{warnings:?}");
    assert!(
        about[0].contains(":11: retry applies to jobs run on this node only"),
        "{warnings:?}"
    );
}
