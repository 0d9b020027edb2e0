//! Log shipping and collecting against a real nats-server (cluster spec 7.6, 7.8):
//! what node n1 ships, node n2's collector writes byte for byte and renames at the
//! final message; n2's own messages are skipped; a restarted collector applies nothing
//! twice; more than 5,000 chunks do not hang the shipper (spec 13 trap 3); a feed that
//! overflows or loses the server catches up from the file; the sweeper's read of a
//! run's last message; and the log gap.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::Context;
use jiff::Timestamp;
use karajo::cluster::NodeName;
use karajo::cluster::nats::layout::{self, Names};
use karajo::cluster::nats::logcollect::{Collected, Collector, LogDirFn, LogGap, Skip};
use karajo::cluster::nats::logship::{self, CHUNK_MAX, LogError, LogShipper, RunLogRef};
use karajo::job::{JobId, JobKind, RunStatus};

use super::orders::{connect, settings};
use super::server::NatsServer;

const OP_TIMEOUT: Duration = Duration::from_secs(2);

async fn provision(js: &Context, names: &Names) {
    js.get_or_create_stream(layout::logs_stream(names, &settings("n1", 5)))
        .await
        .unwrap();
}

fn run(node: &str, counter: u64) -> RunLogRef {
    RunLogRef {
        kind: JobKind::Exec,
        job: JobId::from_raw("render"),
        counter,
        run: format!("run-{node}-{counter}"),
        node: NodeName::parse(node).unwrap(),
    }
}

/// Log directories under `root` as the store lays them out: `<root>/<kind>/<id>`.
fn log_dirs(root: &Path) -> LogDirFn {
    let root = root.to_path_buf();
    Box::new(move |kind: JobKind, id: &JobId| {
        (id.as_str() != "unknown").then(|| root.join(kind.as_str()).join(id.as_str()))
    })
}

fn log_path(root: &Path, counter: u64, status: &str) -> PathBuf {
    root.join(format!("job/render/render.{counter}.{status}"))
}

/// `n` lines of about 100 bytes, as a run's log would hold them.
fn lines(n: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!(
                "2026-01-02 03:04:05 UTC job: render: {tag} line {i:05} {}\n",
                "x".repeat(48)
            )
            .into_bytes()
        })
        .collect()
}

async fn stream_last_seq(js: &Context, names: &Names) -> u64 {
    let mut stream = js.get_stream(names.logs_stream()).await.unwrap();
    stream.info().await.unwrap().state.last_sequence
}

/// Runs `collector` until its cursor reaches `upto`; returns what it did.
async fn collect_until(collector: &mut Collector, upto: u64) -> Vec<Collected> {
    let mut all = Vec::new();
    while collector.cursor() < upto {
        let next = tokio::time::timeout(Duration::from_secs(10), collector.next())
            .await
            .expect("the collector keeps up")
            .unwrap()
            .unwrap();
        all.push(next);
    }
    all
}

