//! A real `nats-server` for one test (cluster spec 14.2): `$KARAJO_NATS_SERVER`, else
//! `nats-server` on `PATH`, else `/usr/sbin/nats-server`; on a free port of 127.0.0.1,
//! with JetStream in its own store directory; stopped by its own pid (never by name).
//! Without a binary the tests say so and pass, unless `KARAJO_REQUIRE_NATS=1`.

use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The server binary, or `None` when there is none (and none is required).
pub(crate) fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KARAJO_NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nats-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let found = on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|p| p.is_file());
    if found.is_none() && std::env::var("KARAJO_REQUIRE_NATS").as_deref() == Ok("1") {
        panic!("no nats-server, and KARAJO_REQUIRE_NATS=1 (set KARAJO_NATS_SERVER)");
    }
    found
}

/// A running server: its port, store directory and child process.
pub(crate) struct NatsServer {
    binary: PathBuf,
    /// The client port on 127.0.0.1.
    pub(crate) port: u16,
    /// The JetStream store directory (kept across [`NatsServer::restart`]).
    pub(crate) store: tempfile::TempDir,
    /// An optional configuration file (`-c`), for authorization tests.
    config: Option<PathBuf>,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server, or prints `skipped: …` and returns `None` without a binary.
    pub(crate) fn start() -> Option<Self> {
        Self::start_with_config(None)
    }

    /// Starts a server that also reads `config` (`-c`), e.g. an `authorization` block.
    pub(crate) fn start_with_config(config: Option<&Path>) -> Option<Self> {
        let Some(binary) = binary() else {
            eprintln!("skipped: no nats-server (set KARAJO_NATS_SERVER)");
            return None;
        };
        let mut store = tempfile::tempdir().expect("a store directory");
        for _ in 0..2 {
            let port = free_port();
            let mut server = Self {
                binary: binary.clone(),
                port,
                store,
                config: config.map(Path::to_path_buf),
                child: None,
            };
            if server.spawn() {
                return Some(server);
            }
            store = std::mem::replace(&mut server.store, tempfile::tempdir().unwrap());
        }
        panic!("nats-server did not start twice");
    }

    /// `nats://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's version, from `--version` (`2.9.10`).
    pub(crate) fn version(&self) -> String {
        let out = Command::new(&self.binary)
            .arg("--version")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("nats-server: v")
            .to_string()
    }

    /// The child's pid while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new(&self.binary);
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-js",
            "-sd",
        ])
        .arg(self.store.path());
        if let Some(config) = &self.config {
            cmd.arg("-c").arg(config);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server runs");
        let stderr = child.stderr.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("Server is ready") {
                    let _ = ready_tx.send(());
                }
            }
        });
        let deadline = Instant::now() + READY_WITHIN;
        let ready = ready_rx.recv_timeout(READY_WITHIN).is_ok();
        while ready && Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Stops the server: SIGTERM to its own pid, SIGKILL after 5 s.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server with SIGKILL.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store directory.
    /// Starts the stopped server again on its port and store.
    pub(crate) fn start_again(&mut self) {
        assert!(
            self.spawn(),
            "nats-server starts again on port {}",
            self.port
        );
    }

    pub(crate) fn restart(&mut self) {
        self.stop();
        assert!(self.spawn(), "nats-server restarts on port {}", self.port);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on now (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_server_starts_restarts_and_stops_on_its_own_port() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    assert_ne!(server.port, 4222);
    assert!(!server.version().is_empty());
    assert!(TcpStream::connect(("127.0.0.1", server.port)).is_ok());
    server.restart();
    assert!(TcpStream::connect(("127.0.0.1", server.port)).is_ok());
    server.stop();
    assert!(server.pid().is_none());
}
