//! `karajo hash-password`: makes the bcrypt hash `user.conf` wants for a web UI user.
//! The password is read without echo from the terminal (asked twice), or as one line
//! from standard input when that is not a terminal, so `echo s3cret | karajo
//! hash-password` works in scripts. Standard output is the hash alone, so
//! `$(karajo hash-password)` works too; the prompts and the `user.conf` lines to add go
//! to standard error. The password is trimmed, as the login form trims it.

use std::io::{self, BufRead, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::process::ExitCode;

use rustix::termios::{LocalModes, OptionalActions, Termios, isatty, tcgetattr, tcsetattr};

use super::CliError;

/// The bcrypt cost when `--cost` is not given.
pub const DEFAULT_COST: u32 = 10;

/// bcrypt uses the first 72 bytes of a password only.
const MAX_PASSWORD_BYTES: usize = 72;

/// The arguments of `hash-password`.
#[derive(Debug, clap::Args)]
pub struct HashPasswordArgs {
    /// The bcrypt cost (4 to 31); each step doubles the time to hash and to check.
    #[arg(long, default_value_t = DEFAULT_COST, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub cost: u32,
    /// The user name shown in the `[user "NAME"]` line to add to user.conf.
    #[arg(long, default_value = "NAME")]
    pub user: String,
}

/// Reads the password from the process's standard input (the terminal without echo,
/// or one line), prints its hash to `out` and the user.conf hint to standard error.
pub fn run(args: &HashPasswordArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let stdin = io::stdin();
    let password = if isatty(&stdin) {
        let first = read_hidden(&stdin, "Password: ")?;
        let again = read_hidden(&stdin, "Repeat the password: ")?;
        if first.trim() != again.trim() {
            return Err(CliError::Usage("the passwords do not match".into()));
        }
        first
    } else {
        read_line(&mut stdin.lock())?
    };
    let hash = hash(&password, args.cost)?;
    writeln!(out, "{hash}").map_err(CliError::output)?;
    eprintln!(
        "add to user.conf:\n[user \"{}\"]\npassword = {hash}",
        args.user
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads a password: from the terminal without echo after `prompt`, or one line from
/// standard input when it is not a terminal.
pub fn ask(prompt: &str) -> Result<String, CliError> {
    let stdin = io::stdin();
    if isatty(&stdin) {
        read_hidden(&stdin, prompt)
    } else {
        read_line(&mut stdin.lock())
    }
}

/// The bcrypt hash of `password` (trimmed) at `cost`. Refuses an empty password and
/// one longer than bcrypt can use.
pub fn hash(password: &str, cost: u32) -> Result<String, CliError> {
    let password = password.trim();
    if password.is_empty() {
        return Err(CliError::Usage(
            "empty password: nothing to hash (give it on standard input or at the prompt)".into(),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(CliError::Usage(format!(
            "the password is longer than {MAX_PASSWORD_BYTES} bytes, which bcrypt cannot use"
        )));
    }
    bcrypt::hash(password, cost).map_err(|e| CliError::Usage(format!("cannot hash: {e}")))
}

/// One line of `input`, without its line ending; empty at end of input.
pub fn read_line(input: &mut dyn BufRead) -> Result<String, CliError> {
    let mut line = String::new();
    input.read_line(&mut line).map_err(|source| CliError::Io {
        what: "cannot read the password from standard input",
        source,
    })?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).to_string())
}

/// Prompts on standard error and reads one line from the terminal `stdin` with echo
/// turned off (restored afterwards, even on error).
fn read_hidden(stdin: &io::Stdin, prompt: &str) -> Result<String, CliError> {
    let terminal = |source| CliError::Io {
        what: "cannot turn off the terminal's echo",
        source,
    };
    eprint!("{prompt}");
    let _ = io::stderr().flush();
    let line = {
        let _echo_off = EchoOff::new(stdin.as_fd()).map_err(|e| terminal(e.into()))?;
        read_line(&mut stdin.lock())
    };
    eprintln!();
    line
}

/// The terminal with echo off until dropped.
struct EchoOff<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> EchoOff<'a> {
    fn new(fd: BorrowedFd<'a>) -> rustix::io::Result<Self> {
        let saved = tcgetattr(fd)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(fd, OptionalActions::Now, &quiet)?;
        Ok(Self { fd, saved })
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, OptionalActions::Now, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_loses_its_ending_only() {
        let line = |s: &str| read_line(&mut s.as_bytes()).unwrap();
        assert_eq!(line("s3cret\n"), "s3cret");
        assert_eq!(line("s3cret\r\nnext\n"), "s3cret");
        assert_eq!(line(" a b "), " a b ");
        assert_eq!(line(""), "");
    }

    #[test]
    fn the_hash_verifies_and_empty_or_long_passwords_are_refused() {
        let hash = hash("  s3cret \n", 4).unwrap();
        assert!(hash.starts_with("$2b$04$"), "{hash}");
        assert!(bcrypt::verify("s3cret", &hash).unwrap());
        assert!(matches!(hash_err(" \t"), CliError::Usage(m) if m.contains("empty password")));
        let long = "x".repeat(73);
        assert!(matches!(hash_err(&long), CliError::Usage(m) if m.contains("72 bytes")));
        assert!(super::hash(&"x".repeat(72), 4).is_ok());
    }

    fn hash_err(password: &str) -> CliError {
        match hash(password, 4) {
            Ok(h) => panic!("hashed {password:?}: {h}"),
            Err(e) => e,
        }
    }
}
