//! The reader for karajo's INI dialect: git-config syntax as implemented by pakakeh
//! `lib/ini` (spec 2.1). It turns text into an ordered [`Document`] of sections and
//! raw string variables, with line numbers, and knows nothing about karajo's keys.
//! Comments start with `#` or `;` anywhere outside double quotes, double quotes are
//! removed, unquoted whitespace collapses, and only `\\ \" \n \t \b` escapes exist.

use thiserror::Error;

/// A parsed INI file: its sections in file order. Repeated headers stay separate
/// sections; merging or replacing them is the caller's business.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// The sections in the order they appear.
    pub sections: Vec<Section>,
}

/// One `[name]` or `[name "sub"]` header and the variables below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The section name, lower-cased (`job`, `job.http`, `karajo`).
    pub name: String,
    /// The subsection as written (case-sensitive), escapes resolved.
    pub sub: Option<String>,
    /// The 1-based line of the header.
    pub line: usize,
    /// The variables in file order; repeated keys all stay.
    pub vars: Vec<Var>,
}

/// One `key = value` line (possibly continued over several lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    /// The key, lower-cased.
    pub key: String,
    /// The value: trimmed, quotes removed, escapes resolved, whitespace collapsed.
    /// A bare key (no `=`) has the empty string.
    pub value: String,
    /// The 1-based line of the key.
    pub line: usize,
    /// The key had no `=` at all (`is_development` alone): read as `true` by bools.
    pub bare: bool,
    /// An inline comment cut the value in a way that looks accidental: the comment
    /// character directly followed a non-blank character (`cd /tmp; ls`), or the key
    /// is `command` and a comment followed value text.
    pub cut_by_comment: bool,
}

/// Why a file is not valid INI; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// The line where the problem was found.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// The kinds of INI syntax errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    /// A `[...]` header that does not follow the section syntax.
    #[error("invalid section header: {0}")]
    InvalidSection(&'static str),
    /// Something after the closing `]` that is not a comment.
    #[error("unexpected text after section header")]
    TextAfterSection,
    /// A variable line before the first section header.
    #[error("key = value line before any [section] header")]
    VarOutsideSection,
    /// A key with characters other than letters, digits, `-`, `.`, `_`, or not
    /// starting with a letter, or followed by something other than `=`.
    #[error(
        "not a key = value line: a key starts with a letter and holds only letters, digits, -, . and _"
    )]
    InvalidKey,
    /// A backslash escape other than `\\ \" \n \t \b` or line continuation.
    #[error("invalid escape \"\\{0}\" in value (only \\\\ \\\" \\n \\t \\b are allowed)")]
    InvalidEscape(char),
    /// A double quote that is never closed.
    #[error("a double quote in the value is never closed")]
    UnterminatedQuote,
}

/// Parses INI text into a [`Document`]; the first syntax error is the answer. Use
/// [`parse_all`] to hear about every error.
pub fn parse(text: &str) -> Result<Document, ParseError> {
    let parsed = parse_all(text);
    match parsed.errors.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(parsed.document),
    }
}

/// A document read past its syntax errors, and those errors in line order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// What could be read: every valid section with its valid variables.
    pub document: Document,
    /// Every syntax error, in line order (empty when the text is valid).
    pub errors: Vec<ParseError>,
}

/// Where the variables being read go.
enum Target {
    /// Into the last section of the document.
    Section,
    /// Nowhere: before the first header, or below a header that is not valid. They are
    /// still read, so their own syntax errors are reported.
    Nowhere,
}

