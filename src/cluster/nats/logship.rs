//! Shipping a run's log to the log stream (cluster spec 7.6): [`LogShipper`] publishes
//! the bytes of `<id>.<counter>.running` as chunks of at most 64 KiB to
//! `<prefix>.log.<kind>.<id>.<counter>`, then one empty message with the final status;
//! [`ShipFeed`] puts it beside the local log writer without ever making the writer
//! wait; [`last_log_message`] is the sweeper's read of a run's last message (spec 7.8).
//! Collecting the stream into other nodes' log directories is [`super::logcollect`].
//!
//! The local file is the source of truth. Every chunk carries the byte offset it
//! starts at (`Karajo-Offset`), so a chunk published twice (a timed-out publish that
//! landed after all, a resume from the file) is applied once by every collector, and
//! the shipper can always start again from the file at the last acknowledged offset.
//! At most [`ACKS_IN_FLIGHT`] publish acknowledgements are outstanding: async-nats
//! blocks a publisher that holds more than 5,000 (spec 13 trap 3).

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::fs::File;
use std::future::Future;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::header::{HeaderValue, NATS_MESSAGE_ID};
use async_nats::jetstream::Context;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::DirectGetErrorKind;
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::cluster::NodeName;
use crate::cluster::nats::layout::Names;
use crate::job::{JobId, JobKind, RunStatus};

/// The largest chunk: well under the server's default 1 MiB `max_payload`.
pub const CHUNK_MAX: usize = 64 * 1024;
/// The most publish acknowledgements one shipper leaves outstanding.
pub const ACKS_IN_FLIGHT: usize = 256;
/// How many writes a [`ShipFeed`] queues before it lets the shipper read from the file.
pub const DEFAULT_FEED_CAPACITY: usize = 64;

/// Header: the run's id.
pub const RUN_HEADER: &str = "Karajo-Run";
/// Header: the node that ran it.
pub const NODE_HEADER: &str = "Karajo-Node";
/// Header: the chunk number, from 0, strictly increasing within a run (a number is
/// never used twice; one whose publish failed is skipped).
pub const SEQ_HEADER: &str = "Karajo-Seq";
/// Header: the byte offset in the run's log where the chunk starts (on the final
/// message: the log's length).
pub const OFFSET_HEADER: &str = "Karajo-Offset";
/// Header of the final message: the run's status.
pub const STATUS_HEADER: &str = "Karajo-Status";
/// Header of the final message: when the run ended, RFC 3339.
pub const FINISHED_HEADER: &str = "Karajo-Finished";

/// How often a shipper that is behind looks at the file again.
const CATCH_UP_EVERY: Duration = Duration::from_millis(250);
/// The longest pause between two attempts after a failure.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What went wrong shipping or collecting logs. Each message names the operation.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// No answer within `op_timeout`; a publish may still have happened.
    #[error("{what}: no answer within {after:?}; it may still have happened")]
    TimedOut {
        /// The operation.
        what: String,
        /// The bound that passed.
        after: Duration,
    },
    /// The server or the client refused the operation.
    #[error("{what}: {source}")]
    Nats {
        /// The operation.
        what: String,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },
    /// Reading or writing a local log file failed.
    #[error("{what}: {source}")]
    Io {
        /// The operation, with the path.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The request cannot be carried out as it is.
    #[error("{what}: {why}")]
    Invalid {
        /// The operation.
        what: String,
        /// Why not.
        why: String,
    },
    /// Bytes published earlier may not have been stored, so new bytes cannot follow
    /// them: [`LogShipper::resume_from_file`] first.
    #[error("ship log to {subject}: behind since byte {from}; resume from the file first")]
    Behind {
        /// The run's log subject.
        subject: String,
        /// The last acknowledged offset.
        from: u64,
    },
}

