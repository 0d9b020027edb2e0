//! Typed reading of one section's raw variables: strings, lists, booleans, integers,
//! Go durations, time zones and base64 keys, each refusing bad values with a
//! [`Diagnostic`] that names the file, the line, the key and the value. Also the
//! [`Problems`] collector that loading fills with errors and warnings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use jiff::SignedDuration;
use jiff::tz::TimeZone;

use super::duration;
use super::ini::{Section, Var};
use super::model::Diagnostic;

/// Errors and warnings collected while loading.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
}

impl Problems {
    pub(crate) fn error(&mut self, file: &Path, line: usize, message: impl Into<String>) {
        self.errors.push(diagnostic(file, line, message));
    }

    pub(crate) fn warn(&mut self, file: &Path, line: usize, message: impl Into<String>) {
        self.warnings.push(diagnostic(file, line, message));
    }
}

fn diagnostic(file: &Path, line: usize, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// A section's variables with the file they came from.
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    pub(crate) file: PathBuf,
    pub(crate) line: usize,
    pub(crate) vars: Vec<Var>,
}

impl Fields {
    pub(crate) fn new(file: &Path, section: &Section) -> Self {
        Self {
            file: file.to_path_buf(),
            line: section.line,
            vars: section.vars.clone(),
        }
    }

    /// Warns about keys not in `known` (offering the closest known key) and about
    /// values cut by an inline comment.
    pub(crate) fn check_keys(&self, what: &str, known: &[&str], problems: &mut Problems) {
        self.check_keys_hiding(what, known, &[], problems);
    }

    /// As [`Fields::check_keys`], but the warning about a cut value of a key in
    /// `hidden` (a secret, an environment value) does not quote the value.
    pub(crate) fn check_keys_hiding(
        &self,
        what: &str,
        known: &[&str],
        hidden: &[&str],
        problems: &mut Problems,
    ) {
        for var in &self.vars {
            if !known.contains(&var.key.as_str()) {
                let hint = match crate::suggest::closest(&var.key, known) {
                    Some(key) => format!("; did you mean {key:?}?"),
                    None => String::new(),
                };
                let message = format!("unknown key {:?} in {what}, ignored{hint}", var.key);
                problems.warn(&self.file, var.line, message);
            } else if var.cut_by_comment && hidden.contains(&var.key.as_str()) {
                problems.warn(&self.file, var.line, cut_message_hiding_value(var));
            } else if var.cut_by_comment {
                problems.warn(&self.file, var.line, cut_message(var));
            }
        }
    }

    /// Warns about every value cut by an inline comment, whatever its key.
    pub(crate) fn check_cut_values(&self, problems: &mut Problems) {
        for var in self.vars.iter().filter(|v| v.cut_by_comment) {
            problems.warn(&self.file, var.line, cut_message(var));
        }
    }

    /// The last occurrence of `key` (scalar keys: the last one wins).
    pub(crate) fn last(&self, key: &str) -> Option<&Var> {
        self.vars.iter().rev().find(|v| v.key == key)
    }

    /// The last value of `key`, or "" when absent.
    pub(crate) fn text(&self, key: &str) -> String {
        self.last(key).map(|v| v.value.clone()).unwrap_or_default()
    }

    /// The last non-empty value of `key`, or `default`.
    pub(crate) fn text_or(&self, key: &str, default: &str) -> String {
        match self.text(key) {
            value if value.is_empty() => default.to_string(),
            value => value,
        }
    }

