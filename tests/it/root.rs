//! The start-up warning of a karajo that runs as root with commands that would run
//! as root too: the binary is started as a process and its log must name the job.
//! Run as another user the daemon says nothing, and this test says it is skipped.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

#[test]
fn running_as_root_with_commands_is_warned_about() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED running_as_root_with_commands_is_warned_about: not running as root");
        return;
    }
    let port = crate::process::free_port();
    let dir = TestDir::new(&format!(
        "listen_address = 127.0.0.1:{port}\n\n[job \"nightly backup\"]\npath = /b\ncommand = true\n"
    ));
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("karajo"))
        .arg("-config")
        .arg(dir.config_file())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains("karajo runs as root") => break Some(line),
            Ok(line) if line.contains("listening") => {
                seen.push(line);
                break None;
            }
            Ok(line) => seen.push(line),
            Err(_) if Instant::now() > deadline => break None,
            Err(_) => {}
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = found.unwrap_or_else(|| panic!("no warning before listening:\n{}", seen.join("\n")));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("the commands of job \"nightly backup\" (command jobs have no user key)"),
        "{line}"
    );
}
