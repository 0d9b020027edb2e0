//! The crontab translator behind `karajo import crontab`: turns the text of a crontab
//! (a user's, or the system format of `/etc/crontab` and `/etc/cron.d/*` with a user
//! field) into the text of one `job.d/*.conf` file, one `[job]` per cron line. It owns
//! cron's grammar (five fields or an `@` macro, environment lines, `%` in commands,
//! `\%`) and the quoting of karajo's INI dialect; it is pure: no file, no clock. The
//! caller reads the input, picks the default time zone and writes the result.
//!
//! What is kept: the schedule as written (names of months and days turned into numbers,
//! checked with karajo's own schedule parser), the time zone (`CRON_TZ`, else the one
//! given), the environment lines in effect at each line (exported in the command, as
//! karajo's commands inherit nothing), `SHELL` (the command is handed to it), `%`
//! (the text after the first unescaped `%` becomes the command's standard input).
//! `MAILTO` becomes a suggested `[notif]` section and commented `notif_on_*` lines.
//! A line that cannot be translated (`@reboot`, a schedule karajo refuses, a line that
//! is not cron) stays in the output as a comment that says why.

use std::fmt::Write as _;

use jiff::tz::TimeZone;

use crate::schedule::Schedule;

/// Which crontab format the input is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrontabFormat {
    /// `crontab -e`'s: five fields (or a macro), then the command.
    User,
    /// `/etc/crontab` and `/etc/cron.d/*`: five fields (or a macro), the user, then
    /// the command.
    System,
}

/// What the translation needs besides the text.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The input's format.
    pub format: CrontabFormat,
    /// The prefix of every job name (`crontab`, `php` for `/etc/cron.d/php`).
    pub prefix: String,
    /// Where the text came from, for the file's header comment.
    pub source: String,
    /// The time zone cron read the schedules in (the system's), as an IANA name;
    /// `None` when unknown: then the jobs use `[karajo] timezone` and say so.
    pub timezone: Option<String>,
}

/// The translated file and what happened to the lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// The text of the `job.d/*.conf` file.
    pub text: String,
    /// How many `[job]` sections it holds.
    pub jobs: usize,
    /// How many cron lines were kept as comments because they cannot be translated.
    pub untranslated: usize,
}

/// The environment cron had when it read one line.
#[derive(Debug, Clone, Default)]
struct Env {
    /// Exported to the command, in order (a later assignment replaces an earlier one).
    vars: Vec<(String, String)>,
    shell: Option<String>,
    cron_tz: Option<String>,
    /// The `[notif]` name suggested for the current `MAILTO`, when it is not empty.
    mail_notif: Option<String>,
}

impl Env {
    fn set(&mut self, name: &str, value: &str) {
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.to_string(), value.to_string()));
    }
}

/// Translates the crontab `input`.
pub fn translate(input: &str, options: &ImportOptions) -> Translation {
    let mut out = String::new();
    let mut env = Env::default();
    let mut jobs = 0;
    let mut untranslated = 0;
    let mut mailtos: Vec<String> = Vec::new();
    let _ = writeln!(
        out,
        "## Imported by `karajo import crontab` from {}.\n\
         ## One [job] per cron line; each cron line is repeated above its job. Lines that\n\
         ## could not be translated are kept as comments that start with \"## not imported\".\n\
         ## cron gave commands HOME, LOGNAME and SHELL; karajo gives only PATH and KARAJO_*\n\
         ## (plus the variables this crontab set), in $dir_base/var/lib/karajo/job/<id>/.",
        options.source
    );
    match &options.timezone {
        Some(zone) => {
            let _ = writeln!(out, "## Schedules are read in {zone}, as cron read them.");
        }
        None => {
            let _ = writeln!(
                out,
                "## cron read these schedules in the system's time zone, which is unknown\n\
                 ## here: they use [karajo] timezone. Add timezone = Area/City if it differs."
            );
        }
    }
    for (index, raw) in input.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim_start();
        if line.trim().is_empty() {
            out.push('\n');
            continue;
        }
        if line.starts_with('#') {
            let _ = writeln!(out, "{}", raw.trim_end());
            continue;
        }
        if let Some((name, value)) = env_assignment(line) {
            let _ = writeln!(out, "\n## line {line_no}: {}", raw.trim_end());
            note_env(&mut out, &mut env, &mut mailtos, name, &value);
            continue;
        }
        match translate_line(line, line_no, &env, options) {
            Ok(job) => {
                let _ = writeln!(out, "\n## line {line_no}: {}", raw.trim_end());
                out.push_str(&job);
                jobs += 1;
            }
            Err(reason) => {
                let _ = writeln!(
                    out,
                    "\n## not imported (line {line_no}): {reason}\n# {}",
                    raw.trim_end()
                );
                untranslated += 1;
            }
        }
    }
    Translation {
        text: out,
        jobs,
        untranslated,
    }
}