/// Parses INI text, going on after each syntax error where the reader can find its
/// footing again, so that one pass reports them all:
/// * a header that is not valid is reported and the variables below it, up to the next
///   header, are checked but dropped (text after a valid `]` keeps the section);
/// * variables before the first header are reported once and dropped;
/// * a line with an invalid key is reported and dropped; reading goes on at the next
///   line;
/// * an invalid escape is reported and kept as written (`\d` stays `\d`), and an
///   unterminated quote is reported and the value kept, so the checks that follow do
///   not report a missing value on top.
pub fn parse_all(text: &str) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut parsed = Parsed::default();
    let mut target = Target::Nowhere;
    let mut reported_outside = false;
    let mut index = 0;
    while index < lines.len() {
        let line_no = index + 1;
        let line = lines[index].trim_start();
        index += 1;
        if line.is_empty() || starts_comment(line) {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            target = read_header(rest, line_no, &mut parsed);
            // A bad header is its own error: what follows it is not "outside".
            reported_outside = true;
            continue;
        }
        if matches!(target, Target::Nowhere) && !reported_outside {
            parsed.errors.push(ParseError {
                line: line_no,
                kind: ParseErrorKind::VarOutsideSection,
            });
            reported_outside = true;
        }
        let (var, consumed) = parse_var(line, &lines[index..], line_no, &mut parsed.errors);
        index += consumed;
        if let (Some(var), Target::Section) = (var, &target)
            && let Some(section) = parsed.document.sections.last_mut()
        {
            section.vars.push(var);
        }
    }
    parsed
}

/// Reads a header line (after `[`): a valid one opens a section, text after its `]`
/// is an error that keeps it, any other error opens nothing.
fn read_header(rest: &str, line: usize, parsed: &mut Parsed) -> Target {
    let (name, sub) = match parse_header(rest) {
        Ok((name, sub, tail_ok)) => {
            if !tail_ok {
                parsed.errors.push(ParseError {
                    line,
                    kind: ParseErrorKind::TextAfterSection,
                });
            }
            (name, sub)
        }
        Err(kind) => {
            parsed.errors.push(ParseError { line, kind });
            return Target::Nowhere;
        }
    };
    parsed.document.sections.push(Section {
        name,
        sub,
        line,
        vars: Vec::new(),
    });
    Target::Section
}

fn starts_comment(s: &str) -> bool {
    s.starts_with('#') || s.starts_with(';')
}

fn is_comment_char(c: char) -> bool {
    c == '#' || c == ';'
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Parses what follows `[` on a header line: the name, the subsection, and whether
/// only blanks or a comment follow the `]`.
fn parse_header(rest: &str) -> Result<(String, Option<String>, bool), ParseErrorKind> {
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or(rest.len());
    let name = &rest[..name_len];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(ParseErrorKind::InvalidSection(
            "the name must start with a letter",
        ));
    }
    let after_name = &rest[name_len..];
    let (sub, after) = if after_name.starts_with(is_blank) {
        let quoted = after_name.trim_start_matches(is_blank);
        let Some(inner) = quoted.strip_prefix('"') else {
            return Err(ParseErrorKind::InvalidSection(
                "the subsection must be in double quotes",
            ));
        };
        let (sub, after) = parse_subsection(inner)?;
        (Some(sub), after)
    } else {
        (None, after_name)
    };
    let Some(tail) = after.strip_prefix(']') else {
        return Err(ParseErrorKind::InvalidSection("missing closing ]"));
    };
    let tail = tail.trim_start_matches(is_blank);
    let tail_ok = tail.is_empty() || starts_comment(tail);
    Ok((name.to_ascii_lowercase(), sub, tail_ok))
}

/// Reads a subsection up to its closing quote; returns it and the text after the quote.
fn parse_subsection(inner: &str) -> Result<(String, &str), ParseErrorKind> {
    let mut sub = String::new();
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((sub, &inner[i + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) => sub.push(escaped),
                None => break,
            },
            _ => sub.push(c),
        }
    }
    Err(ParseErrorKind::InvalidSection(
        "the subsection has no closing quote",
    ))
}