#[tokio::test]
async fn a_shipped_log_is_collected_byte_for_byte_renamed_at_the_end_and_never_applied_twice() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let names = Names::new("karajo");
    let (_c1, js1) = connect(&server, "n1").await;
    let (_c2, js2) = connect(&server, "n2").await;
    provision(&js1, &names).await;

    // n1 ships 10,000 lines one write each (10,000 chunks: past trap 3's 5,000), then
    // one write of 200 KiB (chunks of 64, 64, 64 and 8 KiB).
    let mut source = Vec::new();
    let mut shipper = LogShipper::new(js1.clone(), &names, &run("n1", 7), OP_TIMEOUT).unwrap();
    let started = tokio::time::Instant::now();
    for line in lines(10_000, "a") {
        shipper.ship(&line).await.unwrap();
        source.extend_from_slice(&line);
    }
    let big: Vec<u8> = (0..200 * 1024)
        .map(|i| b"0123456789abcdef\n"[i % 17])
        .collect();
    shipper.ship(&big).await.unwrap();
    source.extend_from_slice(&big);
    assert_eq!(shipper.flush().await.unwrap(), source.len() as u64);
    assert_eq!(shipper.next_chunk(), 10_000 + 4);
    let final_seq = shipper
        .finish(RunStatus::Success, Timestamp::now())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));

    // n2 ships a run of its own, and a job n2 does not define comes along.
    let mut own = LogShipper::new(js2.clone(), &names, &run("n2", 8), OP_TIMEOUT).unwrap();
    own.ship(b"n2's own line\n").await.unwrap();
    own.finish(RunStatus::Failed, Timestamp::now())
        .await
        .unwrap();
    let mut unknown = RunLogRef {
        job: JobId::from_raw("unknown"),
        ..run("n1", 1)
    };
    unknown.run = "run-unknown".into();
    let mut stranger = LogShipper::new(js1.clone(), &names, &unknown, OP_TIMEOUT).unwrap();
    stranger.ship(b"elsewhere\n").await.unwrap();
    stranger.flush().await.unwrap();
    let last = stream_last_seq(&js1, &names).await;
    assert_eq!(last, final_seq + 3);

    let root = tempfile::tempdir().unwrap();
    let n2 = NodeName::parse("n2").unwrap();
    let (mut collector, gap) =
        Collector::start(&js2, &names, &n2, 0, log_dirs(root.path()), OP_TIMEOUT)
            .await
            .unwrap();
    assert_eq!(gap, None);
    let did = collect_until(&mut collector, last).await;
    let finished: Vec<_> = did
        .iter()
        .filter_map(|c| match c {
            Collected::Finished {
                counter,
                status,
                path,
                missing,
                ..
            } => Some((*counter, *status, path.clone(), *missing)),
            _ => None,
        })
        .collect();
    assert_eq!(
        finished,
        [(
            7,
            RunStatus::Success,
            log_path(root.path(), 7, "success"),
            0
        )]
    );
    let own_skipped = did
        .iter()
        .filter(|c| {
            matches!(
                c,
                Collected::Skipped {
                    why: Skip::OwnNode,
                    ..
                }
            )
        })
        .count();
    assert_eq!(own_skipped, 2, "n2's chunk and final message");
    assert!(did.iter().any(|c| matches!(
        c,
        Collected::Skipped {
            why: Skip::UnknownJob,
            ..
        }
    )));
    assert_eq!(
        std::fs::read(log_path(root.path(), 7, "success")).unwrap(),
        source
    );
    assert!(!log_path(root.path(), 7, "running").exists());
    assert!(
        !log_path(root.path(), 8, "failed").exists(),
        "n2 wrote its own log itself"
    );
    assert_eq!(collector.cursor(), last);

    // Restarted from cursor 0 (a crash before the cursor was saved): nothing twice.
    drop(collector);
    let (mut again, _) = Collector::start(&js2, &names, &n2, 0, log_dirs(root.path()), OP_TIMEOUT)
        .await
        .unwrap();
    let did = collect_until(&mut again, last).await;
    assert!(
        did.iter().all(|c| matches!(c, Collected::Skipped { .. })),
        "a final log is left alone"
    );
    assert_eq!(
        std::fs::read(log_path(root.path(), 7, "success")).unwrap(),
        source
    );

    // A run still going: collected, replayed from an old cursor, unchanged.
    let mut going = LogShipper::new(js1.clone(), &names, &run("n1", 9), OP_TIMEOUT).unwrap();
    let mut going_source = Vec::new();
    for line in lines(300, "b") {
        going.ship(&line).await.unwrap();
        going_source.extend_from_slice(&line);
    }
    going.flush().await.unwrap();
    let mid = stream_last_seq(&js1, &names).await;
    collect_until(&mut again, mid).await;
    let running = log_path(root.path(), 9, "running");
    assert_eq!(std::fs::read(&running).unwrap(), going_source);
    let saved = again.cursor();
    drop(again);
    let (mut replay, _) =
        Collector::start(&js2, &names, &n2, last, log_dirs(root.path()), OP_TIMEOUT)
            .await
            .unwrap();
    let did = collect_until(&mut replay, saved).await;
    assert!(
        did.iter()
            .all(|c| matches!(c, Collected::Chunk { appended: 0, .. }))
    );
    assert_eq!(std::fs::read(&running).unwrap(), going_source);

    // The sweeper's read: an unfinished run, a finished one, and none.
    let open = logship::last_log_message(
        &js2,
        &names,
        JobKind::Exec,
        &JobId::from_raw("render"),
        9,
        OP_TIMEOUT,
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!open.is_final());
    assert_eq!(open.end_offset, Some(going_source.len() as u64));
    assert_eq!(open.chunk, Some(299));
    assert_eq!(open.node.as_deref(), Some("n1"));
    let done = logship::last_log_message(
        &js2,
        &names,
        JobKind::Exec,
        &JobId::from_raw("render"),
        7,
        OP_TIMEOUT,
    )
    .await
    .unwrap()
    .unwrap();
    assert!(done.is_final());
    assert_eq!(done.status, Some(RunStatus::Success));
    assert_eq!(done.stream_seq, final_seq);
    assert_eq!(done.run.as_deref(), Some("run-n1-7"));
    assert!(done.finished.is_some());
    let none = logship::last_log_message(
        &js2,
        &names,
        JobKind::Exec,
        &JobId::from_raw("render"),
        99,
        OP_TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(none, None);

    // The sweeper closes the run for a lost n1: its chunk follows, then failed.
    let mut sweeper = LogShipper::new(js2.clone(), &names, &run("n3", 9), OP_TIMEOUT)
        .unwrap()
        .continuing(open.chunk.unwrap() + 1, open.end_offset.unwrap());
    let note = b"!!! karajo: node n1 stopped answering; run marked failed\n";
    sweeper.ship(note).await.unwrap();
    sweeper
        .finish(RunStatus::Failed, Timestamp::now())
        .await
        .unwrap();
    let end = stream_last_seq(&js1, &names).await;
    collect_until(&mut replay, end).await;
    going_source.extend_from_slice(note);
    assert_eq!(
        std::fs::read(log_path(root.path(), 9, "failed")).unwrap(),
        going_source
    );
}