/// Runs `fut` bounded by `op_timeout`, naming the operation in any error
/// (`error::bounded`, in this module's error type).
pub(crate) async fn bounded<T, E>(
    what: impl FnOnce() -> String,
    op_timeout: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, LogError>
where
    E: StdError + Send + Sync + 'static,
{
    super::error::bounded(op_timeout, what, fut)
        .await
        .map_err(LogError::from)
}

impl From<super::error::NatsError> for LogError {
    /// `error::bounded` gives a timeout or a failed call; anything else is
    /// carried as a failed call.
    fn from(error: super::error::NatsError) -> Self {
        match error {
            super::error::NatsError::TimedOut { what, after } => Self::TimedOut { what, after },
            super::error::NatsError::Nats { what, source } => Self::Nats { what, source },
            other => Self::Nats {
                what: "NATS".to_string(),
                source: Box::new(other),
            },
        }
    }
}

/// The run whose log is shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLogRef {
    /// `job` or `job_http`.
    pub kind: JobKind,
    /// The job.
    pub job: JobId,
    /// The run's counter.
    pub counter: u64,
    /// The run's id.
    pub run: String,
    /// The node that runs it.
    pub node: NodeName,
}

/// Publishes one run's log. Use it directly (`ship`, `flush`, `finish`), or hand it to
/// a task with [`LogShipper::spawn`] to feed it from the writer without waiting.
#[derive(Debug)]
pub struct LogShipper {
    js: Context,
    subject: String,
    run: HeaderValue,
    node: HeaderValue,
    op_timeout: Duration,
    /// The next chunk number.
    next_chunk: u64,
    /// The offset after the last chunk published (acknowledged or not).
    shipped: u64,
    /// The offset up to which every chunk is acknowledged.
    acked: u64,
    /// Chunks published and not yet acknowledged, with the offset each one ends at.
    in_flight: VecDeque<(PublishAckFuture, u64)>,
    /// Whether a publish failed since the last resume (`shipped` was wound back).
    behind: bool,
    /// The final message's chunk number, once chosen (a retried finish reuses it).
    final_chunk: Option<u64>,
}

impl LogShipper {
    /// A shipper for `run`'s log, from byte 0 and chunk 0.
    pub fn new(
        js: Context,
        names: &Names,
        run: &RunLogRef,
        op_timeout: Duration,
    ) -> Result<Self, LogError> {
        let subject = names.log_subject(run.kind.as_str(), run.job.as_str(), run.counter);
        let run_id = run
            .run
            .parse::<HeaderValue>()
            .map_err(|_| LogError::Invalid {
                what: format!("ship log to {subject}"),
                why: format!("run id {:?} cannot be a header value", run.run),
            })?;
        Ok(Self {
            js,
            subject,
            run: run_id,
            node: HeaderValue::from(run.node.as_str()),
            op_timeout,
            next_chunk: 0,
            shipped: 0,
            acked: 0,
            in_flight: VecDeque::new(),
            behind: false,
            final_chunk: None,
        })
    }

    /// Continues a log that already has messages in the stream (the sweeper closing a
    /// lost node's run): the next chunk is `next_chunk` and starts at byte `offset`.
    pub fn continuing(mut self, next_chunk: u64, offset: u64) -> Self {
        self.next_chunk = next_chunk;
        self.shipped = offset;
        self.acked = offset;
        self
    }

    /// The run's log subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The offset up to which the stream holds the log for certain: where
    /// [`Self::resume_from_file`] starts.
    pub fn acked_offset(&self) -> u64 {
        self.acked
    }

    /// The offset after the last chunk published, acknowledged or not.
    pub fn shipped_offset(&self) -> u64 {
        self.shipped
    }

    /// The number the next chunk gets.
    pub fn next_chunk(&self) -> u64 {
        self.next_chunk
    }

    /// Publishes `bytes`, the next bytes of the log, in chunks of at most
    /// [`CHUNK_MAX`], awaiting acknowledgements whenever [`ACKS_IN_FLIGHT`] are
    /// outstanding. On an error the shipper is behind: call
    /// [`Self::resume_from_file`] before shipping more.
    pub async fn ship(&mut self, bytes: &[u8]) -> Result<(), LogError> {
        if self.behind {
            return Err(LogError::Behind {
                subject: self.subject.clone(),
                from: self.acked,
            });
        }
        for chunk in bytes.chunks(CHUNK_MAX) {
            if let Err(err) = self.publish_chunk(chunk).await {
                self.fall_behind();
                return Err(err);
            }
        }
        Ok(())
    }

