//! Loading tests for `[monitor "NAME"]`, `[watchtower]` and the `[karajo]` keys that
//! serve them: every key of monitors spec A.2 and A.8 with its default, and every
//! refusal with its file and line.

use super::*;

/// The main file's first body line when `karajo_keys` is empty: line 1 `[karajo]`, 2
/// `dir_base`, 3 the empty keys, then the body.
const BODY_LINE: usize = 4;

const TOKEN: &str = "0123456789abcdef";

fn monitor<'a>(config: &'a Config, name: &str) -> &'a MonitorSpec {
    config
        .monitors
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no monitor {name:?}"))
}

fn period_of(spec: &MonitorSpec) -> Duration {
    match &spec.rules.cadence {
        Cadence::Period(period) => *period,
        Cadence::Schedule { .. } => panic!("{} has a schedule", spec.name),
    }
}

/// `file:line: message` for the main file.
fn at(fx: &Fixture, line: usize, message: &str) -> String {
    format!("{}:{line}: {message}", fx.main_file().display())
}

#[test]
fn a_minimal_monitor_takes_every_default() {
    let fx = Fixture::new();
    fx.main(
        "",
        &format!("[monitor \"Backup DB\"]\nperiod = 1h\ntoken = {TOKEN}\n"),
    );
    let config = fx.load_ok();
    assert!(
        config.warnings.is_empty(),
        "{:?}",
        messages(&config.warnings)
    );
    let m = monitor(&config, "Backup DB");
    assert_eq!(m.id.as_str(), "backup_db");
    assert_eq!((m.file.as_path(), m.line), (fx.main_file().as_path(), 4));
    assert_eq!(m.description, "");
    assert_eq!(m.path, "/backup_db");
    assert_eq!(m.auth, MonitorAuth::Token(TOKEN.to_string()));
    assert!(!m.post_only && !m.manual_resume && !m.accept_pulse);
    assert_eq!(m.ping_body_limit, 10_000);
    assert_eq!(m.log_retention, 20);
    let rules = &m.rules;
    assert_eq!(period_of(m), Duration::from_secs(3600));
    assert_eq!(rules.grace, Duration::from_secs(300));
    assert_eq!(rules.max_runtime, Some(Duration::from_secs(300)));
    assert!(rules.log_success);
    assert!(rules.notif_on_down.is_empty() && rules.notif_on_up.is_empty());
    assert!(rules.notif_on_late.is_empty());
    assert_eq!(rules.notif_repeat, None);
}

#[test]
fn every_monitor_key_is_read() {
    let fx = Fixture::new();
    let body = "[monitor \"nightly\"]\ndescription = nightly <b>dump</b>\n\
                schedule = daily@03:00\ntimezone = Europe/Berlin\ngrace = 10m\n\
                max_runtime = 2h\nearly_tolerance = 30s\npath = /backups/db/\n\
                auth_kind = HMAC-SHA256\nsecret = \" own \"\nheader_sign = X-Sig\n\
                post_only = yes\nping_body_limit = 0\nlog_success = false\nlog_retention = 7\n\
                manual_resume = true\naccept_pulse = 1\nnotif_on_down = ops\n\
                notif_on_down = mail\nnotif_on_up = ops\nnotif_on_late = mail\n\
                notif_repeat = 1h\n\
                [monitor \"plain\"]\nperiod = 90s\nauth_kind = none\nmax_runtime = 0s\n\
                [monitor \"signed\"]\nperiod = 1s\nauth_kind = hmac-sha256\n\
                [notif \"ops\"]\nkind = webhook\nurl = http://h/\n\
                [notif \"mail\"]\nkind = webhook\nurl = http://h/m\n";
    fx.main("secret = global\nping_body_limit = 512\n", body);
    let config = fx.load_ok();
    assert!(
        config.warnings.is_empty(),
        "{:?}",
        messages(&config.warnings)
    );
    let names: Vec<&str> = config.monitors.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["nightly", "plain", "signed"]);

    let m = monitor(&config, "nightly");
    assert_eq!(m.description, "nightly <b>dump</b>");
    let Cadence::Schedule {
        schedule,
        early_tolerance,
    } = &m.rules.cadence
    else {
        panic!("nightly has no schedule");
    };
    assert_eq!(schedule.as_str(), "daily@03:00");
    assert_eq!(schedule.timezone().iana_name(), Some("Europe/Berlin"));
    assert_eq!(*early_tolerance, Duration::from_secs(30));
    assert_eq!(m.rules.grace, Duration::from_secs(600));
    assert_eq!(m.rules.max_runtime, Some(Duration::from_secs(7200)));
    assert_eq!(m.path, "/backups/db");
    assert_eq!(
        m.auth,
        MonitorAuth::HmacSha256 {
            secret: "own".into(),
            header_sign: "X-Sig".into()
        }
    );
    assert!(m.post_only && m.manual_resume && m.accept_pulse);
    assert_eq!(m.ping_body_limit, 0);
    assert!(!m.rules.log_success);
    assert_eq!(m.log_retention, 7);
    assert_eq!(m.rules.notif_on_down, ["ops", "mail"]);
    assert_eq!(m.rules.notif_on_up, ["ops"]);
    assert_eq!(m.rules.notif_on_late, ["mail"]);
    assert_eq!(m.rules.notif_repeat, Some(Duration::from_secs(3600)));

    let plain = monitor(&config, "plain");
    assert_eq!(period_of(plain), Duration::from_secs(90));
    assert_eq!(plain.auth, MonitorAuth::None);
    assert_eq!(plain.rules.max_runtime, None, "an explicit 0s is no limit");
    assert_eq!(plain.ping_body_limit, 512, "the global ping_body_limit");

    let signed = monitor(&config, "signed");
    assert_eq!(period_of(signed), Duration::from_secs(1));
    assert_eq!(
        signed.auth,
        MonitorAuth::HmacSha256 {
            secret: "global".into(),
            header_sign: "X-Karajo-Sign".into()
        }
    );
}