#[tokio::test]
async fn more_than_five_thousand_chunks_do_not_hang_the_shipper() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let names = Names::new("karajo");
    let (_client, js) = connect(&server, "n1").await;
    provision(&js, &names).await;
    let mut shipper = LogShipper::new(js.clone(), &names, &run("n1", 1), OP_TIMEOUT).unwrap();
    let shipped = tokio::time::timeout(Duration::from_secs(30), async {
        for i in 0..6_000u32 {
            shipper.ship(format!("{i}\n").as_bytes()).await.unwrap();
        }
        shipper
            .finish(RunStatus::Success, Timestamp::now())
            .await
            .unwrap()
    })
    .await
    .expect("6,000 chunks are shipped without hanging");
    assert_eq!(shipped, 6_001);
    let mut stream = js.get_stream(names.logs_stream()).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 6_001);
}

#[tokio::test]
async fn a_feed_that_overflows_or_loses_the_server_catches_up_from_the_file() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let names = Names::new("karajo");
    let (_c1, js1) = connect(&server, "n1").await;
    let (_c2, js2) = connect(&server, "n2").await;
    provision(&js1, &names).await;
    let n1_root = tempfile::tempdir().unwrap();
    let dir = n1_root.path().join("job/render");
    std::fs::create_dir_all(&dir).unwrap();
    let running = dir.join("render.3.running");
    let mut file = std::fs::File::create(&running).unwrap();

    // A queue of one: most writes do not fit, and come from the file instead.
    let shipper = LogShipper::new(js1.clone(), &names, &run("n1", 3), OP_TIMEOUT).unwrap();
    let mut feed = shipper.spawn(running.clone(), 1);
    let mut refused = 0;
    for line in lines(2_000, "c") {
        file.write_all(&line).unwrap();
        if !feed.offer(&line) {
            refused += 1;
        }
    }
    assert!(refused > 0, "the queue of one overflowed");

    // The server goes away and comes back while the run writes on and the shipper
    // works (the restart runs on a blocking thread).
    let restart = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    });
    let big = vec![b'z'; 3 * CHUNK_MAX + 10];
    file.write_all(&big).unwrap();
    feed.offer(&big);
    for (i, line) in lines(300, "d").into_iter().enumerate() {
        file.write_all(&line).unwrap();
        feed.offer(&line);
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let _server = restart.await.unwrap();
    for line in lines(100, "e") {
        file.write_all(&line).unwrap();
        feed.offer(&line);
        tokio::task::yield_now().await;
    }
    assert_eq!(feed.offered(), file.metadata().unwrap().len());
    file.sync_all().unwrap();
    drop(file);
    let done = dir.join("render.3.success");
    std::fs::rename(&running, &done).unwrap();
    let shipped = tokio::time::timeout(
        Duration::from_secs(20),
        feed.finish(done.clone(), RunStatus::Success, Timestamp::now()),
    )
    .await
    .expect("the feed finishes once the server is back")
    .unwrap();
    let source = std::fs::read(&done).unwrap();
    assert_eq!(shipped.bytes, source.len() as u64);

    let root = tempfile::tempdir().unwrap();
    let n2 = NodeName::parse("n2").unwrap();
    let (mut collector, _) =
        Collector::start(&js2, &names, &n2, 0, log_dirs(root.path()), OP_TIMEOUT)
            .await
            .unwrap();
    collect_until(&mut collector, shipped.final_seq).await;
    assert_eq!(
        std::fs::read(log_path(root.path(), 3, "success")).unwrap(),
        source
    );
}