    /// Waits for every outstanding acknowledgement; returns the acknowledged offset.
    pub async fn flush(&mut self) -> Result<u64, LogError> {
        while let Some((ack, end)) = self.in_flight.pop_front() {
            let what = || {
                format!(
                    "ship log to {}: acknowledgement of bytes up to {end}",
                    self.subject
                )
            };
            match bounded(what, self.op_timeout, ack.into_future()).await {
                Ok(_) => self.acked = end,
                Err(err) => {
                    self.fall_behind();
                    return Err(err);
                }
            }
        }
        Ok(self.acked)
    }

    /// Publishes the log from the last acknowledged offset to the end of `path` (the
    /// local log file, `.running` or already renamed), after waiting for what is
    /// outstanding, and waits for the acknowledgements. Use it after a disconnection,
    /// or whenever bytes did not reach the shipper. Returns the acknowledged offset.
    pub async fn resume_from_file(&mut self, path: &Path) -> Result<u64, LogError> {
        if !self.behind {
            // What is outstanding may well be stored; an error winds back to `acked`.
            let _ = self.flush().await;
        }
        self.behind = false;
        self.shipped = self.acked;
        let subject = self.subject.clone();
        let what = || format!("ship log {subject} from {}", path.display());
        let mut file = File::open(path).map_err(|source| LogError::Io {
            what: what(),
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|source| LogError::Io {
                what: what(),
                source,
            })?
            .len();
        if len < self.acked {
            return Err(LogError::Invalid {
                what: what(),
                why: format!(
                    "the file has {len} bytes, fewer than the {} shipped",
                    self.acked
                ),
            });
        }
        file.seek(SeekFrom::Start(self.acked))
            .map_err(|source| LogError::Io {
                what: what(),
                source,
            })?;
        let mut rest = file.take(len - self.acked);
        let mut buf = vec![0; CHUNK_MAX];
        loop {
            let n = read_full(&mut rest, &mut buf).map_err(|source| LogError::Io {
                what: what(),
                source,
            })?;
            if n == 0 {
                break;
            }
            if let Err(err) = self.publish_chunk(&buf[..n]).await {
                self.fall_behind();
                return Err(err);
            }
        }
        self.flush().await
    }

    /// Ends the log: waits for the outstanding chunks, then publishes the empty final
    /// message with `Karajo-Status` and `Karajo-Finished` (and `Nats-Msg-Id:
    /// <run>.end`, so that a retried finish is stored once). Returns its stream
    /// sequence. Bytes that did not reach the shipper must be shipped first
    /// ([`Self::resume_from_file`]).
    pub async fn finish(
        &mut self,
        status: RunStatus,
        finished_at: Timestamp,
    ) -> Result<u64, LogError> {
        let subject = self.subject.clone();
        let what = || format!("finish log {subject} as {status}");
        if !status.is_final() {
            return Err(LogError::Invalid {
                what: what(),
                why: "the status is not final".into(),
            });
        }
        if self.behind {
            return Err(LogError::Behind {
                subject: self.subject.clone(),
                from: self.acked,
            });
        }
        self.flush().await?;
        let chunk = *self.final_chunk.get_or_insert_with(|| {
            let chunk = self.next_chunk;
            self.next_chunk += 1;
            chunk
        });
        let mut headers = self.headers(chunk, self.shipped);
        headers.insert(STATUS_HEADER, status.as_str());
        headers.insert(FINISHED_HEADER, finished_at.to_string().as_str());
        let msg_id = format!("{}.end", self.run.as_str());
        headers.insert(NATS_MESSAGE_ID, msg_id.as_str());
        let message = PublishMessage::build().headers(headers);
        let publish = || async {
            let ack = self
                .js
                .send_publish(self.subject.clone(), message.clone())
                .await?;
            ack.await
        };
        // Once more on a timeout: the same Nats-Msg-Id is stored once.
        match bounded(what, self.op_timeout, publish()).await {
            Ok(ack) => Ok(ack.sequence),
            Err(LogError::TimedOut { .. }) => bounded(what, self.op_timeout, publish())
                .await
                .map(|ack| ack.sequence),
            Err(err) => Err(err),
        }
    }

    /// Hands the shipper to a task fed by the returned [`ShipFeed`]. `path` is the
    /// local `.running` file the fed bytes are appended to; the task reads from it
    /// whenever it is behind (the feed was full, or NATS was away).
    pub fn spawn(self, path: PathBuf, capacity: usize) -> ShipFeed {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let written = Arc::new(AtomicU64::new(self.shipped));
        let offset = self.shipped;
        let pump = Pump {
            shipper: self,
            path,
            rx,
            written: Arc::clone(&written),
            failures: 0,
            next_catch_up: tokio::time::Instant::now(),
        };
        let task = tokio::spawn(pump.run());
        ShipFeed {
            tx,
            written,
            offset,
            task: Some(AbortOnDrop(task)),
        }
    }

    fn headers(&self, chunk: u64, offset: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RUN_HEADER, self.run.clone());
        headers.insert(NODE_HEADER, self.node.clone());
        headers.insert(SEQ_HEADER, chunk.to_string().as_str());
        headers.insert(OFFSET_HEADER, offset.to_string().as_str());
        headers
    }