#[test]
fn max_runtime_follows_grace_unless_set() {
    let fx = Fixture::new();
    let body = format!(
        "[monitor \"a\"]\nperiod = 1m\ngrace = 2m\ntoken = {TOKEN}\n\
         [monitor \"b\"]\nperiod = 1m\ngrace = 0s\ntoken = {TOKEN}\n\
         [monitor \"c\"]\nperiod = 1m\ngrace = 0s\nmax_runtime = 3m\ntoken = {TOKEN}\n"
    );
    fx.main("", &body);
    let config = fx.load_ok();
    let runtime = |name| monitor(&config, name).rules.max_runtime;
    assert_eq!(runtime("a"), Some(Duration::from_secs(120)));
    assert_eq!(runtime("b"), None, "grace 0s gives no run limit");
    assert_eq!(runtime("c"), Some(Duration::from_secs(180)));
}

#[test]
fn cadence_errors_name_file_and_line() {
    let fx = Fixture::new();
    let body = format!(
        "[monitor \"both\"]\nperiod = 1h\ntoken = {TOKEN}\nschedule = hourly\n\
         [monitor \"neither\"]\ntoken = {TOKEN}\n\
         [monitor \"quick\"]\nperiod = 500ms\ntoken = {TOKEN}\n\
         [monitor \"negative\"]\nperiod = -1m\ngrace = -1s\ntoken = {TOKEN}\n\
         [monitor \"bad schedule\"]\nschedule = dayly\ntoken = {TOKEN}\n"
    );
    fx.main("", &body);
    let errors = fx.load_err();
    let want = [
        at(
            &fx,
            7,
            "monitor \"both\" has both period (line 5) and schedule (line 7); keep one",
        ),
        at(
            &fx,
            8,
            "monitor \"neither\" has neither period nor schedule: add a line such as \
             period = 1h or schedule = daily@03:00",
        ),
        at(
            &fx,
            11,
            "period = \"500ms\" is invalid: it must be at least 1s",
        ),
        at(
            &fx,
            14,
            "period = \"-1m\" is invalid: it must be at least 1s",
        ),
        at(
            &fx,
            15,
            "grace = \"-1s\" is invalid: it must not be negative",
        ),
    ];
    let got = messages(&errors.errors);
    for line in &want {
        assert!(got.contains(line), "{line}\nnot in {got:#?}");
    }
    assert!(
        any_contains(
            &errors.errors,
            ":18: schedule = \"dayly\": unknown schedule kind"
        ),
        "{got:#?}"
    );
    assert_eq!(got.len(), want.len() + 1, "{got:#?}");
}

