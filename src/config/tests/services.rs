//! Loading tests for `[service "NAME"]`: every key of monitors spec B.2 with its
//! default, every refusal with its file and line, the warnings about keys that do
//! nothing, the `user` check, secrets kept out of every message, and the worst-case
//! shutdown time of B.6.

use super::super::fields::{Fields, Problems};
use super::super::jobs::Definition;
use super::super::services::{KarajoUser, build_service, name_in_passwd};
use super::*;

/// The main file's first body line when `karajo_keys` is empty: line 1 `[karajo]`, 2
/// `dir_base`, 3 the empty keys, then the body.
const BODY_LINE: usize = 4;

fn service<'a>(config: &'a Config, name: &str) -> &'a ServiceSpec {
    config
        .services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no service {name:?}"))
}

/// `file:line: message` for the main file.
fn at(fx: &Fixture, line: usize, message: &str) -> String {
    format!("{}:{line}: {message}", fx.main_file().display())
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_minimal_service_takes_every_default() {
    let fx = Fixture::new();
    fx.main("", "[service \"Web App\"]\ncommand = exec ./server\n");
    let config = fx.load_ok();
    assert!(
        config.warnings.is_empty(),
        "{:?}",
        messages(&config.warnings)
    );
    let s = service(&config, "Web App");
    assert_eq!(s.id.as_str(), "web_app");
    assert_eq!(
        (s.file.as_path(), s.line),
        (fx.main_file().as_path(), BODY_LINE)
    );
    assert_eq!(s.description, "");
    assert_eq!(s.command, "exec ./server");
    assert!(s.pre_start.is_empty());
    assert_eq!(s.working_dir, None);
    assert_eq!(s.user, "");
    assert!(s.env.is_empty());
    assert!(!s.env_inherit && !s.disabled && !s.notify);
    assert_eq!(s.priority, 100);
    assert_eq!(s.pid_file, None);
    assert_eq!(s.check_interval, secs(5));
    assert_eq!(s.on_exit, OnExit::Stop);
    assert_eq!(s.secret, "");
    assert_eq!(s.log_retention, 10);
    assert_eq!(s.log_max_size, 10_485_760);
    assert_eq!(s.history, 100);
    assert!(s.keyvalue_clear);
    let want = ServicePolicy {
        restart: RestartPolicy::OnFailure,
        success_exit_codes: vec![0],
        restart_delay: secs(1),
        restart_delay_max: secs(60),
        backoff_reset: secs(60),
        start_retries: 3,
        ready: ReadyRule::Delay,
        start_seconds: secs(1),
        start_timeout: secs(30),
        max_runtime: None,
        stop_signal: ServiceSignal::Term,
        stop_timeout: secs(10),
        ping_timeout: None,
        notif_on_failed: Vec::new(),
        notif_on_fatal: Vec::new(),
        notif_on_recover: Vec::new(),
    };
    assert_eq!(s.policy, want);
}

#[test]
fn every_service_key_is_read() {
    let fx = Fixture::new();
    let body = "[service \"db\"]\ndescription = the <b>database</b>\n\
                command = \"exec postgres -D data; echo never\"\n\
                pre_start = mkdir -p data\npre_start = ./migrate\n\
                working_dir = srv/db\nuser = postgres\n\
                env = PGPORT=5433\nenv = \"GREETING = hello world \"\nenv = EMPTY=\n\
                env_inherit = yes\ndisabled = true\npriority = -5\nrestart = ALWAYS\n\
                success_exit_codes = 0, 3\nsuccess_exit_codes = 143,3\n\
                restart_delay = 2s\nrestart_delay_max = 5m\nbackoff_reset = 10m\n\
                start_retries = 0\nready = notify\nstart_timeout = 1m\nmax_runtime = 24h\n\
                stop_signal = sigint\nstop_timeout = 0s\npid_file = run/db.pid\n\
                check_interval = 2s\nping_timeout = 30s\nnotify = 1\non_exit = leave\n\
                secret = delegated-secret\nlog_retention = 3\nlog_max_size = 4096\n\
                history = 7\nkeyvalue_clear = false\n\
                notif_on_failed = ops\nnotif_on_failed = mail\nnotif_on_fatal = ops\n\
                notif_on_recover = mail\n\
                [notif \"ops\"]\nkind = webhook\nurl = http://h/\n\
                [notif \"mail\"]\nkind = webhook\nurl = http://h/m\n";
    fx.main("", body);
    let config = fx.load_ok();
    let warned: Vec<String> = messages(&config.warnings)
        .into_iter()
        .filter(|m| !m.contains("user = \"postgres\""))
        .collect();
    assert!(warned.is_empty(), "{warned:?}");
    let s = service(&config, "db");
    assert_eq!(s.description, "the <b>database</b>");
    assert_eq!(s.command, "exec postgres -D data; echo never");
    assert_eq!(s.pre_start, ["mkdir -p data", "./migrate"]);
    assert_eq!(s.working_dir, Some(PathBuf::from("srv/db")));
    assert_eq!(s.user, "postgres");
    let env: Vec<(&str, &str)> = s
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("PGPORT", "5433"),
            ("GREETING", "hello world"),
            ("EMPTY", "")
        ]
    );
    assert!(s.env_inherit && s.disabled && s.notify && !s.keyvalue_clear);
    assert_eq!(s.priority, -5);
    assert_eq!(s.pid_file, Some(PathBuf::from("run/db.pid")));
    assert_eq!(s.check_interval, secs(2));
    assert_eq!(s.on_exit, OnExit::Leave);
    assert_eq!(s.secret, "delegated-secret");
    assert_eq!((s.log_retention, s.log_max_size, s.history), (3, 4096, 7));
    let want = ServicePolicy {
        restart: RestartPolicy::Always,
        success_exit_codes: vec![0, 3, 143],
        restart_delay: secs(2),
        restart_delay_max: secs(300),
        backoff_reset: secs(600),
        start_retries: 0,
        ready: ReadyRule::Notify,
        start_seconds: secs(1),
        start_timeout: secs(60),
        max_runtime: Some(secs(86_400)),
        stop_signal: ServiceSignal::Int,
        stop_timeout: Duration::ZERO,
        ping_timeout: Some(secs(30)),
        notif_on_failed: vec!["ops".into(), "mail".into()],
        notif_on_fatal: vec!["ops".into()],
        notif_on_recover: vec!["mail".into()],
    };
    assert_eq!(s.policy, want);
}