    /// Every value of a repeatable `key`, in file order.
    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        self.all(key).map(|v| v.value.clone()).collect()
    }

    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Var> + 'a {
        self.vars.iter().filter(move |v| v.key == key)
    }

    /// A boolean: true for `true t ya yes 1` (any case) or a bare key; false for
    /// `false f no 0` and empty; anything else is false with a warning.
    pub(crate) fn boolean(&self, key: &str, problems: &mut Problems) -> bool {
        let Some(var) = self.last(key) else {
            return false;
        };
        if var.bare {
            return true;
        }
        match var.value.to_ascii_lowercase().as_str() {
            "true" | "t" | "ya" | "yes" | "1" => true,
            "false" | "f" | "no" | "0" | "" => false,
            _ => {
                let message = format!(
                    "{key} = {:?} is not a boolean (true/yes/1 or false/no/0), read as false",
                    var.value
                );
                problems.warn(&self.file, var.line, message);
                false
            }
        }
    }

    /// A boolean as [`Fields::boolean`] reads it, or `default` when the key is absent
    /// or its value is empty (for keys whose default is true).
    pub(crate) fn boolean_or(&self, key: &str, default: bool, problems: &mut Problems) -> bool {
        match self.last(key) {
            Some(var) if var.bare || !var.value.is_empty() => self.boolean(key, problems),
            _ => default,
        }
    }

    /// A base-10 integer; `None` when absent or empty, or (with an error) invalid.
    pub(crate) fn integer(&self, key: &str, problems: &mut Problems) -> Option<i64> {
        self.typed(key, problems, "an integer", |v| v.parse::<i64>().ok())
    }

    /// A Go duration that may be zero; `None` when absent or empty, or (with an error)
    /// invalid or negative.
    pub(crate) fn non_negative_duration(
        &self,
        key: &str,
        problems: &mut Problems,
    ) -> Option<Duration> {
        let value = self.duration(key, problems)?;
        let converted = Duration::try_from(value).ok();
        if converted.is_none()
            && let Some(var) = self.last(key)
        {
            let message = format!(
                "{key} = {:?} is invalid: it must not be negative",
                var.value
            );
            problems.error(&self.file, var.line, message);
        }
        converted
    }

    /// A Go duration; `None` when absent or empty, or (with an error) invalid.
    pub(crate) fn duration(&self, key: &str, problems: &mut Problems) -> Option<SignedDuration> {
        self.typed(key, problems, "a duration such as 30s, 5m or 1h30m", |v| {
            duration::parse(v).ok()
        })
    }

    /// An IANA time zone name; `None` when absent or empty, or (with an error) unknown.
    pub(crate) fn timezone(&self, key: &str, problems: &mut Problems) -> Option<TimeZone> {
        self.typed(
            key,
            problems,
            "a time zone name such as Asia/Jakarta",
            |v| TimeZone::get(v).ok(),
        )
    }

    /// A base64 Ed25519 public key; `None` when absent or empty, or (with an error)
    /// not 32 bytes of base64.
    pub(crate) fn key32(&self, key: &str, problems: &mut Problems) -> Option<[u8; 32]> {
        self.typed(key, problems, "32 bytes in base64", decode_key32)
    }

    /// Reads the last value of `key` with `convert`; reports an error naming `what`
    /// was expected when it returns `None`.
    pub(crate) fn typed<T>(
        &self,
        key: &str,
        problems: &mut Problems,
        what: &str,
        convert: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        let var = self.last(key).filter(|v| !v.value.is_empty())?;
        let converted = convert(&var.value);
        if converted.is_none() {
            let message = format!("{key} = {:?} is invalid: expected {what}", var.value);
            problems.error(&self.file, var.line, message);
        }
        converted
    }
}

/// The warning for a value cut by an inline comment.
pub(crate) fn cut_message(var: &Var) -> String {
    format!(
        "the value of {} was cut at an inline comment (# or ;) and is now {:?}; \
         put the value in double quotes to keep it whole",
        var.key, var.value
    )
}

/// The warning for a cut value that must not be shown (a secret).
fn cut_message_hiding_value(var: &Var) -> String {
    format!(
        "the value of {} was cut at an inline comment (# or ;); put the value in double \
         quotes to keep it whole",
        var.key
    )
}