#[test]
fn paths_a_ping_route_would_misread_are_errors() {
    let fx = Fixture::new();
    let body = format!(
        "[monitor \"a\"]\nperiod = 1h\ntoken = {TOKEN}\npath = /backup/start\n\
         [monitor \"b\"]\nperiod = 1h\ntoken = {TOKEN}\npath = x/FAIL/\n\
         [monitor \"c\"]\nperiod = 1h\ntoken = {TOKEN}\npath = /log\n\
         [monitor \"d\"]\nperiod = 1h\ntoken = {TOKEN}\npath = /x/0042\n\
         [monitor \"e\"]\nperiod = 1h\ntoken = {TOKEN}\npath = /\n\
         [monitor \"start\"]\nperiod = 1h\ntoken = {TOKEN}\n\
         [monitor \"ok\"]\nperiod = 1h\ntoken = {TOKEN}\npath = /start-x/a1\n"
    );
    fx.main("", &body);
    let errors = fx.load_err();
    let misread = |name: &str, path: &str, what: &str| {
        format!(
            "monitor {name:?} has path {path:?}, whose last segment {what} \
             (/start, /fail, /log, /0 to /255); choose another path"
        )
    };
    let want = [
        at(
            &fx,
            7,
            &misread("a", "/backup/start", "\"start\" is read as a ping signal"),
        ),
        at(
            &fx,
            11,
            &misread("b", "/x/FAIL", "\"FAIL\" is read as a ping signal"),
        ),
        at(
            &fx,
            15,
            &misread("c", "/log", "\"log\" is read as a ping signal"),
        ),
        at(
            &fx,
            19,
            &misread("d", "/x/0042", "\"0042\" is read as an exit status"),
        ),
        at(
            &fx,
            23,
            "monitor \"e\": path = \"/\" is invalid: it needs at least one segment, \
             such as /backup",
        ),
        at(
            &fx,
            24,
            &misread("start", "/start", "\"start\" is read as a ping signal"),
        ),
    ];
    assert_eq!(messages(&errors.errors), want);
}