#[test]
fn services_are_sorted_and_read_from_job_d_where_a_later_one_replaces_an_earlier() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[service \"zeta\"]\ncommand = exec z\n\
         [service \"alpha\"]\ncommand = exec a\npriority = 1\n",
    );
    let job_d = fx.etc(
        "job.d/10-alpha.conf",
        "[service \"alpha\"]\ncommand = exec a2\n[service \"mid\"]\ncommand = exec m\n",
    );
    let config = fx.load_ok();
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["alpha", "mid", "zeta"]);
    let alpha = service(&config, "alpha");
    assert_eq!((alpha.file.as_path(), alpha.line), (job_d.as_path(), 1));
    assert_eq!(alpha.command, "exec a2");
    assert_eq!(alpha.priority, 100, "not the earlier definition's priority");
}

#[test]
fn command_must_be_written_exactly_once() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[service \"none\"]\ndescription = x\n\
         [service \"two\"]\ncommand = exec a\ncommand = exec b\ncommand = exec c\n\
         [service \"empty\"]\ncommand =\n",
    );
    let errors = fx.load_err();
    assert_eq!(
        messages(&errors.errors),
        [
            at(
                &fx,
                4,
                "service \"none\" has no command: add a line such as \
                 command = exec my-server --foreground"
            ),
            at(
                &fx,
                8,
                "service \"two\" has a second command (lines 7 and 8): a service runs \
                 exactly one command; put what must run before it in pre_start, or join \
                 the commands with &&"
            ),
            at(
                &fx,
                9,
                "service \"two\" has a second command (lines 7 and 9): a service runs \
                 exactly one command; put what must run before it in pre_start, or join \
                 the commands with &&"
            ),
            at(&fx, 11, "service \"empty\" has an empty command"),
        ]
    );
}