/// `NAME = value` (cron's environment line), with the value's matching quotes removed.
fn env_assignment(line: &str) -> Option<(&str, String)> {
    let name_len = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(line.len());
    let name = &line[..name_len];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let rest = line[name_len..].trim_start().strip_prefix('=')?;
    let value = rest.trim();
    let unquoted = [('"', '"'), ('\'', '\'')]
        .iter()
        .find_map(|(open, close)| {
            value
                .strip_prefix(*open)
                .and_then(|v| v.strip_suffix(*close))
        })
        .unwrap_or(value);
    Some((name, unquoted.to_string()))
}

/// Records an environment line and writes what it becomes.
fn note_env(out: &mut String, env: &mut Env, mailtos: &mut Vec<String>, name: &str, value: &str) {
    match name {
        "MAILTO" if value.is_empty() => {
            env.mail_notif = None;
            let _ = writeln!(
                out,
                "## MAILTO is empty: cron mailed nothing for the jobs below."
            );
        }
        "MAILTO" => {
            let notif = match mailtos.iter().position(|m| m == value) {
                Some(0) => "mailto".to_string(),
                Some(i) => format!("mailto_{}", i + 1),
                None => {
                    mailtos.push(value.to_string());
                    match mailtos.len() {
                        1 => "mailto".to_string(),
                        n => format!("mailto_{n}"),
                    }
                }
            };
            let _ = writeln!(
                out,
                "## cron mailed the output of the jobs below to {value}. karajo tells a\n\
                 ## [notif] section about a run instead; add one to karajo.conf, e.g.\n\
                 ##   [notif \"{notif}\"]\n\
                 ##   kind = email\n\
                 ##   smtp_server = smtp+starttls://mail.example.org\n\
                 ##   from = karajo@example.org"
            );
            for to in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let _ = writeln!(out, "##   to = {to}");
            }
            let _ = writeln!(
                out,
                "## and uncomment the notif_on_failed (or notif_on_success) lines below."
            );
            env.mail_notif = Some(notif);
        }
        "CRON_TZ" => match TimeZone::get(value) {
            Ok(_) => {
                let _ = writeln!(out, "## The schedules below are read in {value}.");
                env.cron_tz = Some(value.to_string());
            }
            Err(_) => {
                let _ = writeln!(
                    out,
                    "## not imported: CRON_TZ {value:?} is not a time zone known here; the\n\
                     ## schedules below keep the previous zone."
                );
            }
        },
        "SHELL" => {
            let _ = writeln!(
                out,
                "## The commands below are handed to {value} (karajo runs /bin/sh -c)."
            );
            env.shell = (value != "/bin/sh" && !value.is_empty()).then(|| value.to_string());
        }
        "MAILFROM" | "CONTENT_TYPE" | "CONTENT_TRANSFER_ENCODING" | "RANDOM_DELAY" => {
            let _ = writeln!(
                out,
                "## not imported: {name} is a setting of cron itself, which karajo has not."
            );
        }
        _ => {
            if name == "TZ" {
                let _ = writeln!(
                    out,
                    "## TZ is exported to the commands below; the schedules stay in their zone\n\
                     ## (as cron's: only CRON_TZ changes them)."
                );
            } else {
                let _ = writeln!(out, "## {name} is exported to the commands below.");
            }
            env.set(name, value);
        }
    }
}

/// The names cron accepts in the month and day-of-week fields.
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Splits off the first whitespace-separated word of `s`; the rest keeps its spacing
/// (minus the blanks right after the word).
fn split_word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    Some((&s[..end], s[end..].trim_start_matches([' ', '\t'])))
}

