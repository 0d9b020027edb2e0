//! `karajo import crontab` run as a process on the crontab corpus in
//! `tests/data/crontab/` (Debian's /etc/crontab, cron.d fragments of Debian packages,
//! user crontab lines from the wild): every file is imported into the job.d of a
//! temporary `dir_base`, then `karajo check --format json` must load it and show each
//! job with the cron schedule and time zone it had; the commands of a few jobs are
//! run with `/bin/sh -c` as karajo runs them, to show `%`, `\%`, environment lines and
//! `SHELL` do what cron did.

use std::path::{Path, PathBuf};
use std::process::Output;

fn karajo(args: &[&str], cwd: &Path) -> Output {
    assert_cmd::cargo::cargo_bin_cmd!("karajo")
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("karajo runs")
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/crontab")
}

/// A `dir_base` with a karajo.conf and nothing else.
fn dir_base() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/karajo/job.d")).unwrap();
    std::fs::write(
        dir.path().join("etc/karajo/karajo.conf"),
        format!(
            "[karajo]\ndir_base = {}\nsecret = s\ntimezone = UTC\n",
            dir.path().display()
        ),
    )
    .unwrap();
    dir
}

fn conf(dir: &Path) -> String {
    dir.join("etc/karajo/karajo.conf").display().to_string()
}

/// Imports `file` (with `extra` arguments) into `dir`'s job.d; returns the summary.
fn import(dir: &Path, file: &Path, extra: &[&str]) -> String {
    let conf = conf(dir);
    let file = file.display().to_string();
    let mut args = vec!["--config", &conf, "import", "crontab", &file];
    args.extend_from_slice(extra);
    let out = karajo(&args, dir);
    assert!(
        out.status.success(),
        "import {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `karajo check --format json` of `dir`, which must be OK.
fn check(dir: &Path) -> serde_json::Value {
    let out = karajo(&["--config", &conf(dir), "check", "--format", "json"], dir);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["ok"], true, "{report:#}");
    report
}

/// (name, schedule, time zone) of every job in a check report, in its order.
fn schedules(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            (
                job["name"].as_str().unwrap().to_string(),
                job["schedule"]["expr"].as_str().unwrap().to_string(),
                job["schedule"]["timezone"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
            )
        })
        .collect()
}

fn owned(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    let mut list: Vec<_> = list
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    list.sort();
    list
}