#[test]
fn unknown_words_are_errors_that_list_the_accepted_ones() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[service \"s\"]\ncommand = exec s\nrestart = sometimes\nready = soon\n\
         on_exit = linger\nstop_signal = SIGSTOP\n",
    );
    let errors = fx.load_err();
    assert_eq!(
        messages(&errors.errors),
        [
            at(
                &fx,
                6,
                "restart = \"sometimes\" is invalid: expected always, on-failure or never"
            ),
            at(
                &fx,
                7,
                "ready = \"soon\" is invalid: expected delay, notify or ping"
            ),
            at(
                &fx,
                8,
                "on_exit = \"linger\" is invalid: expected stop or leave"
            ),
            at(
                &fx,
                9,
                "stop_signal = \"SIGSTOP\" is invalid: expected TERM, INT, HUP, QUIT, USR1, \
                 USR2 or KILL (with or without SIG)"
            ),
        ]
    );
}

#[test]
fn bad_values_are_errors_naming_file_and_line() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[service \"s\"]\ncommand = exec s\nrestart_delay = -1s\nstop_timeout = 10\n\
         start_retries = -1\nlog_max_size = 4095\non_exit = leave\n\
         success_exit_codes = 0, 256\nsuccess_exit_codes = -1\nstart_timeout = 0s\n\
         check_interval = -5s\npriority = high\nlog_retention = 0\nhistory = -1\n\
         max_runtime = -1h\nping_timeout = soon\n",
    );
    let errors = fx.load_err();
    assert_eq!(
        messages(&errors.errors),
        [
            at(
                &fx,
                6,
                "restart_delay = \"-1s\" is invalid: it must not be negative"
            ),
            at(
                &fx,
                7,
                "stop_timeout = \"10\" is invalid: expected a duration such as 30s, 5m or 1h30m"
            ),
            at(
                &fx,
                8,
                "start_retries = \"-1\" is invalid: it must not be negative"
            ),
            at(
                &fx,
                9,
                "log_max_size = \"4095\" is invalid: it must be at least 4096 bytes"
            ),
            at(
                &fx,
                10,
                "service \"s\" has on_exit = leave but no pid_file: karajo can only leave \
                 running, and adopt at its next start, a service it finds through a pid file"
            ),
            at(
                &fx,
                11,
                "success_exit_codes = \"0, 256\" is invalid: \"256\" is not an exit code \
                 from 0 to 255"
            ),
            at(
                &fx,
                12,
                "success_exit_codes = \"-1\" is invalid: \"-1\" is not an exit code from 0 \
                 to 255"
            ),
            at(
                &fx,
                13,
                "start_timeout = \"0s\" is invalid: it must be greater than zero"
            ),
            at(
                &fx,
                14,
                "check_interval = \"-5s\" is invalid: it must be greater than zero"
            ),
            at(
                &fx,
                15,
                "priority = \"high\" is invalid: expected an integer"
            ),
            at(
                &fx,
                16,
                "log_retention = \"0\" is invalid: it must be greater than zero"
            ),
            at(
                &fx,
                17,
                "history = \"-1\" is invalid: it must be greater than zero"
            ),
            at(
                &fx,
                18,
                "max_runtime = \"-1h\" is invalid: it must not be negative"
            ),
            at(
                &fx,
                19,
                "ping_timeout = \"soon\" is invalid: expected a duration such as 30s, 5m or \
                 1h30m"
            ),
        ]
    );
}