/// One cron line (not a comment, not an environment line) as a `[job]` section, or
/// why it cannot be one.
fn translate_line(
    line: &str,
    line_no: usize,
    env: &Env,
    options: &ImportOptions,
) -> Result<String, String> {
    let (schedule, rest) = if line.starts_with('@') {
        let Some((word, rest)) = split_word(line) else {
            return Err("an empty line".into());
        };
        let macro_name = word.to_ascii_lowercase();
        match macro_name.as_str() {
            "@reboot" => {
                return Err(
                    "@reboot: karajo has no run-once-at-start trigger; a [service] \
                     with restart = never in karajo.conf runs a command once at start"
                        .into(),
                );
            }
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => (macro_name, rest),
            _ => return Err(format!("{word} is not a cron macro")),
        }
    } else {
        let mut fields = Vec::with_capacity(5);
        let mut rest = line;
        for name in ["minute", "hour", "day of month", "month", "day of week"] {
            let Some((word, after)) = split_word(rest) else {
                return Err(format!(
                    "not a cron line: the {name} field is missing (a line has five time \
                     fields, or an @ macro, then {})",
                    what_follows(options.format)
                ));
            };
            fields.push(word);
            rest = after;
        }
        let fields: Vec<String> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| match i {
                3 => names_to_numbers(f, &MONTHS, 1),
                4 => names_to_numbers(f, &DAYS, 0),
                _ => f.to_string(),
            })
            .collect();
        (fields.join(" "), rest)
    };
    let (user, command) = match options.format {
        CrontabFormat::User => (None, rest),
        CrontabFormat::System => match split_word(rest) {
            Some((user, command)) => (Some(user), command),
            None => return Err("the user field and the command are missing".into()),
        },
    };
    let command = command.trim_end();
    if command.is_empty() {
        return Err("the command is missing".into());
    }
    let zone = env.cron_tz.as_deref().or(options.timezone.as_deref());
    let tz = match zone {
        Some(name) => TimeZone::get(name).map_err(|e| format!("time zone {name:?}: {e}"))?,
        None => TimeZone::UTC,
    };
    Schedule::parse(&schedule, tz)
        .map_err(|e| format!("karajo refuses the schedule {schedule:?}: {e}"))?;

    let mut job = String::new();
    if let Some(user) = user {
        let _ = writeln!(
            job,
            "## cron ran this as {user}; karajo runs every command as its own user."
        );
    }
    let name = format!("{}-{line_no}-{}", options.prefix, command_word(command));
    let _ = writeln!(job, "[job \"{name}\"]");
    let _ = writeln!(
        job,
        "description = {}",
        ini_quote(&format!("crontab line {line_no} of {}", options.source))
    );
    let _ = writeln!(job, "schedule = {}", ini_quote(&schedule));
    if let Some(zone) = zone {
        let _ = writeln!(job, "timezone = {zone}");
    }
    let _ = writeln!(job, "command = {}", ini_quote(&shell_command(command, env)));
    if let Some(notif) = &env.mail_notif {
        let _ = writeln!(
            job,
            "#notif_on_failed = {notif}\n#notif_on_success = {notif}"
        );
    }
    Ok(job)
}

fn what_follows(format: CrontabFormat) -> &'static str {
    match format {
        CrontabFormat::User => "the command",
        CrontabFormat::System => "the user and the command",
    }
}

