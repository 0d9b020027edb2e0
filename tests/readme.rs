//! The README's examples, run as written: this test copies the repository's `etc/`
//! (and an empty `var/`) to a temporary directory, starts the sample daemon there with
//! `karajo -config etc/karajo/karajo.conf` as "From a clone" says, and runs every ```` ```sh ````
//! block of README.md in order, each with `bash -euo pipefail -c BLOCK` in a fresh shell
//! whose working directory is the temporary copy, so each block must be self-contained.
//! A block fails when it exits non-zero or takes longer than [`BLOCK_TIMEOUT`].
//!
//! **The binary.** The shells (and the daemon) get the test build of `karajo`
//! (`CARGO_BIN_EXE_karajo`) first on their `PATH`, which is what the README's
//! `export PATH="$PWD/target/release:$PATH"` step does for a reader; the test also
//! checks that the README has such a step (or a `dpkg -i` of the package) before the
//! first `karajo` command.
//!
//! **Expected output.** A plain ```` ``` ```` block right after a `sh` block (only blank
//! lines between them) is that block's expected output: its standard output and
//! standard error together, in the order written. Lines are compared with trailing
//! white space removed, and trailing empty lines are ignored. A line `...` matches any
//! number of lines (none included); `[..]` inside a line matches any text (none
//! included). A `sh` block without an output block only has to succeed.
//!
//! **The port.** The sample listens on `127.0.0.1:31937`, and so do the examples. The
//! test picks a free port instead and replaces every `31937` in the copied
//! `karajo.conf`, in the blocks and in their expected output, so it runs beside a
//! sample daemon of one's own and beside other tests.
//!
//! **Blocks that are not run.** A block whose fence follows the line
//! `<!-- not run by the README test: REASON -->` (blank lines between are allowed) is
//! skipped with its output block: building, starting the daemon, the test and
//! benchmark scripts, commands that need a terminal. Keep such blocks few.

// Test code: clippy.toml allows unwrap/expect inside #[test] functions, but the helpers
// these tests share are plain functions, where a failed setup should still panic with
// its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};

/// The comment that keeps the next block from being run; a reason follows it.
const MARKER: &str = "<!-- not run by the README test:";

/// The sample daemon's port as written in `etc/karajo/karajo.conf` and the README.
const SAMPLE_PORT: &str = "31937";

/// How long one block may run.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the daemon may take to start and finish its start-up runs.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A fenced block of the README.
#[derive(Debug)]
struct Fence {
    /// 1-based line of the opening fence.
    line: usize,
    /// The info string (`sh`, `ini`, or empty).
    info: String,
    body: String,
    /// The reason of a [`MARKER`] right before the fence.
    skip: Option<String>,
    /// Only blank lines between the previous fence's end and this fence.
    adjacent: bool,
}

/// A `sh` block and its expected output.
#[derive(Debug)]
struct Example<'a> {
    fence: &'a Fence,
    expected: Option<&'a Fence>,
}

fn parse_fences(text: &str) -> Vec<Fence> {
    let mut fences = Vec::new();
    let mut open: Option<Fence> = None;
    let mut last_text: Option<&str> = None;
    let mut text_since_fence = true;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        match open.as_mut() {
            Some(fence) => {
                if trimmed == "```" {
                    fences.extend(open.take());
                    last_text = None;
                    text_since_fence = false;
                } else {
                    fence.body.push_str(line);
                    fence.body.push('\n');
                }
            }
            None if trimmed.starts_with("```") => {
                let skip = last_text
                    .and_then(|t| t.strip_prefix(MARKER))
                    .map(|reason| reason.trim_end_matches("-->").trim().to_string());
                open = Some(Fence {
                    line: index + 1,
                    info: trimmed.trim_start_matches('`').trim().to_string(),
                    body: String::new(),
                    skip,
                    adjacent: !text_since_fence,
                });
            }
            None if trimmed.is_empty() => {}
            None => {
                last_text = Some(trimmed);
                text_since_fence = true;
            }
        }
    }
    assert!(open.is_none(), "README.md: a fenced block is not closed");
    fences
}

fn examples(fences: &[Fence]) -> Vec<Example<'_>> {
    let mut out = Vec::new();
    for (i, fence) in fences.iter().enumerate() {
        if fence.info != "sh" && fence.info != "bash" {
            continue;
        }
        let expected = fences
            .get(i + 1)
            .filter(|next| next.info.is_empty() && next.adjacent);
        out.push(Example { fence, expected });
    }
    out
}

/// Whether a block runs `karajo` as a command (not a path such as `etc/karajo/`).
fn runs_karajo(body: &str) -> bool {
    body.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("karajo ")
            || ["(karajo ", " karajo ", "|karajo "]
                .iter()
                .any(|p| line.contains(p))
    })
}

