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
    #[error("variable outside of any section")]
    VarOutsideSection,
    /// A key with characters other than letters, digits, `-`, `.`, `_`, or not
    /// starting with a letter, or followed by something other than `=`.
    #[error("invalid variable name")]
    InvalidKey,
    /// A backslash escape other than `\\ \" \n \t \b` or line continuation.
    #[error("invalid escape \"\\{0}\" in value (only \\\\ \\\" \\n \\t \\b are allowed)")]
    InvalidEscape(char),
    /// A double quote that is never closed.
    #[error("unterminated double quote in value")]
    UnterminatedQuote,
}

/// Parses INI text into a [`Document`]. The first syntax error stops parsing.
pub fn parse(text: &str) -> Result<Document, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut doc = Document::default();
    let mut index = 0;
    while index < lines.len() {
        let line_no = index + 1;
        let line = lines[index].trim_start();
        index += 1;
        if line.is_empty() || starts_comment(line) {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let (name, sub) = parse_header(rest).map_err(|kind| ParseError {
                line: line_no,
                kind,
            })?;
            doc.sections.push(Section {
                name,
                sub,
                line: line_no,
                vars: Vec::new(),
            });
            continue;
        }
        let Some(section) = doc.sections.last_mut() else {
            return Err(ParseError {
                line: line_no,
                kind: ParseErrorKind::VarOutsideSection,
            });
        };
        let (var, consumed) = parse_var(line, &lines[index..], line_no)?;
        index += consumed;
        section.vars.push(var);
    }
    Ok(doc)
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

/// Parses what follows `[` on a header line.
fn parse_header(rest: &str) -> Result<(String, Option<String>), ParseErrorKind> {
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
    if !tail.is_empty() && !starts_comment(tail) {
        return Err(ParseErrorKind::TextAfterSection);
    }
    Ok((name.to_ascii_lowercase(), sub))
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
/// backslash continuation. Returns the variable and how many following lines it used.
fn parse_var(line: &str, following: &[&str], line_no: usize) -> Result<(Var, usize), ParseError> {
    let err = |kind| ParseError {
        line: line_no,
        kind,
    };
    let key_len = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
        .unwrap_or(line.len());
    let key = &line[..key_len];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(err(ParseErrorKind::InvalidKey));
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
        return Ok((var, 0));
    }
    let Some(raw_value) = after_key.strip_prefix('=') else {
        return Err(err(ParseErrorKind::InvalidKey));
    };
    let mut reader = ValueReader::new(var.key == "command");
    let consumed = reader.read(raw_value, following, line_no)?;
    var.value = reader.out;
    var.cut_by_comment = reader.cut_by_comment;
    Ok((var, consumed))
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
    /// for; returns the number of following lines used.
    fn read(
        &mut self,
        first: &str,
        following: &[&str],
        line_no: usize,
    ) -> Result<usize, ParseError> {
        let mut current = first;
        let mut used = 0;
        loop {
            let line = line_no + used;
            match self
                .read_line(current)
                .map_err(|kind| ParseError { line, kind })?
            {
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
            return Err(ParseError {
                line: line_no + used,
                kind: ParseErrorKind::UnterminatedQuote,
            });
        }
        Ok(used)
    }

    fn read_line(&mut self, text: &str) -> Result<LineEnd, ParseErrorKind> {
        let mut chars = text.chars().peekable();
        let mut previous: Option<char> = None;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    None => return Ok(LineEnd::Continued),
                    Some(escaped) => self.push_literal(unescape(escaped)?),
                },
                '"' => {
                    self.flush_space();
                    self.quoted = !self.quoted;
                }
                _ if self.quoted => self.out.push(c),
                _ if is_blank(c) => self.pending_space = !self.out.is_empty(),
                _ if is_comment_char(c) => {
                    self.note_comment(previous);
                    return Ok(LineEnd::Value);
                }
                _ => self.push_literal(c),
            }
            previous = Some(c);
        }
        Ok(LineEnd::Value)
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

fn unescape(c: char) -> Result<char, ParseErrorKind> {
    match c {
        '\\' | '"' => Ok(c),
        'n' => Ok('\n'),
        't' => Ok('\t'),
        'b' => Ok('\u{8}'),
        other => Err(ParseErrorKind::InvalidEscape(other)),
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