/// Month or day names (`jan`, `Mon-Fri`) as cron's numbers; numbers and the other
/// characters are left as they are.
fn names_to_numbers(field: &str, names: &[&str], first: usize) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() {
            let lower = word.to_ascii_lowercase();
            match names
                .iter()
                .position(|n| lower.len() >= 3 && n == &&lower[..3])
            {
                Some(i) if lower.len() == 3 => out.push_str(&(i + first).to_string()),
                _ => out.push_str(word),
            }
            word.clear();
        }
    };
    for c in field.chars() {
        if c.is_ascii_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Shell words that come before a command.
const KEYWORDS: &[&str] = &[
    "(", "{", "!", "if", "then", "else", "elif", "do", "while", "until", "time",
];

/// Commands that only test or move around: the name comes from another part.
const UNNAMING: &[&str] = &[
    "cd", "test", "[", "[[", "true", "false", "sleep", "source", ".", "fi", "done", "}", ")",
];

/// Commands that run the command given after their options.
const WRAPPERS: &[&str] = &[
    "nice", "ionice", "sudo", "flock", "timeout", "env", "exec", "command", "nohup", "chronic",
];

/// The program a simple command (one part of a line between `&`, `;` and `|`) runs,
/// or `None` when it names nothing useful.
fn program_of(part: &str) -> Option<&str> {
    let words = part
        .split_whitespace()
        .map(|w| w.trim_start_matches(['(', '{']))
        .filter(|w| !w.is_empty())
        .skip_while(|w| KEYWORDS.contains(w) || (w.contains('=') && !w.starts_with('-')));
    let mut extra_positional = 0;
    for word in words {
        if word.starts_with(['>', '<', '$', '`']) || word.contains(['>', '<']) {
            return None;
        }
        if word.starts_with('-') {
            continue;
        }
        let base = word.rsplit('/').next().unwrap_or(word);
        if extra_positional > 0 {
            extra_positional -= 1;
            continue;
        }
        if UNNAMING.contains(&base) {
            return None;
        }
        if WRAPPERS.contains(&base) {
            // flock FILE COMMAND, timeout DURATION COMMAND.
            extra_positional = usize::from(matches!(base, "flock" | "timeout"));
            // nice -n 19: the 19 belongs to the option.
            continue;
        }
        if base.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        return Some(base);
    }
    None
}

/// A word for the job name: the base name of the first program of the line that
/// does more than test or change directory, letters, digits, `-` and `_` only, at
/// most 24 characters.
fn command_word(command: &str) -> String {
    let program = command.split(['&', ';', '|']).find_map(program_of);
    let program = program.unwrap_or("command");
    let word: String = program
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(24)
        .collect::<String>()
        .replace('.', "-");
    if word.is_empty() {
        "command".to_string()
    } else {
        word
    }
}

/// The `/bin/sh -c` text that does what cron did with `command` in `env`.
fn shell_command(command: &str, env: &Env) -> String {
    let (command, stdin) = split_percent(command);
    let mut body = match &env.shell {
        Some(shell) => {
            let run = format!("{} -c {}", shell_quote(shell), shell_quote(&command));
            match &stdin {
                Some(input) => format!("printf '%s' {} | {run}", shell_quote(input)),
                None => format!("exec {run}"),
            }
        }
        None => match &stdin {
            // The newlines keep a trailing `# comment` of the command from hiding `)`.
            Some(input) => format!("printf '%s' {} | (\n{command}\n)", shell_quote(input)),
            None => command,
        },
    };
    if !env.vars.is_empty() {
        let exports: Vec<String> = env
            .vars
            .iter()
            .map(|(name, value)| format!("export {name}={}", shell_quote(value)))
            .collect();
        body = format!("{}; {body}", exports.join("; "));
    }
    body
}

/// cron's `%`: the command is the text before the first unescaped `%`; the rest, with
/// every unescaped `%` turned into a newline and a newline added at its end when it
/// has none, is the standard input. `\%` stands for `%` in both.
fn split_percent(command: &str) -> (String, Option<String>) {
    fn push(before: &mut String, input: &mut Option<String>, c: char) {
        match input {
            Some(text) => text.push(c),
            None => before.push(c),
        }
    }
    let mut before = String::new();
    let mut input: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            // As cron: a backslash takes the next character out of `%` handling, and
            // only disappears before `%`.
            '\\' => match chars.next() {
                Some('%') => push(&mut before, &mut input, '%'),
                Some(next) => {
                    push(&mut before, &mut input, '\\');
                    push(&mut before, &mut input, next);
                }
                None => push(&mut before, &mut input, '\\'),
            },
            '%' => match input.as_mut() {
                Some(text) => text.push('\n'),
                None => input = Some(String::new()),
            },
            _ => push(&mut before, &mut input, c),
        }
    }
    let input = input.map(|mut text| {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text
    });
    (before, input)
}

