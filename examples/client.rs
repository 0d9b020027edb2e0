//! Driving a karajo server with the typed client.
//!
//! Run it with `cargo run --example client`: it starts a daemon on a temporary
//! directory (so it runs standalone), then, as any remote program would, lists the jobs,
//! runs one through its signed web hook, waits for the run and prints its log, pauses
//! the job, shows the server's error for a run while paused, and resumes it.
//!
//! To drive a server that is already running instead, pass its URL and secret:
//! `cargo run --example client -- http://127.0.0.1:31937 change-this-secret /hello`.

use std::time::Duration;

use karajo::client::{Client, ClientError, ClientOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (server_url, secret, path, local) = match (args.next(), args.next(), args.next()) {
        (Some(url), Some(secret), Some(path)) => (url, secret, path, None),
        _ => {
            let (dir, daemon) = start_local_daemon().await?;
            let url = format!("http://{}", daemon.local_addr());
            (
                url,
                "s3cret".to_string(),
                "/greet".to_string(),
                Some((dir, daemon)),
            )
        }
    };

    let client = Client::new(ClientOptions {
        server_url,
        secret,
        timeout: Some(Duration::from_secs(10)),
        ..ClientOptions::default()
    })?;

    let env = client.env().await?;
    println!("server {:?}, version {}", env.name, env.version);
    for job in env.jobs.values() {
        println!("  job {} ({}): status {:?}", job.id, job.name, job.status);
    }

    let job = client.job_exec_run(&path).await?;
    println!("triggered {} through {path}", job.id);
    let log = wait_for_log(&client, &job.id).await?;
    println!("--- {} ({})", log.name, log.status);
    print!("{}", String::from_utf8_lossy(&log.content));
    println!("---");

    let job = client.job_exec_pause(&job.id).await?;
    println!("{} is now {}", job.id, job.status);
    match client.job_exec_run(&path).await {
        Err(ClientError::Server {
            code,
            name,
            message,
        }) => println!("run while paused: {code} {name}: {message}"),
        other => println!("run while paused: unexpected {other:?}"),
    }
    let job = client.job_exec_resume(&job.id).await?;
    println!("{} resumed, status {:?}", job.id, job.status);

    if let Some((_dir, daemon)) = local {
        daemon.shutdown().await;
    }
    Ok(())
}

/// The newest finished log of job `id`, polling the server for up to ten seconds.
async fn wait_for_log(client: &Client, id: &str) -> anyhow::Result<karajo::client::JobLog> {
    for _ in 0..200 {
        let env = client.env().await?;
        let newest = env
            .job_exec(id)
            .and_then(|job| job.logs.iter().map(|l| l.counter).max());
        if let Some(counter) = newest {
            let log = client.job_exec_log(id, counter).await?;
            if log.status != "running" {
                return Ok(log);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("job {id} did not finish in time")
}

/// A daemon with one web hook job on a temporary `dir_base`.
async fn start_local_daemon() -> anyhow::Result<(tempfile::TempDir, karajo::RunningDaemon)> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("karajo.conf");
    std::fs::write(
        &config,
        format!(
            "[karajo]\nname = example\ndir_base = {}\nlisten_address = 127.0.0.1:0\n\
             secret = s3cret\n\n\
             [job \"greet\"]\npath = /greet\n\
             command = \"echo Hello from run $KARAJO_JOB_COUNTER, started by $KARAJO_TRIGGER\"\n",
            dir.path().display()
        ),
    )?;
    let daemon = karajo::Daemon::new(&config).start().await?;
    Ok((dir, daemon))
}
