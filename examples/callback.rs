//! A job written in Rust: karajo embedded in your own program.
//!
//! The `[job "..."]` section gives the job its schedule, web hook path and secret; the
//! registered async function replaces its shell commands. The function writes to the
//! run's log, can read the web hook request, and should stop when `cancel` fires.
//!
//! Run it with `cargo run --example callback`: it starts a daemon on a temporary
//! directory, runs the job once through the scheduler and prints the run's log.

use std::io::Write as _;
use std::time::Duration;

use karajo::exec::job_fn;
use karajo::job::{JobId, JobKey, Trigger};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("karajo.conf");
    std::fs::write(
        &config,
        format!(
            "[karajo]\ndir_base = {}\nlisten_address = 127.0.0.1:0\nsecret = s3cret\n\n\
             [job \"count to three\"]\npath = /count\ntimeout = 10s\n",
            dir.path().display()
        ),
    )?;

    let count = job_fn(|mut ctx| async move {
        for i in 1..=3 {
            tokio::select! {
                () = ctx.cancel.cancelled() => return Err("cancelled".into()),
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            writeln!(
                ctx.log,
                "{i} (run #{}, {})",
                ctx.run.counter,
                ctx.run.trigger.as_str()
            )?;
        }
        if let Some(request) = &ctx.run.request {
            writeln!(ctx.log, "web hook body: {} bytes", request.body.len())?;
        }
        Ok(())
    });

    let daemon = karajo::Daemon::new(&config)
        .job_fn("count to three", count)
        .start()
        .await?;
    println!("listening on http://{}", daemon.local_addr());

    let id = JobId::from_name("count to three");
    daemon
        .scheduler()
        .trigger(JobKey::exec(id.clone()), Trigger::Api, None)
        .await?;
    let log = dir
        .path()
        .join("var/log/karajo/job")
        .join(id.as_str())
        .join(format!("{id}.1.success"));
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(&log) {
            print!("{text}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.shutdown().await;
    Ok(())
}