/// Parses a variable starting on `line`; `following` are the lines after it, used for
/// backslash continuation. Returns the variable (`None` when its key is invalid) and
/// how many following lines it used; syntax errors go to `errors`.
fn parse_var(
    line: &str,
    following: &[&str],
    line_no: usize,
    errors: &mut Vec<ParseError>,
) -> (Option<Var>, usize) {
    let invalid_key = |errors: &mut Vec<ParseError>| {
        errors.push(ParseError {
            line: line_no,
            kind: ParseErrorKind::InvalidKey,
        });
        (None, 0)
    };
    let key_len = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
        .unwrap_or(line.len());
    let key = &line[..key_len];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return invalid_key(errors);
    }
    let key = key.to_ascii_lowercase();
    let after_key = line[key_len..].trim_start_matches(is_blank);
    let mut var = Var {
        key,
        value: String::new(),
        line: line_no,
        bare: false,
        cut_by_comment: false,
    };
    if after_key.is_empty() || starts_comment(after_key) {
        var.bare = true;
        return (Some(var), 0);
    }
    let Some(raw_value) = after_key.strip_prefix('=') else {
        return invalid_key(errors);
    };
    let mut reader = ValueReader::new(var.key == "command");
    let consumed = reader.read(raw_value, following, line_no, errors);
    var.value = reader.out;
    var.cut_by_comment = reader.cut_by_comment;
    (Some(var), consumed)
}

/// The state machine that reads a value, possibly over continued lines.
struct ValueReader {
    out: String,
    quoted: bool,
    pending_space: bool,
    is_command: bool,
    cut_by_comment: bool,
}

/// What ended one physical line of a value.
enum LineEnd {
    Value,
    Continued,
}

impl ValueReader {
    fn new(is_command: bool) -> Self {
        Self {
            out: String::new(),
            quoted: false,
            pending_space: false,
            is_command,
            cut_by_comment: false,
        }
    }

    /// Reads `first` and as many `following` lines as backslash continuations ask
    /// for; returns the number of following lines used. Errors go to `errors`.
    fn read(
        &mut self,
        first: &str,
        following: &[&str],
        line_no: usize,
        errors: &mut Vec<ParseError>,
    ) -> usize {
        let mut current = first;
        let mut used = 0;
        loop {
            let line = line_no + used;
            let (end, bad_escape) = self.read_line(current);
            if let Some(c) = bad_escape {
                errors.push(ParseError {
                    line,
                    kind: ParseErrorKind::InvalidEscape(c),
                });
            }
            match end {
                LineEnd::Value => break,
                LineEnd::Continued => match following.get(used) {
                    Some(next) => {
                        current = next;
                        used += 1;
                    }
                    None => break,
                },
            }
        }
        if self.quoted {
            errors.push(ParseError {
                line: line_no + used,
                kind: ParseErrorKind::UnterminatedQuote,
            });
        }
        used
    }

    /// Reads one physical line; also returns the first invalid escape on it (kept as
    /// written in the value).
    fn read_line(&mut self, text: &str) -> (LineEnd, Option<char>) {
        let mut chars = text.chars().peekable();
        let mut previous: Option<char> = None;
        let mut bad_escape = None;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    None => return (LineEnd::Continued, bad_escape),
                    Some(escaped) => match unescape(escaped) {
                        Some(literal) => self.push_literal(literal),
                        None => {
                            bad_escape = bad_escape.or(Some(escaped));
                            self.push_literal('\\');
                            self.push_literal(escaped);
                        }
                    },
                },
                '"' => {
                    self.flush_space();
                    self.quoted = !self.quoted;
                }
                _ if self.quoted => self.out.push(c),
                _ if is_blank(c) => self.pending_space = !self.out.is_empty(),
                _ if is_comment_char(c) => {
                    self.note_comment(previous);
                    return (LineEnd::Value, bad_escape);
                }
                _ => self.push_literal(c),
            }
            previous = Some(c);
        }
        (LineEnd::Value, bad_escape)
    }

    fn note_comment(&mut self, previous: Option<char>) {
        let follows_text = previous.is_some_and(|p| !is_blank(p));
        if !self.out.is_empty() && (follows_text || self.is_command) {
            self.cut_by_comment = true;
        }
    }

    fn flush_space(&mut self) {
        if self.pending_space && !self.out.is_empty() {
            self.out.push(' ');
        }
        self.pending_space = false;
    }

    fn push_literal(&mut self, c: char) {
        self.flush_space();
        self.out.push(c);
    }
}