#[test]
fn debian_system_crontabs_load_with_their_schedules() {
    let dir = dir_base();
    let summary = import(
        dir.path(),
        &corpus().join("debian-crontab"),
        &["--format", "system", "--timezone", "Europe/Paris"],
    );
    assert!(
        summary.ends_with("debian-crontab.conf: 4 jobs, 0 lines not imported (see the comments); check it with `karajo check`\n"),
        "{summary}"
    );
    let mut cron_d: Vec<_> = std::fs::read_dir(corpus().join("cron.d"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cron_d.sort();
    for file in &cron_d {
        // The cron.d directory tells the format.
        import(dir.path(), file, &["--timezone", "Europe/Paris"]);
    }
    let report = check(dir.path());
    let p = "Europe/Paris";
    let expected = owned(&[
        ("debian-crontab-19-run-parts", "17 * * * *", p),
        ("debian-crontab-20-run-parts", "25 6 * * *", p),
        ("debian-crontab-21-run-parts", "47 6 * * 7", p),
        ("debian-crontab-22-run-parts", "52 6 1 * *", p),
        ("cron-anacron-6-invoke-rc-d", "30 7-23 * * *", p),
        ("cron-certbot-17-perl", "0 */12 * * *", p),
        ("cron-e2scrub_all-1-e2scrub_all_cron", "30 3 * * 0", p),
        ("cron-e2scrub_all-2-e2scrub_all", "10 3 * * *", p),
        ("cron-mdadm-12-checkarray", "57 0 * * 0", p),
        ("cron-php-9-sessionclean", "09,39 * * * *", p),
        (
            "cron-popularity-contest-3-popularity-contest",
            "11 20 * * *",
            p,
        ),
        ("cron-sysstat-6-debian-sa1", "5-55/10 * * * *", p),
        ("cron-sysstat-9-debian-sa1", "59 23 * * *", p),
        ("cron-zfsutils-linux-4-trim", "24 0 1-7 * *", p),
        ("cron-zfsutils-linux-7-scrub", "24 0 8-14 * *", p),
    ]);
    let mut got = schedules(&report);
    got.sort();
    assert_eq!(got, expected);
    // Five upcoming runs each, in the zone cron used.
    for job in report["jobs"].as_array().unwrap() {
        let next = job["schedule"]["next"].as_array().unwrap();
        assert_eq!(next.len(), 5, "{job:#}");
        assert!(
            next[0].as_str().unwrap().ends_with("[Europe/Paris]"),
            "{job:#}"
        );
    }
    // A second import of the same file refuses to overwrite it.
    let conf = conf(dir.path());
    let again = corpus().join("cron.d/php").display().to_string();
    let out = karajo(
        &["--config", &conf, "import", "crontab", &again],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cron-php.conf exists; add --force to replace it"),
        "{err}"
    );
}

#[test]
fn a_user_crontab_loads_and_keeps_what_it_cannot_translate_as_comments() {
    let dir = dir_base();
    let summary = import(
        dir.path(),
        &corpus().join("user-crontab"),
        &["--timezone", "UTC"],
    );
    assert!(
        summary.contains("user-crontab.conf: 26 jobs, 5 lines not imported"),
        "{summary}"
    );
    let text =
        std::fs::read_to_string(dir.path().join("etc/karajo/job.d/user-crontab.conf")).unwrap();
    for reason in [
        "## not imported (line 34): @reboot: karajo has no run-once-at-start trigger",
        "## not imported (line 35): karajo refuses the schedule \"61 * * * *\": minute 61 is out of range 0-59",
        "## not imported (line 36): karajo refuses the schedule \"0 0 30 2 *\"",
        "## not imported (line 37): not a cron line: the day of week field is missing",
        "## not imported (line 38): @every is not a cron macro",
        "## not imported: CRON_TZ \"Mars/Olympus\" is not a time zone known here",
        "##   [notif \"mailto\"]",
        "##   to = dev@example.com",
        "#notif_on_failed = mailto",
    ] {
        assert!(text.contains(reason), "{reason:?} missing from\n{text}");
    }
    let report = check(dir.path());
    let got = schedules(&report);
    assert_eq!(got.len(), 26);
    let find = |name: &str| {
        got.iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("{name} missing from {got:#?}"))
            .clone()
    };
    let b = "Europe/Berlin";
    for (name, schedule, zone) in [
        ("user-crontab-5-tar", "0 5 * * 1", b),
        ("user-crontab-8-find", "@daily", b),
        ("user-crontab-13-command", "@annually", b),
        ("user-crontab-14-logrotate", "@midnight", b),
        ("user-crontab-17-check-sh", "0 9-17 * * 1-5", b),
        ("user-crontab-22-echo", "5 4 * * 0", b),
        ("user-crontab-23-half-year", "0 0 1 1,7 *", b),
        // TZ changes the commands' environment, not the schedule.
        ("user-crontab-27-command", "0 8 * * *", b),
        ("user-crontab-29-echo", "0 0 * * *", "Asia/Jakarta"),
        ("user-crontab-40-echo", "0 12 * * *", "Asia/Jakarta"),
    ] {
        assert_eq!(
            find(name),
            (name.to_string(), schedule.to_string(), zone.to_string())
        );
    }
    // @yearly is written as cron wrote it; karajo's check describes it.
    assert_eq!(find("user-crontab-12-echo").1, "@yearly");
}

#[test]
fn dry_run_prints_and_writes_nothing_and_standard_input_is_read() {
    let dir = dir_base();
    let out = assert_cmd::cargo::cargo_bin_cmd!("karajo")
        .current_dir(dir.path())
        .args([
            "--config",
            &conf(dir.path()),
            "import",
            "crontab",
            "--dry-run",
            "--timezone",
            "UTC",
        ])
        .write_stdin("*/15 * * * * echo hi\n")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[job \"crontab-1-echo\"]\n"), "{text}");
    assert!(text.contains("schedule = \"*/15 * * * *\"\n"), "{text}");
    assert!(text.contains("timezone = UTC\n"), "{text}");
    assert!(text.contains("command = \"echo hi\"\n"), "{text}");
    assert!(
        std::fs::read_dir(dir.path().join("etc/karajo/job.d"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = dir_base();
    let conf = conf(dir.path());
    let out = karajo(
        &["--config", &conf, "import", "crontab", "/nonexistent/tab"],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the crontab: /nonexistent/tab: No such file"),
        "{err}"
    );
    let tab = corpus().join("user-crontab").display().to_string();
    let out = karajo(
        &[
            "--config",
            &conf,
            "import",
            "crontab",
            &tab,
            "--timezone",
            "Mars/Base",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--timezone \"Mars/Base\" is not a time zone"),
        "{err}"
    );
}

/// The commands, as loaded by karajo and run as karajo runs them (`/bin/sh -c` with
/// PATH only), do what cron did: `%` feeds standard input, `\%` is a percent sign,
/// environment lines are set, `SHELL` runs the command, `;` and `#` survive.
#[test]
fn imported_commands_behave_as_under_cron() {
    let dir = dir_base();
    let tab = dir.path().join("tab");
    std::fs::write(
        &tab,
        "GREETING = 'hello world'\n\
         0 0 * * * cat%line one%line two\n\
         0 0 * * * printf '\\%s\\n' \"$GREETING\" 'a\\%b'  ;  echo 'x  #  y' # trailing comment\n\
         0 0 * * * tr a-z A-Z%no newline at the end\n\
         SHELL=/bin/bash\n\
         0 0 * * * echo \"$BASH_VERSION\" | grep -c . ; cat%from bash\n",
    )
    .unwrap();
    let summary = import(dir.path(), &tab, &["--timezone", "UTC"]);
    assert!(
        summary.contains("4 jobs, 0 lines not imported"),
        "{summary}"
    );
    // Read the commands back through karajo's own INI reader.
    let text = std::fs::read_to_string(dir.path().join("etc/karajo/job.d/cron-tab.conf")).unwrap();
    let doc = karajo::config::ini::parse(&text).unwrap();
    let commands: Vec<String> = doc
        .sections
        .iter()
        .map(|s| {
            s.vars
                .iter()
                .find(|v| v.key == "command")
                .unwrap()
                .value
                .clone()
        })
        .collect();
    let run = |command: &str| {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(&commands[0]), "line one\nline two\n");
    assert_eq!(run(&commands[1]), "hello world\na%b\nx  #  y\n");
    assert_eq!(run(&commands[2]), "NO NEWLINE AT THE END\n");
    assert_eq!(run(&commands[3]), "1\nfrom bash\n");
}