/// Decodes a standard base64 text into exactly 32 bytes.
pub(crate) fn decode_key32(text: &str) -> Option<[u8; 32]> {
    let bytes = BASE64_STANDARD.decode(text).ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

/// A signed duration as a positive `std` duration; `None` when zero or negative.
pub(crate) fn positive(duration: SignedDuration) -> Option<Duration> {
    if duration.is_positive() {
        Duration::try_from(duration).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ini;

    fn fields(body: &str) -> Fields {
        let doc = ini::parse(&format!("[s]\n{body}")).unwrap();
        Fields::new(Path::new("f.conf"), &doc.sections[0])
    }

    #[test]
    fn booleans() {
        let f = fields("a = YES\nb = t\nc = ya\nd = 1\ne\nf = no\ng =\nh = maybe\n");
        let mut p = Problems::default();
        let got: Vec<bool> = ["a", "b", "c", "d", "e", "f", "g", "h", "missing"]
            .iter()
            .map(|k| f.boolean(k, &mut p))
            .collect();
        assert_eq!(
            got,
            [true, true, true, true, true, false, false, false, false]
        );
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.warnings[0].line, 9);
        assert!(p.warnings[0].message.contains("maybe"));
    }

    #[test]
    fn booleans_with_a_default_keep_it_when_absent_or_empty() {
        let f = fields("a = no\nb =\nc\nd = maybe\n");
        let mut p = Problems::default();
        let got: Vec<bool> = ["a", "b", "c", "d", "missing"]
            .iter()
            .map(|k| f.boolean_or(k, true, &mut p))
            .collect();
        assert_eq!(got, [false, true, true, false, true]);
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn invalid_typed_values_are_errors_with_key_and_value() {
        let f = fields("n = 12x\nd = 60\nz = Mars/Olympus\nk = abc\nok = 7\nempty =\n");
        let mut p = Problems::default();
        assert_eq!(f.integer("n", &mut p), None);
        assert_eq!(f.duration("d", &mut p), None);
        assert!(f.timezone("z", &mut p).is_none());
        assert_eq!(f.key32("k", &mut p), None);
        assert_eq!(f.integer("ok", &mut p), Some(7));
        assert_eq!(f.integer("empty", &mut p), None);
        let rendered: Vec<String> = p.errors.iter().map(ToString::to_string).collect();
        assert_eq!(rendered.len(), 4);
        assert!(rendered[0].starts_with("f.conf:2: n = \"12x\" is invalid"));
        assert!(rendered[1].starts_with("f.conf:3: d = \"60\" is invalid"));
        assert!(rendered[2].contains("Mars/Olympus"));
        assert!(rendered[3].starts_with("f.conf:5: k = \"abc\""));
    }

    #[test]
    fn non_negative_durations_take_zero_and_refuse_negatives() {
        let f = fields("zero = 0s\nsome = 1m30s\nneg = -1s\nbad = soon\nempty =\n");
        let mut p = Problems::default();
        let got: Vec<Option<Duration>> = ["zero", "some", "neg", "bad", "empty", "missing"]
            .iter()
            .map(|k| f.non_negative_duration(k, &mut p))
            .collect();
        let want = [
            Some(Duration::ZERO),
            Some(Duration::from_secs(90)),
            None,
            None,
            None,
            None,
        ];
        assert_eq!(got, want);
        let rendered: Vec<String> = p.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered[0],
            "f.conf:4: neg = \"-1s\" is invalid: it must not be negative"
        );
        assert!(rendered[1].starts_with("f.conf:5: bad = \"soon\" is invalid"));
        assert_eq!(rendered.len(), 2);
    }

    #[test]
    fn cut_values_of_hidden_keys_are_not_quoted() {
        let f = fields("secret = abc;def\nname = abc;def\n");
        let mut p = Problems::default();
        f.check_keys_hiding("[s]", &["secret", "name"], &["secret"], &mut p);
        let rendered: Vec<String> = p.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(rendered.len(), 2);
        assert!(!rendered[0].contains("abc"), "{}", rendered[0]);
        assert!(rendered[0].starts_with("f.conf:2: the value of secret was cut"));
        assert!(rendered[1].contains("\"abc\""), "{}", rendered[1]);
    }

    #[test]
    fn scalars_last_wins_lists_keep_order() {
        let f = fields("x = 1\nc = a\nx = 2\nc = b\n");
        assert_eq!(f.text("x"), "2");
        assert_eq!(f.list("c"), ["a", "b"]);
        assert_eq!(f.text_or("none", "dflt"), "dflt");
    }

    #[test]
    fn key_check_warns_unknown_and_cut() {
        let f = fields("command = cd /tmp; ls\ncolour = red\ndescription = x # note\ncomand = x\n");
        let mut p = Problems::default();
        f.check_keys("[job]", &["command", "description"], &mut p);
        let lines: Vec<usize> = p.warnings.iter().map(|d| d.line).collect();
        assert_eq!(lines, [2, 3, 5]);
        assert!(p.warnings[0].message.contains("double quotes"));
        assert_eq!(
            p.warnings[1].message,
            "unknown key \"colour\" in [job], ignored"
        );
        assert_eq!(
            p.warnings[2].message,
            "unknown key \"comand\" in [job], ignored; did you mean \"command\"?"
        );
    }
}