/// The character an escape stands for; `None` for an escape that does not exist.
fn unescape(c: char) -> Option<char> {
    match c {
        '\\' | '"' => Some(c),
        'n' => Some('\n'),
        't' => Some('\t'),
        'b' => Some('\u{8}'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_value(value_line: &str) -> Var {
        let doc = parse(&format!("[s]\n{value_line}\n")).unwrap();
        doc.sections[0].vars[0].clone()
    }

    fn value(value_line: &str) -> String {
        one_value(value_line).value
    }

    fn error_of(text: &str) -> ParseError {
        parse(text).unwrap_err()
    }

    #[test]
    fn sections_and_subsections() {
        let doc = parse("[Karajo]\n[Job \"My Job\"]\n[job.http \"a\\\"b\\\\c\\xd\"]\n").unwrap();
        let got: Vec<_> = doc
            .sections
            .iter()
            .map(|s| (s.name.as_str(), s.sub.as_deref(), s.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("karajo", None, 1),
                ("job", Some("My Job"), 2),
                ("job.http", Some("a\"b\\cxd"), 3),
            ]
        );
    }

    #[test]
    fn subsection_may_hold_brackets() {
        let doc = parse("[job \"a]b\"]\ncommand = x\n").unwrap();
        assert_eq!(doc.sections[0].sub.as_deref(), Some("a]b"));
        assert_eq!(doc.sections[0].vars[0].value, "x");
    }

    #[test]
    fn text_after_header_must_be_blank_or_comment() {
        assert!(parse("[a] # fine\n[b]   ; fine\n[c]  \n").is_ok());
        assert_eq!(
            error_of("[a]\n[b] junk\n"),
            ParseError {
                line: 2,
                kind: ParseErrorKind::TextAfterSection
            }
        );
    }

    #[test]
    fn bad_section_headers() {
        for text in [
            "[1a]", "[]", "[a b]", "[a \"x]", "[a", "[a_b]", "[a \"x\"", "[ a]",
        ] {
            let err = error_of(text);
            assert_eq!(err.line, 1, "{text}");
        }
    }

    #[test]
    fn keys_are_lowercased_and_checked() {
        let doc = parse("[s]\nMAX_Job-Running.x = 2\n").unwrap();
        assert_eq!(doc.sections[0].vars[0].key, "max_job-running.x");
        for bad in [
            "[s]\n1key = x",
            "[s]\n_key = x",
            "[s]\nke y = x",
            "[s]\nkey: x",
        ] {
            assert_eq!(error_of(bad).kind, ParseErrorKind::InvalidKey, "{bad}");
        }
    }

    #[test]
    fn bare_key_is_empty_and_marked() {
        let doc = parse("[s]\nflag\nother # c\nset =\n").unwrap();
        let vars = &doc.sections[0].vars;
        assert_eq!((vars[0].value.as_str(), vars[0].bare), ("", true));
        assert_eq!((vars[1].value.as_str(), vars[1].bare), ("", true));
        assert_eq!((vars[2].value.as_str(), vars[2].bare), ("", false));
    }

    #[test]
    fn key_before_section_is_an_error() {
        assert_eq!(
            error_of("# c\n\nkey = v\n[s]\n"),
            ParseError {
                line: 3,
                kind: ParseErrorKind::VarOutsideSection
            }
        );
    }

    #[test]
    fn comment_lines_and_blank_lines_are_skipped() {
        let doc = parse("# top\n; top\n[s] \n  # indented\n\n a = 1\n").unwrap();
        assert_eq!(doc.sections[0].vars.len(), 1);
        assert_eq!(doc.sections[0].vars[0].line, 6);
    }

    #[test]
    fn inline_comments_cut_values() {
        assert_eq!(value("command = cd /tmp; ls"), "cd /tmp");
        assert_eq!(
            value("command = echo \"hi   there\" ; echo x"),
            "echo hi   there"
        );
        assert_eq!(value("x = echo a#b"), "echo a");
        assert_eq!(value("x = s3cret ; comment"), "s3cret");
        assert_eq!(value("x = \"a ; b # c\""), "a ; b # c");
    }

    #[test]
    fn accidental_cuts_are_flagged() {
        assert!(one_value("command = cd /tmp; ls").cut_by_comment);
        assert!(one_value("x = echo a#b").cut_by_comment);
        assert!(one_value("command = echo \"hi\" ; echo x").cut_by_comment);
        assert!(one_value("x = \"quoted\";c").cut_by_comment);
        assert!(!one_value("x = s3cret ; comment").cut_by_comment);
        assert!(!one_value("x = # only comment").cut_by_comment);
        assert!(!one_value("command = ;nothing").cut_by_comment);
        assert!(!one_value("command = \"a;b\"").cut_by_comment);
    }

    #[test]
    fn whitespace_is_trimmed_and_collapsed() {
        assert_eq!(value("x =    a  \t b   "), "a b");
        assert_eq!(value("x = a \"  b  \" c"), "a   b   c");
        assert_eq!(value("x=a"), "a");
        assert_eq!(value("x = \"  lead\""), "  lead");
    }

    #[test]
    fn quotes_are_removed_anywhere() {
        assert_eq!(value("command = echo \"Test job\""), "echo Test job");
        assert_eq!(value("x = \"whole value\""), "whole value");
        assert_eq!(value("x = a\"b\"c"), "abc");
    }

    #[test]
    fn escapes() {
        assert_eq!(value(r#"x = a\\b \"q\" \n\t\b"#), "a\\b \"q\" \n\t\u{8}");
        assert_eq!(value(r#"x = "in \"quotes\" \\""#), "in \"quotes\" \\");
        assert_eq!(value(r"x = printf 'a\tb\n'"), "printf 'a\tb\n'");
    }

    #[test]
    fn unknown_escape_is_an_error() {
        assert_eq!(
            error_of("[s]\ncommand = grep -E \"\\d+\"\n"),
            ParseError {
                line: 2,
                kind: ParseErrorKind::InvalidEscape('d')
            }
        );
        assert_eq!(
            error_of("[s]\nx = grep '\\.conf$'\n").kind,
            ParseErrorKind::InvalidEscape('.')
        );
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert_eq!(
            error_of("[s]\n\nx = \"abc\n"),
            ParseError {
                line: 3,
                kind: ParseErrorKind::UnterminatedQuote
            }
        );
    }

    #[test]
    fn continuation_joins_and_collapses() {
        let doc = parse(
            "[s]\ndescription = The job to test ... \\\n   if its <i>success</i>.\nnext = 1\n",
        )
        .unwrap();
        let vars = &doc.sections[0].vars;
        assert_eq!(vars[0].value, "The job to test ... if its <i>success</i>.");
        assert_eq!(vars[0].line, 2);
        assert_eq!((vars[1].key.as_str(), vars[1].line), ("next", 4));
        assert_eq!(value("x = likes \\\n if"), "likes if");
        assert_eq!(value("x = ab\\\ncd"), "abcd");
    }

    #[test]
    fn continuation_inside_quotes_keeps_spaces() {
        assert_eq!(value("x = \"a \\\n  b\""), "a   b");
    }

    #[test]
    fn errors_in_continued_lines_carry_their_line() {
        assert_eq!(error_of("[s]\nx = a \\\n b \\q\n").line, 3);
    }

    #[test]
    fn repeated_keys_and_sections_stay_in_order() {
        let doc = parse("[s]\nc = 1\nc = 2\n[s]\nc = 3\n").unwrap();
        assert_eq!(doc.sections.len(), 2);
        let values: Vec<_> = doc.sections[0]
            .vars
            .iter()
            .map(|v| v.value.as_str())
            .collect();
        assert_eq!(values, ["1", "2"]);
    }

    #[test]
    fn crlf_line_endings() {
        let doc = parse("[s]\r\nx = a b \r\n").unwrap();
        assert_eq!(doc.sections[0].vars[0].value, "a b");
    }

    fn all_errors(text: &str) -> Vec<(usize, ParseErrorKind)> {
        parse_all(text)
            .errors
            .into_iter()
            .map(|e| (e.line, e.kind))
            .collect()
    }

    #[test]
    fn every_error_is_reported_in_one_pass() {
        let text = "orphan = 1\nother = 2\n[s]\na = grep \"\\d+\"\n1bad = x\nb = ok\n\
                    [job \"x\"\nc = lost\n[t] junk\nd = \"open\n[u]\ne = \\q \\w\n";
        assert_eq!(
            all_errors(text),
            [
                (1, ParseErrorKind::VarOutsideSection),
                (4, ParseErrorKind::InvalidEscape('d')),
                (5, ParseErrorKind::InvalidKey),
                (7, ParseErrorKind::InvalidSection("missing closing ]")),
                (9, ParseErrorKind::TextAfterSection),
                (10, ParseErrorKind::UnterminatedQuote),
                (12, ParseErrorKind::InvalidEscape('q')),
            ]
        );
        let doc = parse_all(text).document;
        let got: Vec<(&str, Vec<(&str, &str)>)> = doc
            .sections
            .iter()
            .map(|s| {
                let vars = s
                    .vars
                    .iter()
                    .map(|v| (v.key.as_str(), v.value.as_str()))
                    .collect();
                (s.name.as_str(), vars)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("s", vec![("a", "grep \\d+"), ("b", "ok")]),
                ("t", vec![("d", "open")]),
                ("u", vec![("e", "\\q \\w")]),
            ]
        );
        // parse() answers with the first of them.
        assert_eq!(error_of(text).line, 1);
    }

    #[test]
    fn variables_below_a_bad_header_are_checked_but_dropped() {
        let parsed = parse_all("[a\nx = \\z\n[b]\ny = 1\n");
        let lines: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 2]);
        assert_eq!(parsed.document.sections.len(), 1);
        assert_eq!(parsed.document.sections[0].name, "b");
    }

    proptest::proptest! {
        #[test]
        fn parse_all_never_panics_and_keeps_errors_in_line_order(
            text in "([\\[\\]\"\\\\;#= \ta-zA-Z0-9.\\-_\n]|\\\\\n){0,200}"
        ) {
            let parsed = parse_all(&text);
            let lines: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
            let mut sorted = lines.clone();
            sorted.sort_unstable();
            proptest::prop_assert_eq!(&lines, &sorted);
            let line_count = text.split('\n').count();
            proptest::prop_assert!(lines.iter().all(|&l| l >= 1 && l <= line_count));
            proptest::prop_assert_eq!(parse(&text).err(), parsed.errors.first().cloned());
        }

        #[test]
        fn a_bad_line_hides_nothing_else(
            keys in proptest::collection::vec("[a-z]{1,6}", 1..8),
            at in 0usize..8,
            bad in proptest::sample::select(vec!["1bad = x", "x = \\q", "x = \"open"]),
        ) {
            // Each key on its own line below one header; one line (a comment in the
            // reference text) is broken in the other.
            let mut lines: Vec<String> = vec!["[s]".into()];
            lines.extend(keys.iter().map(|k| format!("{k} = v")));
            let at = 1 + at % lines.len().max(1);
            lines.insert(at, "# placeholder".into());
            let reference = parse(&lines.join("\n")).unwrap();
            lines[at] = bad.to_string();
            let parsed = parse_all(&lines.join("\n"));
            proptest::prop_assert_eq!(parsed.errors.len(), 1);
            proptest::prop_assert_eq!(parsed.errors[0].line, at + 1);
            let mut kept = parsed.document.sections[0].vars.clone();
            kept.retain(|v| v.line != at + 1);
            proptest::prop_assert_eq!(&kept, &reference.sections[0].vars);
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let _ = parse(&text);
        }

        #[test]
        fn parse_never_panics_on_ini_like_text(
            text in "([\\[\\]\"\\\\;#= \ta-zA-Z0-9.\\-_\n\r]|\\\\\n){0,200}"
        ) {
            let _ = parse(&text);
        }

        #[test]
        fn escaped_quoted_values_round_trip(raw in "[ -~]{0,40}") {
            let escaped = raw.replace('\\', "\\\\").replace('"', "\\\"");
            let doc = parse(&format!("[s]\nx = \"{escaped}\"\n")).unwrap();
            proptest::prop_assert_eq!(&doc.sections[0].vars[0].value, &raw);
        }
    }
}