    /// Publishes one chunk at `shipped`, first waiting for the outstanding
    /// acknowledgements when there are [`ACKS_IN_FLIGHT`] of them.
    async fn publish_chunk(&mut self, chunk: &[u8]) -> Result<(), LogError> {
        if self.in_flight.len() >= ACKS_IN_FLIGHT {
            self.flush().await?;
        }
        let number = self.next_chunk;
        // A number is never used twice, even when its publish fails.
        self.next_chunk += 1;
        let message = PublishMessage::build()
            .payload(bytes::Bytes::copy_from_slice(chunk))
            .headers(self.headers(number, self.shipped));
        let end = self.shipped + chunk.len() as u64;
        let what = || format!("ship log to {}: chunk {number}", self.subject);
        let ack = bounded(
            what,
            self.op_timeout,
            self.js.send_publish(self.subject.clone(), message),
        )
        .await?;
        self.in_flight.push_back((ack, end));
        self.shipped = end;
        Ok(())
    }

    /// After a failure: forget what is outstanding (it may or may not be stored) and
    /// start again from the last acknowledged offset, from the file.
    fn fall_behind(&mut self) {
        self.in_flight.clear();
        self.shipped = self.acked;
        self.behind = true;
    }
}

/// Reads until `buf` is full or the reader ends; returns how much was read.
fn read_full(reader: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// What a finished [`ShipFeed`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shipped {
    /// The log's length: every byte of it is in the stream.
    pub bytes: u64,
    /// The final message's stream sequence.
    pub final_seq: u64,
}

/// The writer's side of a spawned [`LogShipper`]: [`ShipFeed::offer`] never waits.
///
/// Offer exactly the bytes appended to the local log file, in order (with karajo's
/// line prefixes, as they are in the file). When the queue is full the bytes are not
/// queued, and nothing is lost: the task sees that it is behind the writer and ships
/// the missing bytes from the file, where they are (or will be once the writer
/// flushes). The same happens while NATS is away: the task keeps trying, from the file.
/// Dropping the feed without [`ShipFeed::finish`] stops the task.
#[derive(Debug)]
pub struct ShipFeed {
    tx: mpsc::Sender<Feed>,
    written: Arc<AtomicU64>,
    offset: u64,
    task: Option<AbortOnDrop>,
}

impl ShipFeed {
    /// Offers the next bytes of the log. Returns whether they were queued (`false`:
    /// the task will read them from the file).
    pub fn offer(&mut self, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return true;
        }
        let offset = self.offset;
        self.offset += bytes.len() as u64;
        self.written.store(self.offset, Ordering::Release);
        self.tx
            .try_send(Feed::Bytes {
                offset,
                bytes: bytes.to_vec(),
            })
            .is_ok()
    }

    /// The offset after the last byte offered.
    pub fn offered(&self) -> u64 {
        self.offset
    }

    /// Ends the log once the writer has renamed it to `final_path`: ships whatever is
    /// still missing from that file, then the final message, retrying (from the file)
    /// until NATS takes them. Bound it with a timeout if the caller cannot wait for a
    /// reconnection; dropping this future stops the task.
    pub async fn finish(
        mut self,
        final_path: PathBuf,
        status: RunStatus,
        finished_at: Timestamp,
    ) -> Result<Shipped, LogError> {
        let (done, answer) = oneshot::channel();
        let task = self.task.take();
        let sent = self
            .tx
            .send(Feed::Finish {
                path: final_path,
                status,
                finished_at,
                done,
            })
            .await;
        let gone = || LogError::Invalid {
            what: "finish a shipped log".into(),
            why: "the shipping task has stopped".into(),
        };
        if sent.is_err() {
            return Err(gone());
        }
        let result = answer.await.map_err(|_| gone())?;
        drop(task);
        result
    }
}

