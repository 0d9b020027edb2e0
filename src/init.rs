//! karajo as PID 1 (the entry point of a container without `--init`). Process 1 has
//! two duties no other process has: the kernel gives it every orphan to reap, and it
//! gets no default action for SIGTERM and SIGINT. karajo's run loop reaps only the
//! children it spawned (tokio waits for each by its pid), so a job that leaves a
//! process behind in its own session (`setsid`, a daemon that double-forks) would leave
//! a zombie each time once that process ends. This module owns that case: when karajo
//! is about to serve as PID 1, the process stays a minimal init, in the way of tini,
//! and starts the real daemon as its only child with the same arguments; it forwards
//! SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to it, reaps every child that
//! ends (`waitpid(-1)`), and exits with the daemon's exit code (128 + the signal when
//! a signal ended it). It starts nothing else and reads no configuration. Setting
//! `KARAJO_NO_INIT=1` turns it off (when an init such as tini or `docker run --init`
//! is already PID 1, karajo is not PID 1 and this does not apply).

use std::process::ExitCode;

use rustix::process::{Pid, Signal, WaitOptions, getpid, kill_process, wait};
use tokio::signal::unix::{SignalKind, signal};

/// The environment variable that keeps karajo from acting as init when PID 1.
pub const NO_INIT_ENV: &str = "KARAJO_NO_INIT";

/// The signals passed on to the daemon.
const FORWARDED: [(SignalKind, Signal); 6] = [
    (SignalKind::terminate(), Signal::TERM),
    (SignalKind::interrupt(), Signal::INT),
    (SignalKind::hangup(), Signal::HUP),
    (SignalKind::quit(), Signal::QUIT),
    (SignalKind::user_defined1(), Signal::USR1),
    (SignalKind::user_defined2(), Signal::USR2),
];

/// Whether this process should act as init: it is PID 1 and `KARAJO_NO_INIT` is not
/// set to a non-empty value.
pub fn wanted() -> bool {
    getpid().is_init() && std::env::var_os(NO_INIT_ENV).is_none_or(|v| v.is_empty())
}

/// Runs the init: starts this program again with the same arguments as its child
/// (which is not PID 1, so it serves), then forwards signals and reaps until that
/// child exits. Returns the exit code to leave with.
pub fn run() -> ExitCode {
    match run_inner() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("karajo (init): {err}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner() -> std::io::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The handlers exist before the child does, so no signal is lost between.
        let mut children = signal(SignalKind::child())?;
        let mut forwarded = Vec::with_capacity(FORWARDED.len());
        for (kind, sig) in FORWARDED {
            forwarded.push((signal(kind)?, sig));
        }
        let exe = std::env::current_exe()?;
        let child = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .spawn()?;
        let child_pid = Pid::from_raw(child.id() as i32)
            .ok_or_else(|| std::io::Error::other("the daemon has no process id"))?;
        // `child` is never waited through std: the loop below reaps it with the rest.
        drop(child);
        loop {
            if let Some(code) = reap(child_pid)? {
                return Ok(code);
            }
            let pending = forwarded
                .iter_mut()
                .map(|(stream, sig)| {
                    let sig = *sig;
                    Box::pin(async move {
                        stream.recv().await;
                        sig
                    })
                })
                .collect::<Vec<_>>();
            tokio::select! {
                _ = children.recv() => {}
                sig = futures_util::future::select_all(pending) => {
                    let _ = kill_process(child_pid, sig.0);
                }
            }
        }
    })
}

/// Reaps every child that has ended; returns the exit code once the daemon is among
/// them.
fn reap(daemon: Pid) -> std::io::Result<Option<ExitCode>> {
    let mut code = None;
    loop {
        match wait(WaitOptions::NOHANG) {
            Ok(Some((pid, status))) => {
                if pid == daemon {
                    let value = match (status.exit_status(), status.terminating_signal()) {
                        (Some(exit), _) => exit,
                        (None, Some(sig)) => 128 + sig,
                        (None, None) => 1,
                    };
                    code = Some(ExitCode::from(u8::try_from(value).unwrap_or(1)));
                }
            }
            Ok(None) => return Ok(code),
            Err(rustix::io::Errno::CHILD) => {
                return Ok(Some(code.unwrap_or(ExitCode::FAILURE)));
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
}