#[test]
fn monitor_paths_collide_after_normalisation() {
    let fx = Fixture::new();
    let body = format!(
        "[monitor \"one\"]\nperiod = 1h\ntoken = {TOKEN}\npath = /a/b\n\
         [monitor \"two\"]\nperiod = 1h\ntoken = {TOKEN}\npath = a/b\n\
         [monitor \"three\"]\nperiod = 1h\ntoken = {TOKEN}\npath = A/b/\n\
         [monitor \"x\"]\nperiod = 1h\ntoken = {TOKEN}\n\
         [monitor \"y\"]\nperiod = 1h\ntoken = {TOKEN}\npath = /x\n"
    );
    fx.main("", &body);
    let errors = fx.load_err();
    let main = fx.main_file().display().to_string();
    let want = [
        at(
            &fx,
            15,
            &format!("monitor \"three\" has the same path \"/A/b\" as monitor \"one\" ({main}:7)"),
        ),
        at(
            &fx,
            11,
            &format!("monitor \"two\" has the same path \"/a/b\" as monitor \"one\" ({main}:7)"),
        ),
        at(
            &fx,
            22,
            &format!("monitor \"y\" has the same path \"/x\" as monitor \"x\" ({main}:16)"),
        ),
    ];
    let mut got = messages(&errors.errors);
    got.sort();
    let mut want = want.to_vec();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn auth_kind_and_token_are_checked_without_showing_the_token() {
    let fx = Fixture::new();
    let body = "[monitor \"kind\"]\nperiod = 1h\nauth_kind = basic\n\
                [monitor \"no token\"]\nperiod = 1h\n\
                [monitor \"short\"]\nperiod = 1h\ntoken = tiny-secret\n\
                [monitor \"open\"]\nperiod = 1h\nauth_kind = none\ntoken = unused-secret-value\n";
    fx.main("listen_address = 0.0.0.0:31937\n", body);
    let errors = fx.load_err();
    let base = BODY_LINE + 1;
    assert_eq!(
        messages(&errors.errors),
        [
            at(
                &fx,
                base + 2,
                "auth_kind = \"basic\" is invalid: expected token, hmac-sha256 or none"
            ),
            at(
                &fx,
                base + 3,
                "monitor \"no token\" has no token: add token = <at least 16 random \
                 characters>, or set auth_kind = hmac-sha256 or none"
            ),
        ]
    );
    let warned = messages(&errors.warnings);
    assert_eq!(
        warned,
        [
            at(
                &fx,
                base + 7,
                "the token of monitor \"short\" is shorter than 16 characters, so it is \
                 easy to guess"
            ),
            at(
                &fx,
                base + 10,
                "monitor \"open\" has auth_kind = none and karajo listens on \
                 \"0.0.0.0:31937\": anyone who reaches that address can check in"
            ),
            at(
                &fx,
                base + 11,
                "token is ignored because auth_kind is not token"
            ),
        ]
    );
    let all = format!("{errors}{warned:?}");
    assert!(!all.contains("tiny-secret") && !all.contains("unused-secret-value"));
}

#[test]
fn auth_kind_none_on_loopback_is_quiet() {
    for address in ["127.0.0.1:31937", "[::1]:8080", "localhost:1"] {
        let fx = Fixture::new();
        fx.main(
            &format!("listen_address = {address}\n"),
            "[monitor \"open\"]\nperiod = 1h\nauth_kind = none\n",
        );
        let config = fx.load_ok();
        assert!(
            config.warnings.is_empty(),
            "{address}: {:?}",
            config.warnings
        );
    }
}

#[test]
fn secrets_never_reach_debug_output() {
    let fx = Fixture::new();
    let body = "[monitor \"t\"]\nperiod = 1h\ntoken = token-value-1234567\n\
                [monitor \"h\"]\nperiod = 1h\nauth_kind = hmac-sha256\nsecret = hmac-value\n\
                [watchtower]\npassword = tower-value\n";
    fx.main("secret = global-value\n", body);
    let config = fx.load_ok();
    let debug = format!("{:?} {:?}", config.monitors, config.watchtower);
    for secret in ["token-value-1234567", "hmac-value", "tower-value"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("<redacted>"), "{debug}");
}

#[test]
fn monitor_ids_are_unique_per_kind_only() {
    let fx = Fixture::new();
    let body = format!(
        "[job \"backup\"]\ncommand = true\n\
         [monitor \"backup\"]\nperiod = 1h\ntoken = {TOKEN}\n\
         [monitor \"a b\"]\nperiod = 1h\ntoken = {TOKEN}\npath = /one\n\
         [monitor \"A.B\"]\nperiod = 1h\ntoken = {TOKEN}\npath = /two\n"
    );
    fx.main("", &body);
    let errors = fx.load_err();
    let main = fx.main_file().display().to_string();
    assert_eq!(
        messages(&errors.errors),
        [at(
            &fx,
            9,
            &format!(
                "monitor \"a b\" has the same id \"a_b\" as monitor \"A.B\" ({main}:13); \
                 rename one of them"
            )
        )]
    );
    fx.main(
        "",
        &format!(
            "[job \"backup\"]\ncommand = true\n[monitor \"backup\"]\nperiod = 1h\ntoken = {TOKEN}\n"
        ),
    );
    let config = fx.load_ok();
    assert_eq!(config.jobs[0].common.id, config.monitors[0].id);
}

#[test]
fn job_d_monitors_replace_earlier_definitions_entirely() {
    let fx = Fixture::new();
    fx.main(
        "",
        &format!("[monitor \"m\"]\nperiod = 1h\ngrace = 1m\npost_only = true\ntoken = {TOKEN}\n"),
    );
    let later = fx.etc(
        "job.d/20-m.conf",
        &format!("[monitor \"m\"]\nschedule = hourly\ntoken = {TOKEN}\n[job \"j\"]\ncommand = x\n"),
    );
    fx.etc("job.d/.hidden.conf", "[monitor \"m\"]\nperiod = 1s\n");
    let http_d = fx.etc("job_http.d/m.conf", "[monitor \"n\"]\nperiod = 1h\n");
    let config = fx.load_ok();
    let m = monitor(&config, "m");
    assert_eq!((m.file.as_path(), m.line), (later.as_path(), 1));
    assert!(matches!(m.rules.cadence, Cadence::Schedule { .. }));
    assert_eq!(
        m.rules.grace,
        Duration::from_secs(300),
        "not the earlier 1m"
    );
    assert!(!m.post_only, "not the earlier post_only");
    assert_eq!(config.monitors.len(), 1);
    assert_eq!(config.jobs.len(), 1);
    assert_eq!(
        messages(&config.warnings),
        [format!(
            "{}:1: section [monitor \"n\"] is not read from this directory \
             (only [job.http \"NAME\"]); ignored",
            http_d.display()
        )]
    );
}

#[test]
fn unknown_monitor_keys_and_notif_names_warn() {
    let fx = Fixture::new();
    let body = format!(
        "[monitor \"m\"]\nperiod = 1h\ntoken = {TOKEN}\ngrase = 1m\nnotif_on_down = ghost\n\
         notif_on_late = ops\nearly_tolerance = 5s\n\
         [notif \"ops\"]\nkind = webhook\nurl = http://h/\n\
         [watchtower]\npassword = p\nnotif_on_up = phantom\nmax_monitor = 5\n"
    );
    fx.main("", &body);
    let config = fx.load_ok();
    assert_eq!(
        messages(&config.warnings),
        [
            at(
                &fx,
                7,
                "unknown key \"grase\" in [monitor], ignored; did you mean \"grace\"?"
            ),
            at(
                &fx,
                8,
                "notif_on_down = \"ghost\": no [notif \"ghost\"] is defined"
            ),
            at(
                &fx,
                10,
                "early_tolerance is ignored because the monitor has a period \
                 (it only applies to a schedule)"
            ),
            at(
                &fx,
                16,
                "notif_on_up = \"phantom\": no [notif \"phantom\"] is defined"
            ),
            at(
                &fx,
                17,
                "unknown key \"max_monitor\" in [watchtower], ignored; did you mean \
                 \"max_monitors\"?"
            ),
        ]
    );
}

#[test]
fn watchtower_keys_and_defaults() {
    let fx = Fixture::new();
    fx.main("", "[watchtower]\npassword = secret-pass\n");
    let config = fx.load_ok();
    let tower = config.watchtower.as_ref().unwrap();
    assert_eq!(tower.password, "secret-pass");
    assert_eq!(tower.path, "/karajo/api/watchtower");
    assert_eq!(tower.grace, Duration::ZERO);
    assert_eq!(tower.max_monitors, 1000);
    assert_eq!(tower.log_retention, 20);
    assert!(tower.notif_on_down.is_empty() && tower.notif_on_up.is_empty());
    assert_eq!(
        (tower.file.as_path(), tower.line),
        (fx.main_file().as_path(), 4)
    );

    let body = "[watchtower]\npassword = p\npath = /\n[job \"j\"]\ncommand = x\n\
                [watchtower]\ngrace = 30s\nmax_monitors = 5\nlog_retention = 3\n\
                notif_on_down = ops\nnotif_on_up = ops\n\
                [notif \"ops\"]\nkind = webhook\nurl = http://h/\n";
    fx.main("", body);
    let config = fx.load_ok();
    assert!(
        config.warnings.is_empty(),
        "{:?}",
        messages(&config.warnings)
    );
    let tower = config.watchtower.as_ref().unwrap();
    assert_eq!(tower.path, "/");
    assert_eq!(tower.grace, Duration::from_secs(30));
    assert_eq!((tower.max_monitors, tower.log_retention), (5, 3));
    assert_eq!(
        (tower.notif_on_down.as_slice(), tower.notif_on_up.as_slice()),
        (&["ops".to_string()][..], &["ops".to_string()][..])
    );
}

#[test]
fn watchtower_without_password_or_out_of_place_is_not_served() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[watchtower]\npath = /wt\n[watchtower \"x\"]\npassword = p\n",
    );
    let job_d = fx.etc("job.d/w.conf", "[watchtower]\npassword = p\n");
    let config = fx.load_ok();
    assert!(config.watchtower.is_none());
    assert_eq!(
        messages(&config.warnings),
        [
            at(
                &fx,
                4,
                "[watchtower] has no password, so its routes are not served; \
                 add password = <a long random text>"
            ),
            at(
                &fx,
                6,
                "section [watchtower \"x\"] takes no name (write [watchtower]); ignored"
            ),
            format!(
                "{}:1: section [watchtower] is not read from this directory \
                 (only [job \"NAME\"], [monitor \"NAME\"] and [service \"NAME\"]); ignored",
                job_d.display()
            ),
        ]
    );
}

