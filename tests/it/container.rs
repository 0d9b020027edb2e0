//! The container image recipe, tested as far as a machine without a registry can:
//! `Containerfile` is multi-stage with a Debian slim runtime, runs as a non-root
//! user, declares the configuration and state volumes and uses karajo as its entry
//! point; every file it copies from the repository exists; the image's configuration
//! (`etc/container/karajo.conf`) loads; and its `HEALTHCHECK` command, run with
//! `/bin/sh` as the engine runs it, succeeds against a daemon serving that
//! configuration and fails once the daemon is gone. karajo as PID 1 (the entry
//! point's signals and reaping) is tested in `pid1.rs`.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The Containerfile's instructions: (keyword, rest), continuation lines joined.
fn instructions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("Containerfile")).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, rest) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((keyword.to_ascii_uppercase(), rest.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

fn all(instructions: &[(String, String)], keyword: &str) -> Vec<String> {
    instructions
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, rest)| rest.clone())
        .collect()
}

#[test]
fn the_containerfile_is_multi_stage_non_root_with_volumes() {
    let ins = instructions();
    let from = all(&ins, "FROM");
    assert_eq!(from.len(), 2, "{from:?}");
    assert!(
        from[0].contains("rust:") && from[0].ends_with(" AS build"),
        "{from:?}"
    );
    assert!(
        from[1].contains("debian:") && from[1].contains("-slim"),
        "{from:?}"
    );
    let run = all(&ins, "RUN").join("\n");
    for package in ["ca-certificates", "tzdata", "curl"] {
        assert!(run.contains(package), "{package} is not installed");
    }
    assert!(run.contains("cargo build --release --locked"), "{run}");
    assert_eq!(all(&ins, "USER"), ["karajo"]);
    let volumes = all(&ins, "VOLUME").join(" ");
    for volume in ["/etc/karajo", "/var/lib/karajo", "/var/log/karajo"] {
        assert!(volumes.contains(&format!("\"{volume}\"")), "{volumes}");
    }
    assert_eq!(all(&ins, "ENTRYPOINT"), ["[\"/usr/bin/karajo\"]"]);
    assert_eq!(
        all(&ins, "CMD"),
        ["[\"-config\", \"/etc/karajo/karajo.conf\"]"]
    );
    assert_eq!(all(&ins, "EXPOSE"), ["31937"]);
    // What the runtime stage copies from the build context exists.
    for copy in all(&ins, "COPY") {
        if copy.contains("--from=") || copy.starts_with(". ") {
            continue;
        }
        let source = copy
            .split_whitespace()
            .find(|w| !w.starts_with("--"))
            .unwrap();
        assert!(repo(source).exists(), "COPY {source}: missing");
    }
    assert!(repo(".containerignore").exists());
    assert!(repo(".dockerignore").exists());
}

/// The HEALTHCHECK's command, for `/bin/sh -c`.
fn health_command() -> String {
    let ins = instructions();
    let health = all(&ins, "HEALTHCHECK");
    assert_eq!(health.len(), 1);
    let (_, command) = health[0].split_once(" CMD ").unwrap();
    assert!(command.contains("/karajo/api/environment"), "{command}");
    command.to_string()
}

#[tokio::test]
async fn the_image_configuration_serves_and_the_health_check_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::process::free_port();
    let conf = std::fs::read_to_string(repo("etc/container/karajo.conf"))
        .unwrap()
        .replace(
            "dir_base = /\n",
            &format!("dir_base = {}\n", dir.path().display()),
        )
        .replace("0.0.0.0:31937", &format!("127.0.0.1:{port}"));
    assert!(conf.contains(&format!("dir_base = {}", dir.path().display())));
    let file = dir.path().join("etc/karajo/karajo.conf");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, conf).unwrap();
    let check = Command::new(assert_cmd::cargo::cargo_bin!("karajo"))
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert!(
        String::from_utf8_lossy(&check.stdout).ends_with("0 jobs, 0 HTTP jobs: OK\n"),
        "{check:?}"
    );

    let health = health_command().replace("31937", &port.to_string());
    let healthy = || {
        let health = health.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new("/bin/sh")
                    .arg("-c")
                    .arg(&health)
                    .status()
                    .unwrap()
                    .success()
            })
            .await
            .unwrap()
        }
    };
    assert!(!healthy().await, "healthy before the daemon started");
    let d = TestDaemon::start_with(karajo::Daemon::new(&file)).await;
    wait_for("the health check to pass", || async {
        healthy().await.then_some(())
    })
    .await;
    d.stop().await;
    assert!(!healthy().await, "healthy after the daemon stopped");
}