#[test]
fn malformed_env_lines_are_errors_that_never_show_the_value() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[service \"s\"]\ncommand = exec s\nenv = TOKEN-hunter2-no-equals\n\
         env = =hunter2-empty-name\nenv = \"  = hunter2-blank-name\"\n\
         secret = hunter2-secret;cut\nenv = A=hunter2-env#cut\n",
    );
    let errors = fx.load_err();
    let no_equals = "env of service \"s\" has no \"=\": expected env = KEY=VALUE \
                     (the value is not shown)";
    let empty_name = "env of service \"s\" has an empty name before \"=\": expected \
                      env = KEY=VALUE (the value is not shown)";
    assert_eq!(
        messages(&errors.errors),
        [
            at(&fx, 6, no_equals),
            at(&fx, 7, empty_name),
            at(&fx, 8, empty_name),
        ]
    );
    let cut = |key: &str| {
        format!(
            "the value of {key} was cut at an inline comment (# or ;); put the value in \
             double quotes to keep it whole"
        )
    };
    assert_eq!(
        messages(&errors.warnings),
        [at(&fx, 9, &cut("secret")), at(&fx, 10, &cut("env"))]
    );
    let everything = format!("{errors}{:?}", errors.warnings);
    assert!(!everything.contains("hunter2"), "{everything}");
}

#[test]
fn secrets_never_reach_debug_output() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[service \"s\"]\ncommand = exec s\nsecret = hunter2-secret\n\
         env = API_KEY=hunter2-env\n",
    );
    let config = fx.load_ok();
    let debug = format!("{:?}", config.services);
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("API_KEY"), "{debug}");
}

#[test]
fn service_ids_are_unique_per_kind_only() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[job \"web\"]\ncommand = true\n\
         [monitor \"web\"]\nperiod = 1h\nauth_kind = none\n\
         [service \"web\"]\ncommand = exec w\n\
         [service \"a b\"]\ncommand = exec a\n\
         [service \"A.B\"]\ncommand = exec b\n",
    );
    let errors = fx.load_err();
    let main = fx.main_file().display().to_string();
    assert_eq!(
        messages(&errors.errors),
        [at(
            &fx,
            11,
            &format!(
                "service \"a b\" has the same id \"a_b\" as service \"A.B\" ({main}:13); \
                 rename one of them"
            )
        )]
    );
    fx.main(
        "",
        "[job \"web\"]\ncommand = true\n\
         [monitor \"web\"]\nperiod = 1h\nauth_kind = none\n\
         [service \"web\"]\ncommand = exec w\n",
    );
    let config = fx.load_ok();
    assert_eq!(config.services[0].id, config.jobs[0].common.id);
    assert_eq!(config.services[0].id, config.monitors[0].id);
}

#[test]
fn keys_that_do_nothing_unknown_keys_and_unknown_notifs_warn() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[service \"notified\"]\ncommand = exec n\nready = notify\nstart_seconds = 5s\n\
         check_interval = 1s\nnotif_on_fatal = ghost\nrestart_dely = 2s\n\
         [service \"plain\"]\ncommand = exec p\nstart_timeout = 1m\nrestart = never\n\
         restart_delay = 1s\nstart_retries = 5\n\
         [service \"capped\"]\ncommand = exec c\nrestart_delay = 2m\n\
         [service \"pidfile\"]\ncommand = exec d\npid_file = d.pid\nstart_timeout = 1m\n\
         check_interval = 1s\n",
    );
    let config = fx.load_ok();
    assert_eq!(
        messages(&config.warnings),
        [
            at(
                &fx,
                7,
                "start_seconds is ignored because ready = notify (it only applies to \
                 ready = delay)"
            ),
            at(
                &fx,
                8,
                "check_interval is ignored because the service has no pid_file"
            ),
            at(
                &fx,
                9,
                "notif_on_fatal = \"ghost\": no [notif \"ghost\"] is defined"
            ),
            at(
                &fx,
                10,
                "unknown key \"restart_dely\" in [service], ignored; did you mean \
                 \"restart_delay\"?"
            ),
            at(
                &fx,
                13,
                "start_timeout is ignored because ready = delay and there is no pid_file \
                 (it applies to ready = notify or ping, and to a pid_file)"
            ),
            at(
                &fx,
                15,
                "restart_delay is ignored because restart = never (karajo never restarts \
                 this service)"
            ),
            at(
                &fx,
                16,
                "start_retries is ignored because restart = never (karajo never restarts \
                 this service)"
            ),
            at(
                &fx,
                19,
                "restart_delay (2m) is longer than restart_delay_max (1m), so every \
                 back-off lasts restart_delay_max"
            ),
        ]
    );
}

