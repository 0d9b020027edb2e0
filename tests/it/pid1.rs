//! karajo as PID 1, as a container's entry point runs it: the binary started as the
//! first process of a new PID namespace (`unshare --pid --fork`, which needs root;
//! without it the test says it is skipped and why). A job leaves processes behind in
//! their own sessions (`setsid`), which the kernel hands to PID 1 when their parent
//! exits: once they end, none may stay a zombie. SIGTERM sent to PID 1 must reach the
//! daemon, which stops cleanly, and PID 1 must exit with its code.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::helpers::*;

/// Why this machine cannot run the test, if it cannot.
fn cannot_unshare() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not running as root".into());
    }
    match Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "unshare --pid --fork fails here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(err) => Some(format!("unshare cannot be run: {err}")),
    }
}

/// The children of `pid` with their state letter (`S`, `R`, `Z`, ...) and command.
fn children(pid: u32) -> Vec<(u32, char, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat[stat.find('(').unwrap_or(0) + 1..close].to_string();
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: u32 = rest.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        if ppid == pid {
            found.push((child, state, comm));
        }
    }
    found
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn answers(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /karajo/api/environment HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// Kills `unshare` (and with `--kill-child`, the whole namespace) when the test ends,
/// passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn as_pid_1_karajo_reaps_orphans_and_passes_sigterm_on() {
    if let Some(why) = cannot_unshare() {
        eprintln!("SKIPPED as_pid_1_karajo_reaps_orphans_and_passes_sigterm_on: {why}");
        return;
    }
    let port = crate::process::free_port();
    // The orphans wait for this file, so the test sees them before they end; the job
    // waits until each has left the job's process group (which karajo stops when the
    // job's shell exits) and marked itself ready.
    let go_dir = tempfile::tempdir().unwrap();
    let go = go_dir.path().join("go");
    let dir = TestDir::new(&format!(
        "listen_address = 127.0.0.1:{port}\n\n\
         [job \"orphans\"]\n\
         interval = 1h\n\
         command = \"for i in 1 2 3; do setsid sh -c 'touch {marks}/ready.$$; \
         while [ ! -e {go} ]; do sleep 0.05; done' </dev/null >/dev/null 2>&1 & done; \
         until [ $(ls {marks} | grep -c ready) -ge 3 ]; do sleep 0.05; done\"\n",
        marks = go_dir.path().display(),
        go = go.display()
    ));
    let unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child"])
        .arg(assert_cmd::cargo::cargo_bin!("karajo"))
        .arg("-config")
        .arg(dir.config_file())
        .env_remove(karajo::init::NO_INIT_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut unshare = KillOnDrop(unshare);
    // PID 1 of the namespace is unshare's only child.
    let mut init = 0;
    wait_until("PID 1 of the new namespace", || {
        init = children(unshare.0.id()).first().map_or(0, |c| c.0);
        init != 0
    });
    wait_until("the daemon to answer", || answers(port));
    // The daemon is PID 1's child, not PID 1 itself.
    let daemon: Vec<_> = children(init)
        .into_iter()
        .filter(|c| c.2 == "karajo")
        .collect();
    assert_eq!(daemon.len(), 1, "{:?}", children(init));
    let log = dir.log_dir("orphans").join("orphans.1.success");
    wait_until("the job's run", || log.exists());
    // The waiting shells were handed to PID 1 when the job's shell ended ...
    wait_until("the orphans to reach PID 1", || {
        children(init).iter().filter(|c| c.2 == "sh").count() == 3
    });
    // ... and once they end, none stays a zombie.
    std::fs::write(&go, "").unwrap();
    wait_until("the orphans to be reaped", || {
        children(init).iter().all(|c| c.2 != "sh")
    });
    let left = children(init);
    assert!(left.iter().all(|c| c.1 != 'Z'), "zombies: {left:?}");
    assert_eq!(left.len(), 1, "{left:?}");

    kill_process(Pid::from_raw(init as i32).unwrap(), Signal::TERM).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = unshare.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "PID 1 did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(!Path::new(&format!("/proc/{init}")).exists());
}
