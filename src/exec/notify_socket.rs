//! A service instance's systemd-style notify socket (monitors spec B.4.2, B.4.3): a
//! unix datagram socket whose address the instance gets as `NOTIFY_SOCKET`, so that
//! programs written for `Type=notify` (and `systemd-notify`) tell karajo `READY=1`,
//! `WATCHDOG=1`, `STATUS=…` and `STOPPING=1` unchanged. Each datagram's sender is
//! checked with the kernel's credentials (`SO_PASSCRED`): only a process of the
//! instance's process group is heard. A path longer than `sun_path` allows becomes an
//! abstract address `@karajo/<id>/<random>`, which sd_notify understands.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsFd as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::job::JobId;

/// The longest path a unix socket address holds (`sun_path` less its NUL).
const SUN_PATH_MAX: usize = 107;

/// The largest datagram read; longer ones are cut.
const DATAGRAM_MAX: usize = 4096;

/// What an instance said on its notify socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyMessage {
    /// `READY=1`.
    Ready,
    /// `WATCHDOG=1`: a liveness ping.
    Watchdog,
    /// `STATUS=<text>`.
    Status(String),
    /// `STOPPING=1`.
    Stopping,
}

/// Reads the assignments of one datagram (newline-separated `KEY=VALUE`) into the
/// messages karajo understands; others are ignored.
pub fn parse(datagram: &[u8]) -> Vec<NotifyMessage> {
    String::from_utf8_lossy(datagram)
        .lines()
        .filter_map(|line| match line.split_once('=') {
            Some(("READY", "1")) => Some(NotifyMessage::Ready),
            Some(("WATCHDOG", "1")) => Some(NotifyMessage::Watchdog),
            Some(("STOPPING", "1")) => Some(NotifyMessage::Stopping),
            Some(("STATUS", text)) => Some(NotifyMessage::Status(text.to_string())),
            _ => None,
        })
        .collect()
}

/// An open notify socket: its `NOTIFY_SOCKET` value, and the process group whose
/// members it hears (0 until the instance is spawned: nobody).
#[derive(Debug)]
pub struct NotifySocket {
    /// The value of `NOTIFY_SOCKET`.
    pub address: String,
    /// The instance's process group, set once it is spawned.
    pub pgid: Arc<AtomicI32>,
    socket: tokio::net::UnixDatagram,
}

impl NotifySocket {
    /// Binds the socket at `path` (a file left there by an earlier instance is
    /// replaced; the file stays after the instance, for the next to replace), or at an
    /// abstract address when `path` is too long.
    pub fn bind(path: &Path, id: &JobId) -> io::Result<Self> {
        let text = path.to_string_lossy().into_owned();
        let (std_socket, address) = if text.len() <= SUN_PATH_MAX {
            if let Some(dir) = path.parent() {
                crate::store::create_private_dir(dir)?;
            }
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let socket = std::os::unix::net::UnixDatagram::bind(path)?;
            (socket, text)
        } else {
            use std::os::linux::net::SocketAddrExt as _;
            let name = format!("karajo/{id}/{:016x}", rand::random::<u64>());
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            let socket = std::os::unix::net::UnixDatagram::bind_addr(&addr)?;
            (socket, format!("@{name}"))
        };
        rustix::net::sockopt::set_socket_passcred(std_socket.as_fd(), true)?;
        std_socket.set_nonblocking(true)?;
        Ok(Self {
            address,
            pgid: Arc::new(AtomicI32::new(0)),
            socket: tokio::net::UnixDatagram::from_std(std_socket)?,
        })
    }

    /// Reads datagrams until the task is dropped, calling `heard` with what a member
    /// of the instance's process group said.
    pub async fn listen(self, heard: impl Fn(NotifyMessage) + Send + Sync) {
        let mut data = vec![0u8; DATAGRAM_MAX];
        loop {
            if self.socket.readable().await.is_err() {
                return;
            }
            let received = self.socket.try_io(tokio::io::Interest::READABLE, || {
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
                let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
                let mut iov = [io::IoSliceMut::new(&mut data)];
                let got = rustix::net::recvmsg(
                    self.socket.as_fd(),
                    &mut iov,
                    &mut control,
                    rustix::net::RecvFlags::empty(),
                )
                .map_err(io::Error::from)?;
                let sender = control.drain().find_map(|message| match message {
                    rustix::net::RecvAncillaryMessage::ScmCredentials(cred) => {
                        Some(cred.pid.as_raw_nonzero().get())
                    }
                    _ => None,
                });
                Ok((got.bytes.min(DATAGRAM_MAX), sender))
            });
            let (len, sender) = match received {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => continue,
            };
            let expected = self.pgid.load(Ordering::Relaxed);
            let member = sender.is_some_and(|pid| expected > 0 && group_of(pid) == Some(expected));
            if !member {
                tracing::warn!(
                    ?sender,
                    "a notify datagram from outside the instance's process group was ignored"
                );
                continue;
            }
            for message in parse(&data[..len]) {
                heard(message);
            }
        }
    }
}

/// The process group of `pid` (field 5 of `/proc/<pid>/stat`).
fn group_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_are_read_as_systemd_assignments() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=warming up\nMAINPID=4\nWATCHDOG=1\nSTOPPING=1"),
            [
                NotifyMessage::Ready,
                NotifyMessage::Status("warming up".to_string()),
                NotifyMessage::Watchdog,
                NotifyMessage::Stopping,
            ]
        );
        assert!(parse(b"READY=0\nWATCHDOG=trigger").is_empty());
    }

    #[tokio::test]
    async fn a_member_of_the_group_is_heard_and_a_stranger_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let socket =
            NotifySocket::bind(&dir.path().join("a.notify"), &JobId::from_raw("a")).unwrap();
        let address = socket.address.clone();
        // This test process's own group stands for the instance's.
        let own_group = group_of(std::process::id() as i32).unwrap();
        let pgid = socket.pgid.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let listener = tokio::spawn(socket.listen(move |m| {
            let _ = tx.send(m);
        }));
        let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
        // Nobody is heard before the group is known.
        client.send_to(b"READY=1", &address).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(rx.try_recv().is_err());
        pgid.store(own_group, Ordering::Relaxed);
        client.send_to(b"READY=1\nSTATUS=ok", &address).unwrap();
        assert_eq!(rx.recv().await, Some(NotifyMessage::Ready));
        assert_eq!(
            rx.recv().await,
            Some(NotifyMessage::Status("ok".to_string()))
        );
        // Another group: ignored.
        pgid.store(own_group + 1_000_000, Ordering::Relaxed);
        client.send_to(b"WATCHDOG=1", &address).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(rx.try_recv().is_err());
        listener.abort();
    }

    #[tokio::test]
    async fn a_long_path_becomes_an_abstract_address() {
        let long = Path::new("/tmp").join("x".repeat(120)).join("a.notify");
        let socket = NotifySocket::bind(&long, &JobId::from_raw("a")).unwrap();
        assert!(
            socket.address.starts_with("@karajo/a/"),
            "{}",
            socket.address
        );
    }
}