#[test]
fn watchtower_bad_values_are_errors() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[watchtower]\npassword = p\ngrace = -5s\nmax_monitors = 0\nlog_retention = x\n",
    );
    let errors = fx.load_err();
    assert_eq!(
        messages(&errors.errors),
        [
            at(
                &fx,
                6,
                "grace = \"-5s\" is invalid: it must not be negative"
            ),
            at(
                &fx,
                7,
                "max_monitors = \"0\" is invalid: it must be greater than zero"
            ),
            at(
                &fx,
                8,
                "log_retention = \"x\" is invalid: expected an integer"
            ),
        ]
    );
}

#[test]
fn monitor_bad_values_are_errors() {
    let fx = Fixture::new();
    let body = format!(
        "[monitor \"m\"]\nperiod = 1h\ntoken = {TOKEN}\nmax_runtime = -1m\n\
         early_tolerance = soon\nping_body_limit = -1\nlog_retention = 0\n\
         notif_repeat = -1h\ntimezone = Mars/Base\npost_only = perhaps\n"
    );
    fx.main("", &body);
    let errors = fx.load_err();
    assert_eq!(
        messages(&errors.errors),
        [
            at(
                &fx,
                7,
                "max_runtime = \"-1m\" is invalid: it must not be negative"
            ),
            at(
                &fx,
                8,
                "early_tolerance = \"soon\" is invalid: expected a duration such as 30s, \
                 5m or 1h30m"
            ),
            at(
                &fx,
                9,
                "ping_body_limit = \"-1\" is invalid: it must not be negative"
            ),
            at(
                &fx,
                10,
                "log_retention = \"0\" is invalid: it must be greater than zero"
            ),
            at(
                &fx,
                11,
                "notif_repeat = \"-1h\" is invalid: it must not be negative"
            ),
            at(
                &fx,
                12,
                "timezone = \"Mars/Base\" is invalid: expected a time zone name such as \
                 Asia/Jakarta"
            ),
        ]
    );
    assert_eq!(
        messages(&errors.warnings),
        [at(
            &fx,
            13,
            "post_only = \"perhaps\" is not a boolean (true/yes/1 or false/no/0), read as false"
        )]
    );
}