/// Aborts a task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the writer's side sends to the task.
enum Feed {
    /// The bytes at `offset` of the log.
    Bytes { offset: u64, bytes: Vec<u8> },
    /// The log is complete in `path`: ship the rest and the final message.
    Finish {
        path: PathBuf,
        status: RunStatus,
        finished_at: Timestamp,
        done: oneshot::Sender<Result<Shipped, LogError>>,
    },
}

/// The task behind a [`ShipFeed`].
struct Pump {
    shipper: LogShipper,
    path: PathBuf,
    rx: mpsc::Receiver<Feed>,
    written: Arc<AtomicU64>,
    /// Failures in a row, for the pause before the next attempt.
    failures: u32,
    /// The earliest time of the next read from the file.
    next_catch_up: tokio::time::Instant,
}

impl Pump {
    async fn run(mut self) {
        loop {
            let behind_writer =
                self.written.load(Ordering::Acquire) > self.shipper.shipped || self.shipper.behind;
            if behind_writer && tokio::time::Instant::now() >= self.next_catch_up {
                self.catch_up().await;
            }
            let next = if behind_writer {
                match tokio::time::timeout_at(self.next_catch_up, self.rx.recv()).await {
                    Ok(next) => next,
                    Err(_) => continue,
                }
            } else {
                self.rx.recv().await
            };
            match next {
                None => return,
                Some(Feed::Bytes { offset, bytes }) => self.take(offset, &bytes).await,
                Some(Feed::Finish {
                    path,
                    status,
                    finished_at,
                    done,
                }) => {
                    let result = self.finish(&path, status, finished_at).await;
                    let _ = done.send(result);
                    return;
                }
            }
        }
    }

    /// Ships the fed bytes at `offset`, or what of them is new. When bytes before them
    /// are missing (the feed was full) they come from the file; until the file has
    /// them, these bytes are dropped too (the file will have them).
    async fn take(&mut self, offset: u64, bytes: &[u8]) {
        let end = offset + bytes.len() as u64;
        if self.shipper.behind || end <= self.shipper.shipped {
            return;
        }
        if offset > self.shipper.shipped {
            if tokio::time::Instant::now() < self.next_catch_up {
                return;
            }
            self.catch_up().await;
            if self.shipper.behind || self.shipper.shipped < offset {
                return;
            }
        }
        let skip = usize::try_from(self.shipper.shipped.saturating_sub(offset)).unwrap_or(0);
        let new = bytes.get(skip..).unwrap_or_default();
        match self.shipper.ship(new).await {
            Ok(()) => self.failures = 0,
            Err(err) => self.failed(&err),
        }
    }

