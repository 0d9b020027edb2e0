//! Process groups: every command runs as the leader of a new process group, so the
//! whole tree it forks can be signalled at once. Stopping is SIGTERM to the group, a
//! grace period, then SIGKILL to the group.

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::process::Child;

/// Sends `signal` to every process of the group led by `pgid`. Returns `false` when the
/// group no longer exists.
pub(super) fn signal_group(pgid: Pid, signal: Signal) -> bool {
    kill_process_group(pgid, signal).is_ok()
}

/// Stops the group of a child that is still running: SIGTERM to the group, wait up to
/// `grace` for the leader to exit, then SIGKILL to the group. Returns once the leader
/// has been reaped.
pub(super) async fn terminate(child: &mut Child, pgid: Pid, grace: Duration) {
    signal_group(pgid, Signal::TERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pgid, Signal::KILL);
    }
    // The leader is either gone or was sent SIGKILL, so this returns promptly.
    let _ = child.wait().await;
    // Members that ignored SIGTERM while the leader exited get SIGKILL too.
    signal_group(pgid, Signal::KILL);
}

/// The process group id of a just-spawned child (its own pid, as it leads the group).
pub(super) fn group_of(child: &Child) -> Option<Pid> {
    child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(Pid::from_raw)
}