#[test]
fn new_karajo_keys_for_monitors_and_events() {
    let fx = Fixture::new();
    fx.main("", "");
    let config = fx.load_ok();
    assert_eq!(config.ping_body_limit, 10_000);
    assert_eq!(config.event_retention, Duration::from_secs(720 * 3600));
    assert_eq!(config.event_day_max, 67_108_864);
    assert!(config.monitors.is_empty() && config.watchtower.is_none());

    fx.main(
        "ping_body_limit = 0\nevent_retention = 48h\nevent_day_max = 1024\n",
        "",
    );
    let config = fx.load_ok();
    assert_eq!(config.ping_body_limit, 0);
    assert_eq!(config.event_retention, Duration::from_secs(48 * 3600));
    assert_eq!(config.event_day_max, 1024);

    fx.main(
        "ping_body_limit = -5\nevent_retention = 0s\nevent_day_max = 0\n",
        "",
    );
    let errors = fx.load_err();
    assert_eq!(
        messages(&errors.errors),
        [
            at(
                &fx,
                3,
                "ping_body_limit = \"-5\" is invalid: it must not be negative"
            ),
            at(
                &fx,
                4,
                "event_retention = \"0s\" is invalid: it must be greater than zero"
            ),
            at(
                &fx,
                5,
                "event_day_max = \"0\" is invalid: it must be greater than zero"
            ),
        ]
    );
}

#[test]
fn recoveries_go_to_the_down_notifs_unless_notif_on_up_is_written() {
    let fx = Fixture::new();
    fx.main(
        "",
        &format!(
            "[notif \"ops\"]\nkind = webhook\nurl = http://127.0.0.1:1/hook\n\n\
             [monitor \"a\"]\nperiod = 1h\ntoken = {TOKEN}\nnotif_on_down = ops\n\n\
             [monitor \"b\"]\nperiod = 1h\ntoken = {TOKEN}\nnotif_on_down = ops\nnotif_on_up =\n"
        ),
    );
    let config = fx.load_ok();
    assert_eq!(monitor(&config, "a").rules.notif_on_up, ["ops"]);
    assert!(monitor(&config, "b").rules.notif_on_up.is_empty());
}
