//! The shell fast path: a command with no shell syntax at all is run as its program,
//! directly, instead of through `/bin/sh -c`. It owns the classification (GNU make's
//! rule for its own fast path, made stricter) and the lookup of the program; it does
//! not spawn anything. A command it is not sure of, or whose program it cannot find as
//! an executable file, goes to the shell, which then behaves, and fails, exactly as it
//! always did: a missing program gets the shell's own `not found` line and status 127.
//!
//! What the shell would have done for such a command, and the direct run does too: the
//! same argument words, the same environment plus the `PWD` the shell exports (the
//! physical working directory), the same working directory, process group, output and
//! exit status (the shell `exec`s the last simple command of `-c`, so even a signal
//! ends it the same way).

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Words that only the shell can mean, or that its builtins do differently from the
/// program of the same name (`echo` interprets escapes in dash, `pwd` is logical,
/// `true --help` prints help as a program): keywords, special and regular builtins of
/// dash and bash, and GNU make's list.
const SHELL_WORDS: &[&str] = &[
    "!",
    ".",
    ":",
    "[",
    "[[",
    "]]",
    "{",
    "}",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "case",
    "cd",
    "chdir",
    "command",
    "compgen",
    "complete",
    "continue",
    "coproc",
    "declare",
    "dirs",
    "disown",
    "do",
    "done",
    "echo",
    "elif",
    "else",
    "enable",
    "esac",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "fi",
    "for",
    "function",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "in",
    "jobs",
    "kill",
    "let",
    "local",
    "login",
    "logout",
    "mapfile",
    "newgrp",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "select",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "then",
    "time",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "until",
    "wait",
    "while",
];

/// Whether `b` may appear in a command run without the shell. Everything else (quotes,
/// `$`, globs, redirections, operators, backslashes, `#`, `~`, tabs, newlines,
/// non-ASCII bytes) sends the command to the shell.
fn plain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b' ' | b'-' | b'_' | b'.' | b'/' | b',' | b':' | b'+' | b'@' | b'%' | b'='
        )
}

/// The words of `command` when it has no shell syntax at all and its first word is
/// not one the shell treats specially (nor a variable assignment); `None` otherwise.
pub(crate) fn plain_words(command: &str) -> Option<Vec<&str>> {
    if !command.bytes().all(plain_byte) {
        return None;
    }
    let words: Vec<&str> = command.split(' ').filter(|w| !w.is_empty()).collect();
    let first = *words.first()?;
    if first.contains('=') || SHELL_WORDS.contains(&first) {
        return None;
    }
    Some(words)
}

/// A command to run without the shell: the program's path, its `argv[0]` (the word
/// as written, as the shell passes it) and the other arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Direct {
    pub(crate) program: PathBuf,
    pub(crate) arg0: String,
    pub(crate) args: Vec<String>,
}

/// How `command` runs without the shell, or `None` when it needs the shell (shell
/// syntax, or a program that is not an executable regular file where the shell would
/// look for it: the shell then reports it). `path` is the `PATH` of the command's
/// environment; `work_dir` its working directory, which a relative program name with
/// a `/` is relative to.
pub(crate) fn direct(command: &str, path: Option<&str>, work_dir: &Path) -> Option<Direct> {
    let words = plain_words(command)?;
    let (first, rest) = words.split_first()?;
    let program = if first.contains('/') {
        let p = Path::new(first);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            work_dir.join(p)
        };
        executable(&p).then_some(p)?
    } else {
        // The shell's search: the first executable regular file along PATH; an empty
        // entry is the working directory.
        path?.split(':').find_map(|dir| {
            let p = if dir.is_empty() {
                work_dir.join(first)
            } else {
                Path::new(dir).join(first)
            };
            executable(&p).then_some(p)
        })?
    };
    Some(Direct {
        program,
        arg0: (*first).to_string(),
        args: rest.iter().map(|w| (*w).to_string()).collect(),
    })
}

/// Whether `path` is a regular file (after symbolic links) this process may execute.
fn executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        && rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok()
}