/// `'text'` for the shell, with `'` written as `'\''`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A value for karajo's INI reader that reads back exactly as `text`: in double
/// quotes (so `#`, `;` and runs of blanks are kept), with `\` and `"` escaped and
/// newlines, tabs and backspaces written as `\n`, `\t` and `\b`.
pub fn ini_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            '\t' => out.push_str(r"\t"),
            '\u{8}' => out.push_str(r"\b"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(format: CrontabFormat) -> ImportOptions {
        ImportOptions {
            format,
            prefix: "tab".into(),
            source: "a test".into(),
            timezone: Some("UTC".into()),
        }
    }

    /// The `command` value of the first job of `tab`, read back by karajo's INI reader.
    fn command_of(tab: &str) -> String {
        let t = translate(tab, &options(CrontabFormat::User));
        let doc = crate::config::ini::parse(&t.text).unwrap();
        let job = doc.sections.iter().find(|s| s.name == "job").unwrap();
        job.vars
            .iter()
            .find(|v| v.key == "command")
            .unwrap()
            .value
            .clone()
    }

    #[test]
    fn ini_quoting_reads_back_exactly() {
        for text in [
            "plain",
            "cd /tmp; ls # not a comment",
            "two  spaces\tand a tab",
            r#"quote " and back\slash \n literal"#,
            "line\nbreak",
            "  leading and trailing  ",
            "",
        ] {
            let doc = crate::config::ini::parse(&format!("[s]\nk = {}\n", ini_quote(text)))
                .unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(doc.sections[0].vars[0].value, text);
        }
    }

    #[test]
    fn percent_signs_split_off_standard_input_as_cron_does() {
        let split = |s: &str| split_percent(s);
        assert_eq!(split("date"), ("date".into(), None));
        assert_eq!(split("cat%a%b"), ("cat".into(), Some("a\nb\n".into())));
        assert_eq!(split("cat%a%"), ("cat".into(), Some("a\n".into())));
        assert_eq!(split("cat%"), ("cat".into(), Some(String::new())));
        assert_eq!(split(r"date +\%F"), ("date +%F".into(), None));
        assert_eq!(split(r"cat%50\%"), ("cat".into(), Some("50%\n".into())));
        assert_eq!(split(r"echo \n"), (r"echo \n".into(), None));
        assert_eq!(split(r"a \\%b"), (r"a \\".into(), Some("b\n".into())));
    }

    #[test]
    fn month_and_day_names_become_numbers() {
        assert_eq!(names_to_numbers("jan,JUL", &MONTHS, 1), "1,7");
        assert_eq!(names_to_numbers("mon-fri", &DAYS, 0), "1-5");
        assert_eq!(names_to_numbers("*/2", &DAYS, 0), "*/2");
        assert_eq!(names_to_numbers("sunday", &DAYS, 0), "sunday");
    }

    #[test]
    fn environment_lines_are_recognised_and_unquoted() {
        assert_eq!(env_assignment("A=b"), Some(("A", "b".into())));
        assert_eq!(env_assignment("A = 'b c' "), Some(("A", "b c".into())));
        assert_eq!(
            env_assignment("MAILTO=\"\""),
            Some(("MAILTO", String::new()))
        );
        assert_eq!(env_assignment("0 * * * * a=b"), None);
        assert_eq!(env_assignment("@daily x=1"), None);
        assert_eq!(env_assignment("*/5 * * * * echo"), None);
    }

    #[test]
    fn commands_carry_environment_shell_and_input() {
        assert_eq!(command_of("0 0 * * * echo a;b # c\n"), "echo a;b # c");
        assert_eq!(
            command_of("X=1\nY = it's\n0 0 * * * echo $X\n"),
            r"export X='1'; export Y='it'\''s'; echo $X"
        );
        assert_eq!(
            command_of("0 0 * * * mail -s hi root%Hello%Bye\n"),
            "printf '%s' 'Hello\nBye\n' | (\nmail -s hi root\n)"
        );
        assert_eq!(
            command_of("SHELL=/bin/bash\n0 0 * * * echo ${BASH_VERSION}\n"),
            "exec '/bin/bash' -c 'echo ${BASH_VERSION}'"
        );
    }

    #[test]
    fn system_lines_name_their_user_and_untranslatable_lines_say_why() {
        let t = translate(
            "SHELL=/bin/sh\n17 * * * * root cd / && run-parts /etc/cron.hourly\n\
             @reboot root /usr/bin/start\n1 2 3 4\n0 0 * * *   \n",
            &options(CrontabFormat::System),
        );
        assert_eq!((t.jobs, t.untranslated), (1, 3), "{}", t.text);
        assert!(t.text.contains(
            "## cron ran this as root; karajo runs every command as its own user.\n\
             [job \"tab-2-run-parts\"]\n"
        ));
        assert!(t.text.contains("## not imported (line 3): @reboot"));
        assert!(t.text.contains("# @reboot root /usr/bin/start\n"));
        assert!(
            t.text
                .contains("## not imported (line 4): not a cron line: the day of week field")
        );
        assert!(
            t.text
                .contains("## not imported (line 5): the user field and the command are missing")
        );
    }

    #[test]
    fn job_names_come_from_the_program() {
        for (command, word) in [
            ("cd / && run-parts --report /etc/cron.hourly", "run-parts"),
            (
                "test -x /usr/sbin/anacron || { cd / && run-parts x; }",
                "run-parts",
            ),
            (
                "[ -x /usr/lib/php/sessionclean ] && /usr/lib/php/sessionclean",
                "sessionclean",
            ),
            ("SERVICE_MODE=1 /sbin/e2scrub_all -A -r", "e2scrub_all"),
            (
                "nice -n 19 ionice -c3 /usr/local/bin/backup --full",
                "backup",
            ),
            ("/usr/bin/flock -n /tmp/l /usr/local/bin/sync.sh", "sync-sh"),
            ("true", "command"),
        ] {
            assert_eq!(command_word(command), word, "{command}");
        }
    }
}