    /// Ships what the file has beyond the acknowledged offset, and sets when the next
    /// read may be: soon while all is well, later after failures. A file that is gone
    /// (renamed at the end of the run) is not an error: the finish ships from the
    /// final name.
    async fn catch_up(&mut self) {
        match self.shipper.resume_from_file(&self.path).await {
            Ok(_) => self.failures = 0,
            Err(LogError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(err) => self.failed(&err),
        }
        let pause = if self.failures == 0 {
            CATCH_UP_EVERY
        } else {
            retry_pause(self.failures)
        };
        self.next_catch_up = tokio::time::Instant::now() + pause;
    }

    async fn finish(
        &mut self,
        path: &Path,
        status: RunStatus,
        finished_at: Timestamp,
    ) -> Result<Shipped, LogError> {
        loop {
            let result = async {
                let bytes = self.shipper.resume_from_file(path).await?;
                let final_seq = self.shipper.finish(status, finished_at).await?;
                Ok::<_, LogError>(Shipped { bytes, final_seq })
            }
            .await;
            match result {
                Ok(shipped) => return Ok(shipped),
                Err(err @ (LogError::Io { .. } | LogError::Invalid { .. })) => return Err(err),
                Err(err) => {
                    self.failed(&err);
                    tokio::time::sleep(retry_pause(self.failures)).await;
                }
            }
        }
    }

    fn failed(&mut self, err: &LogError) {
        self.failures = self.failures.saturating_add(1);
        if self.failures == 1 {
            tracing::warn!(%err, "log shipping stopped; the local log goes on and is shipped from the file later");
        } else {
            tracing::debug!(%err, failures = self.failures, "log shipping still failing");
        }
    }
}

/// The pause before attempt `failures + 1`: 200 ms doubling, at most [`RETRY_MAX`].
fn retry_pause(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(5);
    (Duration::from_millis(200) * 2u32.pow(exp)).min(RETRY_MAX)
}

/// The last message on a run's log subject, as the sweeper reads it (spec 7.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastLogMessage {
    /// Its stream sequence.
    pub stream_seq: u64,
    /// `Karajo-Run`.
    pub run: Option<String>,
    /// `Karajo-Node`.
    pub node: Option<String>,
    /// `Karajo-Seq`: the next message of this run takes the number after it.
    pub chunk: Option<u64>,
    /// Where the log ends after this message (`Karajo-Offset` plus its length).
    pub end_offset: Option<u64>,
    /// `Karajo-Status`: set when it is the final message.
    pub status: Option<RunStatus>,
    /// `Karajo-Finished`.
    pub finished: Option<Timestamp>,
}

impl LastLogMessage {
    /// Whether it is a final status message.
    pub fn is_final(&self) -> bool {
        self.status.is_some()
    }
}

/// Reads the last message of run `counter` of `job` from the log stream (direct get,
/// last for subject). `None` when the run has no message there.
pub async fn last_log_message(
    js: &Context,
    names: &Names,
    kind: JobKind,
    job: &JobId,
    counter: u64,
    op_timeout: Duration,
) -> Result<Option<LastLogMessage>, LogError> {
    let subject = names.log_subject(kind.as_str(), job.as_str(), counter);
    let stream_name = names.logs_stream();
    let what = || format!("read the last message of {subject} from stream {stream_name}");
    let stream = bounded(what, op_timeout, js.get_stream_no_info(&stream_name)).await?;
    let message = match tokio::time::timeout(
        op_timeout,
        stream.direct_get_last_for_subject(subject.clone()),
    )
    .await
    {
        Ok(Ok(message)) => message,
        Ok(Err(err)) if err.kind() == DirectGetErrorKind::NotFound => return Ok(None),
        Ok(Err(err)) => {
            return Err(LogError::Nats {
                what: what(),
                source: Box::new(err),
            });
        }
        Err(_) => {
            return Err(LogError::TimedOut {
                what: what(),
                after: op_timeout,
            });
        }
    };
    let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_string());
    let offset = header(OFFSET_HEADER).and_then(|v| v.parse::<u64>().ok());
    Ok(Some(LastLogMessage {
        stream_seq: message.sequence,
        run: header(RUN_HEADER),
        node: header(NODE_HEADER),
        chunk: header(SEQ_HEADER).and_then(|v| v.parse().ok()),
        end_offset: offset.map(|o| o + message.payload.len() as u64),
        status: header(STATUS_HEADER)
            .and_then(|v| RunStatus::parse(&v))
            .filter(|s| s.is_final()),
        finished: header(FINISHED_HEADER).and_then(|v| v.parse().ok()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_grow_to_a_cap() {
        assert_eq!(retry_pause(1), Duration::from_millis(200));
        assert_eq!(retry_pause(2), Duration::from_millis(400));
        assert_eq!(retry_pause(50), RETRY_MAX);
    }

    #[test]
    fn read_full_fills_the_buffer_across_short_reads() {
        let data = [7u8; 100];
        let mut reader = io::Read::chain(&data[..30], &data[30..]);
        let mut buf = vec![0; 64];
        assert_eq!(read_full(&mut reader, &mut buf).unwrap(), 64);
        assert_eq!(read_full(&mut reader, &mut buf).unwrap(), 36);
        assert_eq!(read_full(&mut reader, &mut buf).unwrap(), 0);
    }
}