/// The `PWD` the shell exports for `work_dir`: its physical path.
pub(crate) fn shell_pwd(work_dir: &Path) -> OsString {
    std::fs::canonicalize(work_dir)
        .unwrap_or_else(|_| work_dir.to_path_buf())
        .into_os_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_with_shell_syntax_go_to_the_shell() {
        let shell = [
            "",
            "   ",
            "date +%s%N >> file",
            "date > file",
            "cat < file",
            "a | b",
            "a || b",
            "a && b",
            "a; b",
            "a & b",
            "sleep 1 &",
            "echo hi",
            "echo",
            "ls 'a b'",
            "ls \"a b\"",
            "ls a\\ b",
            "ls $HOME",
            "ls ${HOME}",
            "ls `pwd`",
            "ls $(pwd)",
            "ls *",
            "ls a?",
            "ls [ab]",
            "ls {a,b}",
            "ls ~",
            "ls ~/x",
            "ls # comment",
            "ls\tx",
            "ls\nx",
            "ls\rx",
            "(ls)",
            "{ ls; }",
            "! ls",
            "ls !x",
            "FOO=bar ls",
            "A=1",
            "cd /tmp",
            "export A",
            "exit 3",
            ". ./x.sh",
            "source x.sh",
            "eval ls",
            "exec ls",
            "set -e",
            "ulimit -n",
            "umask 077",
            "true",
            "false",
            "pwd",
            "kill 1",
            "printf x",
            "test -f x",
            "[ -f x ]",
            "read x",
            "wait",
            "trap x INT",
            "type ls",
            "command ls",
            "if true",
            "for x in a",
            "while x",
            "case x in",
            "time ls",
            "ls \u{e9}",
            "ls ^x",
            "ls a=b;",
        ];
        for command in shell {
            assert_eq!(plain_words(command), None, "{command:?}");
        }
    }

    #[test]
    fn commands_without_shell_syntax_are_split_into_words() {
        let plain: &[(&str, &[&str])] = &[
            ("date", &["date"]),
            ("date +%s", &["date", "+%s"]),
            ("  sleep   1  ", &["sleep", "1"]),
            (
                "dd if=/dev/zero of=out bs=1k count=1",
                &["dd", "if=/dev/zero", "of=out", "bs=1k", "count=1"],
            ),
            (
                "./script.sh --flag=1 a,b user@host:path",
                &["./script.sh", "--flag=1", "a,b", "user@host:path"],
            ),
            ("/usr/bin/env", &["/usr/bin/env"]),
            (
                "git pull -q origin main",
                &["git", "pull", "-q", "origin", "main"],
            ),
            ("echo2 x", &["echo2", "x"]),
        ];
        for (command, words) in plain {
            assert_eq!(plain_words(command).as_deref(), Some(*words), "{command:?}");
        }
    }

    #[test]
    fn the_program_is_found_along_path_or_left_to_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = bin.join("data");
        std::fs::write(&data, "x").unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::create_dir(bin.join("subdir")).unwrap();
        let path = format!("/nonexistent:{}", bin.display());

        let found = direct("tool a b", Some(&path), dir.path()).unwrap();
        assert_eq!(found.program, tool);
        assert_eq!(found.arg0, "tool");
        assert_eq!(found.args, ["a", "b"]);
        // Relative to the working directory when the word has a slash.
        let found = direct("bin/tool", Some("/nonexistent"), dir.path()).unwrap();
        assert_eq!(found.program, dir.path().join("bin/tool"));
        assert_eq!(found.arg0, "bin/tool");
        // Missing, not executable, a directory, no PATH: the shell's business.
        for command in ["nosuch", "data", "subdir", "bin/data", "./nosuch"] {
            assert_eq!(direct(command, Some(&path), dir.path()), None, "{command}");
        }
        assert_eq!(direct("tool", None, dir.path()), None);
        assert_eq!(direct("tool > x", Some(&path), dir.path()), None);
    }
}