/// `...` on its own matches any number of lines; other lines go to [`line_matches`].
fn lines_match(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual.split_first().is_some_and(|(line, actual_rest)| {
            line_matches(first, line) && lines_match(rest, actual_rest)
        }),
    }
}

/// `[..]` matches any text within the line.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return pattern == line;
    };
    if parts.len() == 1 {
        return pattern == line;
    }
    let Some(rest) = line.strip_prefix(first) else {
        return false;
    };
    let Some(mut middle) = rest.strip_suffix(last) else {
        return false;
    };
    for part in &parts[1..parts.len() - 1] {
        match middle.find(part) {
            Some(at) => middle = &middle[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Lines with trailing white space removed, trailing empty lines dropped.
fn normalized(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

fn wait_until(what: &str, daemon: &mut Child, log: &Path, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + START_TIMEOUT;
    while !done() {
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!(
                "the sample daemon exited ({status}) while waiting for {what}; its log:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the daemon's log:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        sleep(Duration::from_millis(20));
    }
}

/// The sample daemon in a temporary copy of the repository's layout; stopped with
/// SIGTERM on drop.
struct Sample {
    _dir: tempfile::TempDir,
    clone: PathBuf,
    tmp: PathBuf,
    log: PathBuf,
    path: String,
    port: String,
    daemon: Child,
}

impl Sample {
    fn start() -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().expect("tempdir");
        let clone = dir.path().join("karajo");
        let tmp = dir.path().join("tmp");
        fs::create_dir_all(&tmp).expect("mkdir tmp");
        copy_dir(&repo.join("etc"), &clone.join("etc")).expect("copy etc/");
        // Only var/'s tracked file: a developer's own runs of the sample stay out.
        fs::create_dir_all(clone.join("var")).expect("mkdir var");
        if repo.join("var/.gitignore").exists() {
            fs::copy(repo.join("var/.gitignore"), clone.join("var/.gitignore"))
                .expect("copy var/.gitignore");
        }

        let port = free_port().to_string();
        let conf = clone.join("etc/karajo/karajo.conf");
        let text = fs::read_to_string(&conf).expect("read karajo.conf");
        let listen = format!("127.0.0.1:{SAMPLE_PORT}");
        assert!(
            text.contains(&listen),
            "etc/karajo/karajo.conf no longer listens on {listen}; update tests/readme.rs"
        );
        fs::write(&conf, text.replace(&listen, &format!("127.0.0.1:{port}")))
            .expect("write karajo.conf");

        let bin = Path::new(env!("CARGO_BIN_EXE_karajo"));
        let bin_dir = bin.parent().expect("the binary's directory");
        let path = match std::env::var_os("PATH") {
            Some(old) => format!("{}:{}", bin_dir.display(), old.to_string_lossy()),
            None => bin_dir.display().to_string(),
        };
        let log = dir.path().join("daemon.log");
        let log_file = fs::File::create(&log).expect("create daemon.log");
        let mut daemon = Command::new("karajo")
            .args(["-config", "etc/karajo/karajo.conf"])
            .current_dir(&clone)
            .env("PATH", &path)
            .env_remove("KARAJO_SERVER")
            .env_remove("KARAJO_SECRET")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log file"))
            .stderr(log_file)
            .spawn()
            .expect("start karajo from the PATH");

        let address = format!("127.0.0.1:{port}");
        wait_until(&format!("{address} to listen"), &mut daemon, &log, || {
            TcpStream::connect(&address).is_ok()
        });
        // The start-up runs: hello's first (timer), and ping_hello's, which triggers
        // hello's second through its web hook. Later examples count on them.
        let logs = clone.join("var/log/karajo");
        for file in [
            "job/hello/hello.1.success",
            "job_http/ping_hello/ping_hello.1.success",
            "job/hello/hello.2.success",
        ] {
            let file = logs.join(file);
            wait_until(&file.display().to_string(), &mut daemon, &log, || {
                file.exists()
            });
        }
        Self {
            _dir: dir,
            clone,
            tmp,
            log,
            path,
            port,
            daemon,
        }
    }

    /// Runs one block; returns its exit status and combined output.
    fn run(&self, script: &str) -> (Option<i32>, String) {
        let out = self.tmp.join("block.out");
        let file = fs::File::create(&out).expect("create block output");
        let mut child = Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(&self.clone)
            .env("PATH", &self.path)
            .env("TMPDIR", &self.tmp)
            .env_remove("KARAJO_SERVER")
            .env_remove("KARAJO_SECRET")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone output file"))
            .stderr(file)
            .process_group(0)
            .spawn()
            .expect("run bash");
        let deadline = Instant::now() + BLOCK_TIMEOUT;
        let status = loop {
            match child.try_wait().expect("wait for bash") {
                Some(status) => break status.code(),
                None if Instant::now() >= deadline => {
                    if let Some(pid) = Pid::from_raw(child.id().cast_signed()) {
                        let _ = kill_process_group(pid, Signal::KILL);
                    }
                    let _ = child.wait();
                    break None;
                }
                None => sleep(Duration::from_millis(10)),
            }
        };
        let output = String::from_utf8_lossy(&fs::read(&out).unwrap_or_default()).into_owned();
        (status, output)
    }
}

impl Drop for Sample {
    fn drop(&mut self) {
        if let Some(pid) = Pid::from_raw(self.daemon.id().cast_signed()) {
            let _ = kill_process(pid, Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.daemon.try_wait(), Ok(None)) && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn command_exists(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn readme_examples_run_as_written() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = fs::read_to_string(path).expect("read README.md");
    let fences = parse_fences(&readme);
    let examples = examples(&fences);

    // The PATH step: a line that puts karajo on the PATH before the first that runs it
    // (installing the Debian package puts it in /usr/bin).
    let lines = || {
        examples
            .iter()
            .flat_map(|e| e.fence.body.lines().map(move |l| (e.fence.line, l)))
    };
    let first_karajo = lines()
        .position(|(_, l)| runs_karajo(l))
        .expect("the README runs karajo somewhere");
    let path_step = lines().position(|(_, l)| {
        l.contains("export PATH=\"$PWD/target/release:$PATH\"")
            || l.contains("cargo install")
            || l.contains("dpkg -i")
    });
    assert!(
        path_step.is_some_and(|p| p < first_karajo),
        "README.md:{}: runs karajo before any block puts it on the PATH",
        lines().nth(first_karajo).map_or(0, |(line, _)| line)
    );

    let runnable: Vec<&Example> = examples.iter().filter(|e| e.fence.skip.is_none()).collect();
    assert!(
        runnable.len() >= 10,
        "only {} README blocks are run; are the markers or fences broken?",
        runnable.len()
    );
    for tool in ["bash", "curl", "openssl"] {
        assert!(
            command_exists(tool),
            "the README's examples need `{tool}` (Debian package {tool}); ./scripts/test installs it"
        );
    }

    let sample = Sample::start();
    let mut failures = Vec::new();
    for example in runnable {
        let script = example.fence.body.replace(SAMPLE_PORT, &sample.port);
        let (status, output) = sample.run(&script);
        let expected = example
            .expected
            .map(|fence| fence.body.replace(SAMPLE_PORT, &sample.port));
        let matches = expected
            .as_deref()
            .is_none_or(|e| lines_match(&normalized(e), &normalized(&output)));
        if status != Some(0) || !matches {
            let why = match status {
                Some(0) => "its output no longer matches".to_string(),
                Some(code) => format!("it exited {code}"),
                None => format!("it was killed (signal, or over {BLOCK_TIMEOUT:?})"),
            };
            failures.push(format!(
                "README.md:{}: {why}\n--- block (port {SAMPLE_PORT} -> {}):\n{script}--- expected (README.md:{}):\n{}--- got:\n{output}",
                example.fence.line,
                sample.port,
                example.expected.map_or(0, |f| f.line),
                expected.as_deref().unwrap_or("(any output)\n"),
            ));
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} README example(s) failed:\n\n{}\n--- the daemon's log ({}):\n{}",
            failures.len(),
            failures.join("\n"),
            sample.log.display(),
            fs::read_to_string(&sample.log).unwrap_or_default()
        );
    }
}

#[test]
fn the_matcher_handles_wildcards() {
    assert!(line_matches("a [..] c", "a b c"));
    assert!(line_matches("a [..]c", "a c"));
    assert!(line_matches("[..]", ""));
    assert!(line_matches("[..]x[..]y", "1x2x3y"));
    assert!(!line_matches("a[..]a", "a"));
    assert!(!line_matches("a b", "a c"));
    assert!(lines_match(&["x", "...", "z"], &["x", "z"]));
    assert!(lines_match(&["x", "...", "z"], &["x", "1", "2", "z"]));
    assert!(lines_match(&["...", "z", "..."], &["z", "z"]));
    assert!(!lines_match(&["x", "z"], &["x", "y", "z"]));
    assert!(!lines_match(&["x"], &["x", "y"]));
}

#[test]
fn markers_and_output_blocks_are_found() {
    let text = "\
```sh
echo a
```

```
a
```
<!-- not run by the README test: needs a terminal -->
```sh
read x
```
text
```
not an output block
```
";
    let fences = parse_fences(text);
    let examples = examples(&fences);
    assert_eq!(examples.len(), 2);
    assert_eq!(examples[0].expected.map(|f| f.body.as_str()), Some("a\n"));
    assert_eq!(examples[0].fence.skip, None);
    assert_eq!(examples[1].fence.skip.as_deref(), Some("needs a terminal"));
    assert!(examples[1].expected.is_none());
    assert!(runs_karajo("x=1; karajo job list\n"));
    assert!(!runs_karajo("cat var/log/karajo/job/hello\n"));
}