/// A service section read from `s.conf`, as [`build_service`] takes it.
fn definition(body: &str) -> Definition {
    let doc = ini::parse(&format!("[service \"s\"]\n{body}")).unwrap();
    Definition {
        name: "s".into(),
        fields: Fields::new(Path::new("s.conf"), &doc.sections[0]),
    }
}

#[test]
fn a_user_karajo_cannot_switch_to_is_a_warning_naming_the_line() {
    let def = definition("command = exec s\nuser = postgres\n");
    let alice = KarajoUser {
        uid: 1000,
        name: Some("alice".into()),
    };
    let mut problems = Problems::default();
    assert!(build_service(&def, &alice, &mut problems).is_some());
    assert!(problems.errors.is_empty());
    assert_eq!(
        messages(&problems.warnings),
        [
            "s.conf:3: service \"s\" has user = \"postgres\", but karajo runs as uid 1000 \
          (alice), not as root, so it cannot switch to that user: the service will not \
          start unless karajo runs as root or as \"postgres\""
        ]
    );

    let quiet = [
        (
            "user = postgres\n",
            KarajoUser {
                uid: 0,
                name: Some("root".into()),
            },
        ),
        ("user = alice\n", alice.clone()),
        ("user = 1000\n", alice.clone()),
        (
            "user = 1000\n",
            KarajoUser {
                uid: 1000,
                name: None,
            },
        ),
        ("user =\n", alice.clone()),
    ];
    for (user_line, karajo_user) in quiet {
        let def = definition(&format!("command = exec s\n{user_line}"));
        let mut problems = Problems::default();
        let spec = build_service(&def, &karajo_user, &mut problems).unwrap();
        assert!(
            problems.warnings.is_empty(),
            "{user_line:?} as {karajo_user:?}: {:?}",
            messages(&problems.warnings)
        );
        assert_eq!(spec.user, user_line.trim_start_matches("user =").trim());
    }
}

#[test]
fn karajo_s_user_name_is_found_in_passwd_by_uid() {
    let passwd = "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken\n\
                  alice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/:/bin/false\n";
    assert_eq!(name_in_passwd(passwd, 0).as_deref(), Some("root"));
    assert_eq!(name_in_passwd(passwd, 1000).as_deref(), Some("alice"));
    assert_eq!(name_in_passwd(passwd, 4242), None);
    assert_eq!(name_in_passwd("", 0), None);
}

#[test]
fn the_shutdown_budget_adds_job_grace_each_priority_group_and_the_notification_wait() {
    let fx = Fixture::new();
    fx.main(
        "",
        "[job \"quick\"]\ncommand = true\nkill_grace = 2s\n\
         [job \"slow\"]\ncommand = true\nkill_grace = 20s\n\
         [job.http \"ping\"]\nhttp_url = /x\n\
         [service \"db\"]\ncommand = exec db\npriority = 10\nstop_timeout = 30s\n\
         [service \"cache\"]\ncommand = exec c\npriority = 10\nstop_timeout = 5s\n\
         [service \"web\"]\ncommand = exec w\n\
         [service \"worker\"]\ncommand = exec w\nstop_timeout = 15s\n\
         [service \"left\"]\ncommand = exec l\npid_file = l.pid\non_exit = leave\n\
         priority = 500\nstop_timeout = 1h\n",
    );
    let config = fx.load_ok();
    let budget = ShutdownBudget::of(&config);
    assert_eq!(budget.job_grace, secs(20), "the longest kill_grace");
    assert_eq!(
        budget.service_groups,
        [(100, secs(15)), (10, secs(30))],
        "highest priority first, each group's longest stop_timeout, without on_exit = leave"
    );
    assert_eq!(budget.notification_wait, SHUTDOWN_NOTIFICATION_WAIT);
    assert_eq!(budget.total(), secs(20 + 15 + 30 + 5));

    fx.main("", "");
    let empty = ShutdownBudget::of(&fx.load_ok());
    assert_eq!(
        (empty.job_grace, empty.service_groups.len(), empty.total()),
        (Duration::ZERO, 0, secs(5))
    );
}