#[tokio::test]
async fn a_shipper_behind_refuses_new_bytes_until_it_resumes_from_the_file() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let names = Names::new("karajo");
    let (_client, js) = connect(&server, "n1").await;
    provision(&js, &names).await;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("render.4.running");
    let mut source = b"before the outage\n".to_vec();
    std::fs::write(&path, &source).unwrap();
    let mut shipper = LogShipper::new(
        js.clone(),
        &names,
        &run("n1", 4),
        Duration::from_millis(300),
    )
    .unwrap();
    shipper.ship(&source).await.unwrap();
    assert_eq!(shipper.flush().await.unwrap(), source.len() as u64);

    server.stop();
    let during = b"during the outage\n";
    source.extend_from_slice(during);
    std::fs::write(&path, &source).unwrap();
    let failed = async {
        shipper.ship(during).await?;
        shipper.flush().await
    }
    .await;
    assert!(failed.is_err(), "{failed:?}");
    assert!(matches!(
        shipper.ship(b"more").await,
        Err(LogError::Behind { from: 18, .. })
    ));
    assert_eq!(shipper.acked_offset(), 18);

    server.restart();
    let until = tokio::time::Instant::now() + Duration::from_secs(15);
    let acked = loop {
        match shipper.resume_from_file(&path).await {
            Ok(acked) => break acked,
            Err(err) => {
                assert!(tokio::time::Instant::now() < until, "{err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(acked, source.len() as u64);
    shipper
        .finish(RunStatus::Success, Timestamp::now())
        .await
        .unwrap();

    let root = tempfile::tempdir().unwrap();
    let n2 = NodeName::parse("n2").unwrap();
    let last = stream_last_seq(&js, &names).await;
    let (mut collector, _) =
        Collector::start(&js, &names, &n2, 0, log_dirs(root.path()), OP_TIMEOUT)
            .await
            .unwrap();
    collect_until(&mut collector, last).await;
    assert_eq!(
        std::fs::read(log_path(root.path(), 4, "success")).unwrap(),
        source
    );
}

#[tokio::test]
async fn a_cursor_older_than_the_stream_is_a_log_gap() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let names = Names::new("karajo");
    let (_client, js) = connect(&server, "n1").await;
    provision(&js, &names).await;
    let mut shipper = LogShipper::new(js.clone(), &names, &run("n1", 5), OP_TIMEOUT).unwrap();
    for i in 0..5 {
        shipper.ship(format!("{i}\n").as_bytes()).await.unwrap();
    }
    shipper.flush().await.unwrap();
    let stream = js.get_stream(names.logs_stream()).await.unwrap();
    stream.purge().await.unwrap();
    shipper.ship(b"5\n").await.unwrap();
    shipper.flush().await.unwrap();

    let root = tempfile::tempdir().unwrap();
    let n2 = NodeName::parse("n2").unwrap();
    let (mut collector, gap) =
        Collector::start(&js, &names, &n2, 2, log_dirs(root.path()), OP_TIMEOUT)
            .await
            .unwrap();
    assert_eq!(
        gap,
        Some(LogGap {
            wanted: 3,
            first: 6
        })
    );
    let did = tokio::time::timeout(Duration::from_secs(10), collector.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            did,
            Some(Collected::Chunk {
                seq: 6,
                appended: 0,
                held: true,
                ..
            })
        ),
        "{did:?}"
    );
    // The missing start is held back, so the cursor stays before it.
    assert_eq!(collector.cursor(), 5);
    // At the end the held bytes are written without the missing start.
    let final_seq = shipper
        .finish(RunStatus::Failed, Timestamp::now())
        .await
        .unwrap();
    let did = collect_until(&mut collector, final_seq).await;
    assert!(
        matches!(
            did[..],
            [Collected::Finished {
                missing: 10,
                status: RunStatus::Failed,
                ..
            }]
        ),
        "{did:?}"
    );
    assert_eq!(
        std::fs::read(log_path(root.path(), 5, "failed")).unwrap(),
        b"5\n"
    );
}
