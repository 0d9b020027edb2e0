//! `karajo sign`: prints the signature header line of a payload read from standard
//! input, so a shell user can call a web hook or the API with curl. It signs only; it
//! sends nothing.

use std::io::{Read, Write};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::CliError;
use crate::auth::sign_hmac_sha256;
use crate::auth::signature::{HEADER_GITHUB_SHA256, HEADER_KARAJO_SIGN};

/// The arguments of `karajo sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The secret: the job's `secret`, or the global one for the API calls.
    #[arg(long, env = "KARAJO_SECRET", hide_env_values = true)]
    pub secret: String,

    /// The kind of signature.
    #[arg(long, value_enum, default_value_t = SignKind::HmacSha256)]
    pub kind: SignKind,

    /// The header name to print [default: X-Karajo-Sign, or X-Hub-Signature-256 for
    /// github].
    #[arg(long)]
    pub header: Option<String>,
}

/// What `karajo sign` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignKind {
    /// `X-Karajo-Sign: <hex HMAC-SHA256>`.
    #[value(name = "hmac-sha256")]
    HmacSha256,
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`, as GitHub sends.
    Github,
}

/// The header line for `payload`, without a line end.
pub fn header_line(args: &SignArgs, payload: &[u8]) -> String {
    let hex = sign_hmac_sha256(args.secret.as_bytes(), payload);
    let (default_name, value) = match args.kind {
        SignKind::HmacSha256 => (HEADER_KARAJO_SIGN, hex),
        SignKind::Github => (HEADER_GITHUB_SHA256, format!("sha256={hex}")),
    };
    let name = args.header.as_deref().unwrap_or(default_name);
    format!("{name}: {value}")
}

/// Reads the payload from `input` (all of it, byte for byte) and prints its header line.
pub fn run(
    args: &SignArgs,
    input: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<ExitCode, CliError> {
    let mut payload = Vec::new();
    input
        .read_to_end(&mut payload)
        .map_err(|source| CliError::Io {
            what: "cannot read the payload from standard input",
            source,
        })?;
    writeln!(out, "{}", header_line(args, &payload)).map_err(CliError::output)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(kind: SignKind, header: Option<&str>) -> SignArgs {
        SignArgs {
            secret: "s3cret".into(),
            kind,
            header: header.map(str::to_string),
        }
    }

    #[test]
    fn signs_the_readme_vector() {
        let payload = br#"{"_karajo_epoch":1677350854}"#;
        let hex = "fef16cabebdcbdcc7fdbfb9bd5a01c00803af7568a05054e87b2239f84f38c54";
        assert_eq!(
            header_line(&args(SignKind::HmacSha256, None), payload),
            format!("X-Karajo-Sign: {hex}")
        );
        assert_eq!(
            header_line(&args(SignKind::HmacSha256, Some("X-Sign")), payload),
            format!("X-Sign: {hex}")
        );
        assert_eq!(
            header_line(&args(SignKind::Github, None), payload),
            format!("X-Hub-Signature-256: sha256={hex}")
        );
    }

    #[test]
    fn run_reads_all_input_and_prints_one_line() {
        let mut out = Vec::new();
        let mut input: &[u8] = b"";
        run(&args(SignKind::HmacSha256, None), &mut input, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            // Spec 5.2 vector 9: the empty payload.
            "X-Karajo-Sign: 91dfac70c5348b04e1babb8b421ac92cec08b565b49ca16130dccb72503647b7\n"
        );
    }
}
